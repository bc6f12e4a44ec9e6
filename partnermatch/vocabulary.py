"""The lexicon's sectors, activities and countries with their labels: what structured needs are
chosen from (profile forms, validation, the batch's warnings). Pure apart from reading
partnermatch/lexicon/*.yaml once.
"""

from __future__ import annotations

import functools
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from partnermatch.languages import READER_LANGUAGES, babel_locale, label_in

LEXICON_DIR = Path(__file__).resolve().parent / "lexicon"
# libyaml's parser where PyYAML was built with it (the wheels are): the pure-Python one takes
# seconds over the lexicon. Both load plain data only.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Term:
    """A sector, an activity (of `sector`) or a country (`code`, ISO 3166-1 alpha-2)."""

    id: str
    kind: str
    labels: Mapping[str, str]
    sector: str | None = None
    code: str | None = None

    def label(self, lang: str) -> str:
        """The label in a reader language; Serbian Cyrillic is the Serbian (Latin) label transliterated."""
        return label_in(self.labels, lang, self.code or self.id)


@dataclass(frozen=True)
class Vocabulary:
    sectors: Mapping[str, Term]  # by id
    activities: Mapping[str, Term]  # by id
    countries: Mapping[str, Term]  # by ISO code; empty while the lexicon has no countries
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # every concept's, by id

    def need_ids(self) -> frozenset[str]:
        return frozenset(self.sectors) | frozenset(self.activities)

    def country_codes(self) -> frozenset[str]:
        return frozenset(self.countries)


def load_vocabulary(paths: Iterable[Path]) -> Vocabulary:
    """Sectors, activities and countries of the given concept files (other kinds are skipped), and
    the labels of every concept (what a reason of any kind is read with)."""
    sectors: dict[str, Term] = {}
    activities: dict[str, Term] = {}
    countries: dict[str, Term] = {}
    labels: dict[str, Mapping[str, str]] = {}
    for path in sorted(paths):
        loaded = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_SafeLoader) or []
        if isinstance(loaded, dict):
            loaded = loaded.get("concepts", [])
        for entry in loaded:
            if isinstance(entry, dict) and "id" in entry:
                labels[str(entry["id"])] = _labels(entry)
            term = _term(entry)
            if term is None:
                continue
            if term.code is not None:
                countries[term.code] = term
            else:
                (sectors if term.kind == "sector" else activities)[term.id] = term
    return Vocabulary(sectors=sectors, activities=activities, countries=countries, labels=labels)


def _labels(entry: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (entry.get("labels") or {}).items() if v}


def _term(entry: Any) -> Term | None:
    if not isinstance(entry, dict) or "id" not in entry:
        return None
    kind = entry.get("kind")
    labels = _labels(entry)
    if kind in ("sector", "activity"):
        return Term(
            id=str(entry["id"]),
            kind=kind,
            labels=labels,
            sector=str(entry["sector"]) if kind == "activity" and entry.get("sector") else None,
        )
    if kind == "country" and entry.get("country"):
        code = str(entry["country"]).upper()
        return Term(id=str(entry["id"]), kind=kind, labels=labels, code=code)
    return None


_lock = threading.Lock()
_loaded: Vocabulary | None = None


def get_vocabulary() -> Vocabulary:
    """The project's vocabulary, read from partnermatch/lexicon/ on first use."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = load_vocabulary(LEXICON_DIR.glob("*.yaml"))
        return _loaded


def concept_labels(concept_id: str) -> Mapping[str, str] | None:
    """A concept's labels by language, None for an id the lexicon does not have (a
    partnermatch.reasons.ConceptLabels)."""
    return get_vocabulary().labels.get(concept_id)


def need_ids() -> frozenset[str]:
    """The ids an organisation may offer or seek: every sector and activity of the lexicon."""
    return get_vocabulary().need_ids()


def country_codes() -> frozenset[str]:
    """ISO codes of the lexicon's countries; empty while it has none (callers use their own list)."""
    return get_vocabulary().country_codes()


_LAST = "\U0010ffff"  # after every other character: "д" + _LAST sorts after every word in "д", before "е"
# Letters whose mark is part of their shape (Unicode does not decompose them), put beside the letter
# they are sorted with; and the Cyrillic letters of Serbian, Macedonian and Ukrainian past "я" in
# Unicode or made of a letter and a mark, put where their alphabets have them (Ђ after Д, Џ after Ч,
# Ї after І, Й after И...).
_OWN_PLACE = str.maketrans(
    {
        "ł": "l",
        "đ": "d",
        "ø": "o",
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "ı": "i",
        "ђ": "д" + _LAST,
        "ѓ": "г" + _LAST,
        "ґ": "г" + _LAST,
        "є": "е" + _LAST,
        "ѕ": "з" + _LAST,
        "і": "и" + _LAST,
        "ї": "и" + _LAST * 2,
        "ј": "и" + _LAST * 3,
        "й": "и" + _LAST * 4,
        "љ": "л" + _LAST,
        "њ": "н" + _LAST,
        "ћ": "т" + _LAST,
        "ќ": "к" + _LAST,
        "ў": "у" + _LAST,
        "џ": "ч" + _LAST,
    }
)


def sort_key(label: str) -> str:
    """Alphabetical enough for a list in any of our languages: case and diacritics do not count
    ("Śląski" with "Słowacja" under S, "Łotwa" under L), and the Cyrillic letters of our South
    Slavic and Ukrainian alphabets sort where those alphabets put them ("Џибути" before "Шри Ланка")."""
    decomposed = unicodedata.normalize("NFD", label.casefold().translate(_OWN_PLACE))  # before "й" is "и" + ˘
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def vocabulary(lang: str = "en", fallback_countries: Iterable[str] = ()) -> dict[str, list[dict[str, str]]]:
    """What a form offers, labelled in `lang` (one of READER_LANGUAGES) and sorted by label:
    `sectors` [{id, label}], `activities` [{id, label, sector}], `countries` [{code, label}].
    While the lexicon has no countries, `countries` lists `fallback_countries` labelled by code."""
    if lang not in READER_LANGUAGES:
        raise ValueError(f"unknown reader language {lang!r}")
    vocab = get_vocabulary()

    def ordered(items: list[dict[str, str]]) -> list[dict[str, str]]:
        return sorted(items, key=lambda item: (sort_key(item["label"]), item.get("id") or item["code"]))

    sectors = [{"id": t.id, "label": t.label(lang)} for t in vocab.sectors.values()]
    activities = [
        {"id": t.id, "label": t.label(lang), **({"sector": t.sector} if t.sector else {})}
        for t in vocab.activities.values()
    ]
    if vocab.countries:
        countries = [{"code": code, "label": label} for code, label in _country_labels(vocab, lang).items()]
    else:
        countries = [{"code": code, "label": code} for code in set(fallback_countries)]
    return {"sectors": ordered(sectors), "activities": ordered(activities), "countries": ordered(countries)}


def _country_labels(vocab: Vocabulary, lang: str) -> dict[str, str]:
    """Each country's label in `lang`, as a reader sees it. Where a short name is also a common word
    of one of our languages, the lexicon's label adds the official name ("Malta (Republika Malty)"),
    so that the label never matches a text on its own; shown, the short name says it all, unless
    two countries share it."""
    full = {code: t.label(lang) for code, t in vocab.countries.items()}
    short = {code: label.partition(" (")[0].strip() or label for code, label in full.items()}
    taken = Counter(short.values())
    return {code: short[code] if taken[short[code]] == 1 else full[code] for code in full}


@functools.cache
def _country_names(lang: str) -> dict[str, str]:
    return {c["code"]: c["label"] for c in vocabulary(lang)["countries"]}


def country_name(lang: str, code: str | None) -> str:
    """A country (ISO 3166-1 alpha-2) by its name in a reader language: the lexicon's label (the
    words sought countries are chosen by), CLDR's (Babel) where the lexicon has none, else the code."""
    from babel import Locale

    if not code:
        return ""
    found = _country_names(lang).get(code)
    if found:
        return found
    return Locale.parse(babel_locale(lang)).territories.get(code.upper()) or code
