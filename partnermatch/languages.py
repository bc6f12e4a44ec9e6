"""The languages partnermatch works in, their names, and detection of a text's language.

Detection uses py3langid (its model ships inside the package: nothing is downloaded),
restricted to the languages we support. Pure apart from loading that model once (and keeping a
decoded copy of it in cachefile.folder()).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import threading
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from partnermatch import cachefile

# The 16 languages of profiles, in ISO 639-1.
PROFILE_LANGUAGES: tuple[str, ...] = (
    "pl",
    "sr",
    "hr",
    "bs",
    "sl",
    "mk",
    "bg",
    "ru",
    "uk",
    "cs",
    "sk",
    "ro",
    "hu",
    "sq",
    "de",
    "en",
)
# A reader may ask for Serbian in Cyrillic explicitly; plain "sr" means Latin script.
READER_LANGUAGES: tuple[str, ...] = PROFILE_LANGUAGES + ("sr-Cyrl",)

NATIVE_NAMES: dict[str, str] = {
    "pl": "polski",
    "sr": "srpski",
    "sr-Cyrl": "српски",
    "hr": "hrvatski",
    "bs": "bosanski",
    "sl": "slovenščina",
    "mk": "македонски",
    "bg": "български",
    "ru": "русский",
    "uk": "українська",
    "cs": "čeština",
    "sk": "slovenčina",
    "ro": "română",
    "hu": "magyar",
    "sq": "shqip",
    "de": "Deutsch",
    "en": "English",
}

_lock = threading.Lock()
_LETTERS = re.compile(r"[^\W\d_]")
_identifier = None


def _get_identifier():
    """py3langid ships its model LZMA-compressed: decoding takes about half a second, so a decoded
    copy is kept in cachefile.folder() where there is one."""
    global _identifier
    with _lock:
        if _identifier is None:
            folder = cachefile.folder()
            _identifier = _cached_identifier(folder) if folder is not None else _decoded_identifier()
        return _identifier


def _decoded_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE)
    ident.set_languages(list(PROFILE_LANGUAGES))
    return ident


def _cached_identifier(folder: Path):
    """The identifier from our copy in `folder`, written there first if missing or unreadable. The
    name holds py3langid's version and our languages, so an upgrade or a change writes a new copy."""
    tag = hashlib.sha256(",".join(PROFILE_LANGUAGES).encode()).hexdigest()[:12]
    path = folder / f"py3langid-{importlib.metadata.version('py3langid')}-{tag}.pickle"
    ident = cachefile.read(path)
    if ident is None:
        ident = _decoded_identifier()
        cachefile.write(path, ident)
    return ident


def preload_model() -> None:
    """Load the detection model now (and write its decoded copy if one is kept and missing)."""
    _get_identifier()


# Languages whose confusion costs nothing here: the same lemma dictionary and stop words.
_SAME = {"sr": "hbs", "hr": "hbs", "bs": "hbs"}


def detect_language(text: str, default: str = "en") -> str:
    """The most likely of the 16 profile languages; `default` when there is nothing to judge.

    The cost grows with the length read, so it reads 300 characters, and 600 when the best two
    candidates are close (on the dev set, the one text 300 characters got wrong, Czech taken for
    Slovak, had the smallest lead of all: 9 against 16 and more for the right ones)."""
    sample = text[:600]
    if len(_LETTERS.findall(sample, 0, 200)) < 3 and len(_LETTERS.findall(sample)) < 3:
        return default
    identifier = _get_identifier()
    ranked = identifier.rank(sample[:300])
    if len(sample) > 300 and _lead(ranked) < 40.0:
        ranked = identifier.rank(sample)
    lang = ranked[0][0]
    return lang if lang in PROFILE_LANGUAGES else default


def _lead(ranked: list[tuple[str, float]]) -> float:
    """How far the best language's log-probability is ahead of the next one that is not the same
    for matching."""
    best = _SAME.get(ranked[0][0], ranked[0][0])
    for lang, score in ranked[1:]:
        if _SAME.get(lang, lang) != best:
            return float(ranked[0][1] - score)
    return float("inf")


def is_cyrillic(text: str) -> bool:
    """True when most letters of the text are Cyrillic."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return False
    cyr = sum(1 for ch in letters if "CYRILLIC" in unicodedata.name(ch, ""))
    return cyr * 2 > len(letters)


# Serbian Latin to Cyrillic, letter for letter; the digraphs dž, lj, nj are one Cyrillic letter each.
# The one way the house writes Serbian Cyrillic for a reader (catalogues, labels, reasons); the
# matcher's engine/text.py folds any Cyrillic to Latin, the other way, to match words.
_SR_DIGRAPHS = (
    ("DŽ", "Џ"),
    ("Dž", "Џ"),
    ("dž", "џ"),
    ("LJ", "Љ"),
    ("Lj", "Љ"),
    ("lj", "љ"),
    ("NJ", "Њ"),
    ("Nj", "Њ"),
    ("nj", "њ"),
)
_SR_LETTERS = str.maketrans(
    dict(
        zip(
            "abvgdđežzijklmnoprstćufhcčšABVGDĐEŽZIJKLMNOPRSTĆUFHCČŠ",
            "абвгдђежзијклмнопрстћуфхцчшАБВГДЂЕЖЗИЈКЛМНОПРСТЋУФХЦЧШ",
            strict=True,
        )
    )
)


def latin_to_serbian_cyrillic(text: str) -> str:
    """Serbian written in Latin script, in Cyrillic (what a reader of "sr-Cyrl" gets). Letters that
    Serbian does not use (q, w, x, y) stay as they are."""
    for latin, cyrillic in _SR_DIGRAPHS:
        text = text.replace(latin, cyrillic)
    return text.translate(_SR_LETTERS)


# Placeholders, markup, addresses and the product's name stay as they are when a Serbian text
# changes script.
_KEEP = re.compile(
    r"%\([^)]*\)[sd]|%[sd]|\{[^}]*\}|<[^>]*>|&[#\w]+;|https?://\S+|\bpartnermatch\b|\b(?:CSV|JSON|PDF)\b"
)


def to_cyrillic(text: str) -> str:
    """Serbian Latin text in Cyrillic, leaving placeholders, tags, entities and URLs alone."""
    out, last = [], 0
    for match in _KEEP.finditer(text):
        out.append(latin_to_serbian_cyrillic(text[last : match.start()]))
        out.append(match.group())
        last = match.end()
    out.append(latin_to_serbian_cyrillic(text[last:]))
    return "".join(out)


def label_in(labels: Mapping[str, str], lang: str, default: str) -> str:
    """A label of a lexicon entry in a reader language: Serbian Cyrillic is the Serbian (Latin)
    label transliterated; a language without one falls back to English, then to `default`."""
    if lang == "sr-Cyrl" and labels.get("sr"):
        return latin_to_serbian_cyrillic(labels["sr"])
    return labels.get(lang) or labels.get("en") or default
