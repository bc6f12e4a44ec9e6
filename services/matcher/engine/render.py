"""Reasons as a person reads them, in any of the 16 languages (and Serbian Cyrillic). Pure."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from partnermatch.i18n import to_cyrillic
from services.matcher.engine.lexicon import Lexicon, load_lexicon


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    return load_lexicon()


def concept_labels(concept_id: str, lexicon: Lexicon | None = None) -> dict[str, str]:
    """Every label of a concept, by language (with `sr-Cyrl` derived from Serbian Latin)."""
    lexicon = lexicon or default_lexicon()
    concept = lexicon.concepts[concept_id]
    labels = dict(concept.labels)
    labels["sr-Cyrl"] = concept.label("sr-Cyrl")
    return labels


def _terms(data: dict[str, Any]) -> tuple[str, str]:
    """The words each side of a reason used, as one string each."""
    return ", ".join(data.get("terms_a") or []), ", ".join(data.get("terms_b") or [])


def render_reason(reason: Any, lang: str = "en", lexicon: Lexicon | None = None) -> str:
    """One line: the words of both sides, and the concept's name in the reader's language,
    e.g. for a Polish reader "informatyka ↔ informacione tehnologije (technologie informacyjne)"."""
    data = reason if isinstance(reason, dict) else reason.to_dict()
    lexicon = lexicon or default_lexicon()
    words_a, words_b = _terms(data)
    if words_a and words_a.lower() == words_b.lower():
        words = words_a  # the same word on both sides is shown once
    else:
        words = " ↔ ".join(w for w in (words_a, words_b) if w)
    concept = data.get("concept")
    if concept and concept in lexicon.concepts:
        label = lexicon.concepts[concept].label(lang)
        return f"{words} ({label})" if words else label
    return words  # the organisations' own words stay in their own script


# "<seeker> seeks <label> — <provider> offers it", and for a country "<seeker> seeks partners from
# <country> — <provider> is there", in every reader language.
_NEED = {
    "en": ("{seeker} seeks {label} — {provider} offers it",
           "{seeker} seeks partners from {label} — {provider} is there"),
    "pl": ("{seeker} szuka: {label} — {provider} to oferuje",
           "{seeker} szuka partnerów z kraju: {label} — {provider} ma tam siedzibę"),
    "sr": ("{seeker} traži: {label} — {provider} to nudi",
           "{seeker} traži partnere iz zemlje: {label} — {provider} je odatle"),
    "hr": ("{seeker} traži: {label} — {provider} to nudi",
           "{seeker} traži partnere iz zemlje: {label} — {provider} je odande"),
    "bs": ("{seeker} traži: {label} — {provider} to nudi",
           "{seeker} traži partnere iz zemlje: {label} — {provider} je odatle"),
    "sl": ("{seeker} išče: {label} — {provider} to ponuja",
           "{seeker} išče partnerje iz države: {label} — {provider} je od tam"),
    "mk": ("{seeker} бара: {label} — {provider} го нуди тоа",
           "{seeker} бара партнери од земјата: {label} — {provider} е оттаму"),
    "bg": ("{seeker} търси: {label} — {provider} го предлага",
           "{seeker} търси партньори от страната: {label} — {provider} е оттам"),
    "ru": ("{seeker} ищет: {label} — {provider} это предлагает",
           "{seeker} ищет партнёров из страны: {label} — {provider} находится там"),
    "uk": ("{seeker} шукає: {label} — {provider} це пропонує",
           "{seeker} шукає партнерів із країни: {label} — {provider} звідти"),
    "cs": ("{seeker} hledá: {label} — {provider} to nabízí",
           "{seeker} hledá partnery ze země: {label} — {provider} odtud pochází"),
    "sk": ("{seeker} hľadá: {label} — {provider} to ponúka",
           "{seeker} hľadá partnerov z krajiny: {label} — {provider} odtiaľ pochádza"),
    "ro": ("{seeker} caută: {label} — {provider} oferă acest lucru",
           "{seeker} caută parteneri din țara: {label} — {provider} este de acolo"),
    "hu": ("{seeker} keresi: {label} — {provider} ezt kínálja",
           "{seeker} partnert keres innen: {label} — {provider} onnan való"),
    "sq": ("{seeker} kërkon: {label} — {provider} e ofron",
           "{seeker} kërkon partnerë nga vendi: {label} — {provider} është prej andej"),
    "de": ("{seeker} sucht: {label} — {provider} bietet das an",
           "{seeker} sucht Partner aus dem Land: {label} — {provider} ist dort ansässig"),
}


def render_need(reason: Any, lang: str, seeker: str, provider: str, lexicon: Lexicon | None = None) -> str:
    """A need met as a sentence in the reader's language, then the words of both sides, e.g.
    "Banat Soft seeks agriculture and food — Voćar offers it (rolnictwa ↔ poljoprivreda)". The
    reason is oriented so that `terms_a` are the seeker's words and `terms_b` the provider's."""
    data = reason if isinstance(reason, dict) else reason.to_dict()
    lexicon = lexicon or default_lexicon()
    concept = data.get("concept")
    label = lexicon.concepts[concept].label(lang) if concept in lexicon.concepts else (concept or "")
    templates = _NEED.get(lang) or (
        tuple(to_cyrillic(t) for t in _NEED["sr"]) if lang == "sr-Cyrl" else _NEED["en"])
    template = templates[1] if data.get("kind") == "country" else templates[0]
    sentence = template.format(seeker=seeker, label=label, provider=provider)
    words = " ↔ ".join(w for w in _terms(data) if w)
    return f"{sentence} ({words})" if words else sentence
