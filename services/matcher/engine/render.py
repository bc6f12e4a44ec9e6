"""Reasons as a person reads them, in any of the 16 languages (and Serbian Cyrillic). Pure."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from services.matcher.engine.lexicon import Lexicon, load_lexicon


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    return load_lexicon()


def concept_labels(concept_id: str, lexicon: Lexicon | None = None) -> dict[str, str]:
    """Every label of a concept, by language (with `sr-Cyrl` derived from Serbian Latin)."""
    lex = lexicon or default_lexicon()
    concept = lex.concepts[concept_id]
    labels = dict(concept.labels)
    labels["sr-Cyrl"] = concept.label("sr-Cyrl")
    return labels


def render_reason(reason: Any, lang: str = "en", lexicon: Lexicon | None = None) -> str:
    """One line: the words of both sides, and the concept's name in the reader's language,
    e.g. for a Polish reader "informatyka ↔ informacione tehnologije (technologie informacyjne)"."""
    data = reason if isinstance(reason, dict) else reason.to_dict()
    lex = lexicon or default_lexicon()
    words_a = ", ".join(data.get("terms_a") or [])
    words_b = ", ".join(data.get("terms_b") or [])
    if words_a and words_a.lower() == words_b.lower():
        words = words_a  # the same word on both sides is shown once
    else:
        words = " ↔ ".join(w for w in (words_a, words_b) if w)
    concept = data.get("concept")
    if concept and concept in lex.concepts:
        label = lex.concepts[concept].label(lang)
        return f"{words} ({label})" if words else label
    return words  # the organisations' own words stay in their own script
