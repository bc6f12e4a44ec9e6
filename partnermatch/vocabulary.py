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

from partnermatch.languages import READER_LANGUAGES, babel_locale, label_in, short_label

# Every country an organisation may be in: ISO 3166-1 alpha-2 codes, plus XK (Kosovo), which
# clusters of the region use.
COUNTRY_CODES: frozenset[str] = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO
    DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU
    GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW
    KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU
    MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
    PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA
    ZM ZW XK""".split()  # noqa: SIM905 (a block of codes reads better than a list of strings)
)

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


def _after(base: str, place: int = 1) -> str:
    return base + _LAST * place


# Letters every alphabet of ours that has them sorts after a letter without marks: those whose mark
# is part of their shape (Unicode does not decompose them), and the Cyrillic letters of Serbian,
# Macedonian, Ukrainian and Russian that are past "я" in Unicode or made of a letter and a mark
# (Ђ and Ѓ after Д, Ќ and Ћ after Т, Џ after Ч, І, Ї, Ј and Й after И...).
_EVERYWHERE = str.maketrans(
    {
        "ł": _after("l"),
        "đ": _after("d"),
        "ø": _after("o"),
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "ı": "i",
        "ђ": _after("д"),
        "ѓ": _after("д", 2),
        "ґ": _after("г"),
        "є": _after("е"),
        "ѕ": _after("з"),
        "і": _after("и"),
        "ї": _after("и", 2),
        "ј": _after("и", 3),
        "й": _after("и", 4),
        "љ": _after("л"),
        "њ": _after("н"),
        "ћ": _after("т"),
        "ќ": _after("т", 2),
        "ў": _after("у"),
        "џ": _after("ч"),
    }
)
# Letters with a mark that a language's alphabet counts as letters of their own, each after its
# letter without the mark, in the alphabet's order (in other languages the mark does not count:
# German "Österreich" sorts with O, Polish "Śląsk" after every S).
_OWN_LETTERS = {
    "pl": "ąćęńóśźż",
    "cs": "čřšž",
    "sk": "äčôšž",
    "sl": "čšž",
    "hr": "čćšž",
    "bs": "čćšž",
    "sr": "čćšž",
    "hu": "öőüű",
    "ro": "ăâîșşțţ",
    "sq": "çë",
}
_OWN_PLACES = {
    lang: str.maketrans(
        {
            letter: _after(base, place)
            for base, place, letter in (
                (unicodedata.normalize("NFD", letter)[0], letters.index(letter) + 1, letter) for letter in letters
            )
        }
    )
    for lang, letters in _OWN_LETTERS.items()
}


def sort_key(label: str, lang: str | None = None) -> str:
    """Alphabetical enough for a list in reader language `lang`: case does not count, nor marks
    but for the letters its alphabet counts as letters of their own (Polish "Łotwa" after
    "Luksemburg", "Śląski" after "Szwecja"; German "Österreich" with O), and the Cyrillic letters of
    our Slavic alphabets sort where those alphabets put them ("Џибути" before "Шри Ланка")."""
    text = unicodedata.normalize("NFC", label).casefold()
    own = _OWN_PLACES.get(lang or "")
    if own is not None:
        text = text.translate(own)
    # before decomposing: "й" would be "и" and a breve
    decomposed = unicodedata.normalize("NFD", text.translate(_EVERYWHERE))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def vocabulary(lang: str = "en", fallback_countries: Iterable[str] = ()) -> dict[str, list[dict[str, str]]]:
    """What a form offers, labelled in `lang` (one of READER_LANGUAGES) and sorted by label:
    `sectors` [{id, label}], `activities` [{id, label, sector}], `countries` [{code, label}].
    While the lexicon has no countries, `countries` lists `fallback_countries` labelled by code."""
    if lang not in READER_LANGUAGES:
        raise ValueError(f"unknown reader language {lang!r}")
    vocab = get_vocabulary()

    def ordered(items: list[dict[str, str]]) -> list[dict[str, str]]:
        return sorted(items, key=lambda item: (sort_key(item["label"], lang), item.get("id") or item["code"]))

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
    short = {code: short_label(label) for code, label in full.items()}
    taken = Counter(short.values())
    return {code: short[code] if taken[short[code]] == 1 else full[code] for code in full}


@functools.cache
def _country_names(lang: str) -> dict[str, str]:
    """Every country an organisation may be in, by its name in `lang`: the lexicon's label (the words
    sought countries are chosen by), CLDR's (Babel) where the lexicon has none."""
    from babel import Locale

    cldr = Locale.parse(babel_locale(lang)).territories
    lexicon = {c["code"]: c["label"] for c in vocabulary(lang)["countries"]}
    return {code: lexicon.get(code) or cldr.get(code) or code for code in COUNTRY_CODES}


def country_name(lang: str, code: str | None) -> str:
    """A country (ISO 3166-1 alpha-2) by its name in a reader language (_country_names); a code no
    organisation may have by CLDR's name, else as it is."""
    from babel import Locale

    if not code:
        return ""
    found = _country_names(lang).get(code.upper())
    return found or Locale.parse(babel_locale(lang)).territories.get(code.upper()) or code


@functools.cache
def country_choices(lang: str) -> list[tuple[str, str]]:
    """Every country an organisation may be in (COUNTRY_CODES), as (code, name in `lang`), sorted
    by name as the reader's alphabet sorts it: what a form or a filter offers."""
    return sorted(_country_names(lang).items(), key=lambda item: sort_key(item[1], lang))
