"""The languages partnermatch works in, their names, and detection of a text's language.

Detection uses py3langid's model (it ships inside the package: nothing is downloaded),
restricted to the languages we support, read by a walk of its automaton done with numpy (see
Detector). Pure apart from loading that model once (and keeping a decoded copy of it in
cachefile.folder()).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import threading
import unicodedata
from collections.abc import Mapping
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

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


def native_names(page: str) -> dict[str, str]:
    """Each profile language by its own name, as a page in reader language `page` shows it: Serbian
    (a profile's "sr", written in either script) in the page's script."""
    return {**NATIVE_NAMES, "sr": NATIVE_NAMES["sr-Cyrl"]} if page == "sr-Cyrl" else NATIVE_NAMES


_lock = threading.Lock()
# Three letters, with anything between them: a text holds one as soon as it holds three letters.
_THREE_LETTERS = re.compile(r"[^\W\d_](?:[\W\d_]*[^\W\d_]){2}")
_identifier: Detector | None = None
_NO_FEATURES = float(np.finfo(np.float32).min)  # py3langid's score of a text none of whose n-grams it knows


class Detector:
    """py3langid's ranking of languages (LanguageIdentifier.rank, its model restricted to ours),
    score for score, without its walk of the automaton in Python (most of a detection's time).

    The model finds its byte n-grams with a deterministic automaton whose states are the nodes of
    a trie of depth `window`: the state after a byte is the longest suffix of the text read so far
    that is a node, so it is the state reached from the start over the last `window` bytes alone.
    Every byte's state is then found at once, `window` steps of numpy over the whole text. Each
    n-gram's count is added in the order the n-grams first occur, as py3langid adds them: the
    scores are its own (tests/unit/test_languages.py compares the two)."""

    def __init__(self, identifier: Any) -> None:
        self.next_state = np.frombuffer(identifier.tk_nextmove, dtype=np.uint32).copy()
        self.row_of_state = np.asarray(identifier._rowbase, dtype=np.int64)
        self.feature_of_state = np.asarray(identifier.tk_output, dtype=np.int64)
        # py3langid's scores are float16; numpy multiplies them as float32 (the counts' type), so a
        # copy in float32 gives the same products without casting the rows of every text again.
        self.feature_scores = np.asarray(identifier.nb_ptc, dtype=np.float32)
        self.class_scores = identifier.nb_pc
        self.classes = list(identifier.nb_classes)
        self.alias_pairs = list(identifier._alias_pairs)  # columns of one language: the first keeps the best
        self.window = self._trie_depth()

    def _trie_depth(self) -> int:
        """The longest shortest path from the start to a state: the depth of the trie (breadth first)."""
        seen = np.zeros(len(self.row_of_state), dtype=bool)
        seen[0] = True
        frontier, depth = np.zeros(1, dtype=np.int64), 0
        every_byte = np.arange(256, dtype=np.int64)
        while True:
            reached = np.unique(self.next_state[(self.row_of_state[frontier][:, None] + every_byte).ravel()])
            reached = reached[~seen[reached]]
            if not len(reached):
                return depth
            seen[reached] = True
            frontier, depth = reached.astype(np.int64), depth + 1

    def states(self, data: bytes) -> np.ndarray:
        """The automaton's state after each byte of `data`."""
        text = np.frombuffer(data, dtype=np.uint8)
        n = len(text)
        state = np.zeros(n, dtype=np.uint32)
        for back in range(min(self.window, n) - 1, -1, -1):  # the byte `back` places before each one
            state[back:] = self.next_state[self.row_of_state[state[back:]] + text[: n - back]]
        return state

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every language with its score (a log-probability), best first, as py3langid ranks them."""
        if text.isupper():
            text = text.lower()
        data = unicodedata.normalize("NFC", text).encode("utf-8", errors="surrogatepass")
        features = self.feature_of_state[self.states(data)]
        features = features[features >= 0]
        if len(features):
            ids, first, counts = np.unique(features, return_index=True, return_counts=True)
            order = np.argsort(first, kind="stable")
            scores = np.log1p(counts[order].astype(np.float32)) @ self.feature_scores[ids[order]] + self.class_scores
        else:
            scores = np.full(len(self.classes), _NO_FEATURES, dtype=np.float32)
        for kept, alias in self.alias_pairs:
            scores[kept] = max(scores[kept], scores[alias])
            scores[alias] = _NO_FEATURES
        merged: dict[str, float] = {}
        for lang, score in zip(self.classes, scores.tolist(), strict=True):
            merged.setdefault(lang, score)
        return sorted(merged.items(), key=itemgetter(1), reverse=True)


def _get_identifier() -> Detector:
    """py3langid ships its model LZMA-compressed: decoding it and finding its depth take about a
    second, so a decoded copy is kept in cachefile.folder() where there is one."""
    global _identifier
    with _lock:
        if _identifier is None:
            folder = cachefile.folder()
            _identifier = _cached_identifier(folder) if folder is not None else _decoded_identifier()
        return _identifier


def _py3langid_identifier() -> Any:
    """py3langid's own identifier of our languages (the tests compare the Detector with it)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE)
    ident.set_languages(list(PROFILE_LANGUAGES))
    return ident


def _decoded_identifier() -> Detector:
    return Detector(_py3langid_identifier())


def _cached_identifier(folder: Path) -> Detector:
    """The detector from our copy in `folder`, written there first if missing or unreadable. The
    name holds py3langid's version and our languages, so an upgrade or a change writes a new copy
    (and "detector32": older copies held py3langid's identifier, or its scores in float16)."""
    tag = hashlib.sha256(",".join(PROFILE_LANGUAGES).encode()).hexdigest()[:12]
    path = folder / f"py3langid-{importlib.metadata.version('py3langid')}-{tag}-detector32.pickle"
    ident = cachefile.read(path)
    if not isinstance(ident, Detector):
        ident = _decoded_identifier()
        cachefile.write(path, ident)
    return ident


def preload_model() -> None:
    """Load the detection model now (and write its decoded copy if one is kept and missing)."""
    _get_identifier()


# Languages whose confusion costs nothing here: the same lemma dictionary and stop words.
_SAME = {"sr": "hbs", "hr": "hbs", "bs": "hbs"}


DETECTION_CHARS = 600  # detect_language reads no further


def same_detection(text: str, other: str) -> bool:
    """True when detect_language gives the same for both texts: they begin with the same
    characters as far as it reads."""
    return text[:DETECTION_CHARS] == other[:DETECTION_CHARS]


# Serbian, Croatian and Bosnian read alike to detection (and matching treats them as one: _SAME);
# where it names one of them, the organisation's country says which it writes.
HBS_BY_COUNTRY = {"RS": "sr", "ME": "sr", "HR": "hr", "BA": "bs"}
# Czech and Slovak written without diacritics can read alike to detection ("navrh, montaz a servis
# fotovoltaickych elektraren": Slovak ahead of Czech by 1.3 in log-probability); where the two lead
# within CLOSE_CALL of each other and the text has none of the letters only one of them writes, the
# organisation's country says which it writes.
CS_SK_BY_COUNTRY = {"CZ": "cs", "SK": "sk"}
CLOSE_CALL = 10.0
_CS_OR_SK_ONLY = re.compile("[řůěäľĺŕôŘŮĚÄĽĹŔÔ]")


def detect_language(text: str, default: str = "en", country: str | None = None) -> str:
    """The most likely of the 16 profile languages; `default` when there is nothing to judge. One
    of Serbian, Croatian and Bosnian in Latin script is settled by `country` where it is one of
    theirs (in Cyrillic it is Serbian, as detection says), and so is a close call between Czech and
    Slovak where the country is the Czech Republic or Slovakia.

    The cost grows with the length read, so it reads 300 characters, and 600 when the best two
    candidates are close (on the dev set, the one text 300 characters got wrong, Czech taken for
    Slovak, had the smallest lead of all: 9 against 16 and more for the right ones)."""
    sample = text[:DETECTION_CHARS]
    if _THREE_LETTERS.search(sample) is None:  # found within the first few characters of most texts
        return default
    identifier = _get_identifier()
    ranked = identifier.rank(sample[:300])
    if len(sample) > 300 and _lead(ranked) < 40.0:
        ranked = identifier.rank(sample)
    lang = ranked[0][0]
    if lang in _SAME and country in HBS_BY_COUNTRY and not is_cyrillic(sample):  # Cyrillic: Serbian
        return HBS_BY_COUNTRY[country]
    if (
        country in CS_SK_BY_COUNTRY
        and len(ranked) > 1
        and {lang, ranked[1][0]} == {"cs", "sk"}
        and ranked[0][1] - ranked[1][1] < CLOSE_CALL
        and _CS_OR_SK_ONLY.search(sample) is None
    ):
        return CS_SK_BY_COUNTRY[country]
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


def short_label(label: str) -> str:
    """A country's label without the official name the lexicon adds in parentheses where the short
    one is also a common word ("Malta (Republika Malty)" → "Malta"): the labels are matched too."""
    return label.partition(" (")[0].strip() or label


def babel_locale(lang: str) -> str:
    """CLDR's (Babel's) name of a reader language: our plain "sr" is Latin script, CLDR's is Cyrillic."""
    return {"sr": "sr_Latn", "sr-Cyrl": "sr_Cyrl"}.get(lang, lang)
