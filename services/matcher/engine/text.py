"""Language-neutral text handling: normalisation, Cyrillic→Latin, folding, tokens and lemmas. Pure.

Serbian Cyrillic and Serbian Latin meet here: both become the same folded Latin tokens.
Lemmas come from simplemma's dictionaries (shipped in its package) through lemmas.py.
"""

from __future__ import annotations

import re
import unicodedata

from partnermatch import cachefile
from services.matcher.engine.lemmas import CODES, LemmaIndex

# One Latin spelling for every Cyrillic letter our languages use; Serbian letters map to their
# Serbian Latin counterparts, so "информационе" and "informacione" are the same word.
_CYR = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "ђ": "đ",
    "е": "e",
    "ж": "ž",
    "з": "z",
    "и": "i",
    "ј": "j",
    "к": "k",
    "л": "l",
    "љ": "lj",
    "м": "m",
    "н": "n",
    "њ": "nj",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "ћ": "ć",
    "у": "u",
    "ф": "f",
    "х": "h",
    "ц": "c",
    "ч": "č",
    "џ": "dž",
    "ш": "š",
    "щ": "šč",
    "ъ": "a",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "ju",
    "я": "ja",
    "й": "j",
    "ё": "e",
    "є": "je",
    "ї": "ji",
    "і": "i",
    "ґ": "g",
    "ѓ": "gj",
    "ќ": "kj",
    "ѕ": "dz",
    "ў": "u",
}
_CYR_TABLE = str.maketrans({**_CYR, **{k.upper(): v.capitalize() for k, v in _CYR.items()}})
# Letters that NFD does not decompose into a base letter and a mark.
_FOLD_EXTRA = str.maketrans(
    {"đ": "d", "ł": "l", "ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ı": "i", "Đ": "D", "Ł": "L"}
)
_TOKEN = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)

# simplemma's data names Serbo-Croatian (Serbian, Croatian, Bosnian, Montenegrin) "hbs".
_LEMMA_LANG = {"sr": "hbs", "hr": "hbs", "bs": "hbs"}


def transliterate(text: str) -> str:
    return text.translate(_CYR_TABLE)


def strip_marks(text: str) -> str:
    if text.isascii():  # nothing to fold (the extra letters and the marks are not ASCII)
        return text
    decomposed = unicodedata.normalize("NFD", text.translate(_FOLD_EXTRA))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(word: str) -> str:
    """The matching key of a word: Latin script, lower case, no diacritics."""
    return strip_marks(transliterate(word)).lower()


def tokens(text: str) -> list[str]:
    """Words as written (NFKC-normalised); hyphenated words stay whole and are split later."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text))


# Lemmas already looked up in this process, by (simplemma language code, word).
_LEMMAS: dict[tuple[str, str], str] = {}
_INDEX: LemmaIndex | None = None  # opened at the first lemma (the folder is read then, not at import)


def _lemma_index() -> LemmaIndex:
    global _INDEX
    if _INDEX is None:
        _INDEX = LemmaIndex(cachefile.folder())
    return _INDEX


def use_lemma_index(folder: str | None) -> None:
    """Where the lemma index lives (see lemmas.py), and the copies of the language detection model
    (partnermatch.languages) and of the compiled lexicon (lexicon.py); None or "" keeps them all in
    memory only."""
    global _INDEX
    _INDEX = LemmaIndex(folder or None)
    _LEMMAS.clear()
    cachefile.use_folder(folder)


def lemma(word: str, lang: str | None) -> str:
    """The lemma of a lower-cased word in its original script, or the word itself."""
    code = _LEMMA_LANG.get(lang or "", lang or "")
    if code not in CODES:
        return word
    key = (code, word)
    found = _LEMMAS.get(key)
    if found is None:
        found = _lemma_index().lemma(word, code) or word
        if len(_LEMMAS) >= 2_000_000:
            _LEMMAS.clear()
        _LEMMAS[key] = found
    return found


def preload_lemmatizers() -> dict[str, float]:
    """Open (or build, once per installation) every language's lemma index now rather than on
    the first profile in that language; seconds per language."""
    return _lemma_index().build_all()


def is_acronym(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)
