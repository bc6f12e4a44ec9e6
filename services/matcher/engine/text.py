"""Language-neutral text handling: normalisation, Cyrillic→Latin, folding, tokens and lemmas. Pure.

Serbian Cyrillic and Serbian Latin meet here: both become the same folded Latin tokens.
Lemmas come from simplemma (its data ships in the package) and are cached per (language, word).
"""

from __future__ import annotations

import re
import unicodedata
import simplemma

# One Latin spelling for every Cyrillic letter our languages use; Serbian letters map to their
# Serbian Latin counterparts, so "информационе" and "informacione" are the same word.
_CYR = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "ђ": "đ", "е": "e", "ж": "ž", "з": "z", "и": "i",
    "ј": "j", "к": "k", "л": "l", "љ": "lj", "м": "m", "н": "n", "њ": "nj", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "ћ": "ć", "у": "u", "ф": "f", "х": "h", "ц": "c", "ч": "č", "џ": "dž", "ш": "š",
    "щ": "šč", "ъ": "a", "ы": "y", "ь": "", "э": "e", "ю": "ju", "я": "ja", "й": "j", "ё": "e", "є": "je",
    "ї": "ji", "і": "i", "ґ": "g", "ѓ": "gj", "ќ": "kj", "ѕ": "dz", "ў": "u",
}
_CYR_TABLE = str.maketrans({**_CYR, **{k.upper(): v.capitalize() for k, v in _CYR.items()}})
# Letters that NFD does not decompose into a base letter and a mark.
_FOLD_EXTRA = str.maketrans({"đ": "d", "ł": "l", "ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ı": "i",
                             "Đ": "D", "Ł": "L"})
_TOKEN = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)

# simplemma's data names Serbo-Croatian (Serbian, Croatian, Bosnian, Montenegrin) "hbs".
_LEMMA_LANG = {"sr": "hbs", "hr": "hbs", "bs": "hbs"}
_SIMPLEMMA_LANGS = {"pl", "hbs", "sl", "mk", "bg", "ru", "uk", "cs", "sk", "ro", "hu", "sq", "de", "en"}


def transliterate(text: str) -> str:
    return text.translate(_CYR_TABLE)


def strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.translate(_FOLD_EXTRA))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(word: str) -> str:
    """The matching key of a word: Latin script, lower case, no diacritics."""
    return strip_marks(transliterate(word)).lower()


def tokens(text: str) -> list[str]:
    """Words as written (NFKC-normalised); hyphenated words stay whole and are split later."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text))


# Lemmas already looked up, by "language code\tword". Loading a language's dictionary costs
# seconds (Polish: 3.7 million forms), so callers may persist this between runs (see batch.py).
_LEMMAS: dict[str, str] = {}


def lemma(word: str, lang: str | None) -> str:
    """The lemma of a lower-cased word in its original script, or the word itself."""
    code = _LEMMA_LANG.get(lang or "", lang or "")
    if code not in _SIMPLEMMA_LANGS:
        return word
    key = f"{code}\t{word}"
    found = _LEMMAS.get(key)
    if found is None:
        try:
            found = simplemma.lemmatize(word, lang=code)
        except ValueError:
            found = word
        _LEMMAS[key] = found
    return found


def preload_lemmatizers(languages: tuple[str, ...] = ("pl", "sr", "sl", "mk", "bg", "ru", "uk", "cs", "sk", "ro",
                                                      "hu", "sq", "de", "en")) -> None:
    """Load every language's dictionary now (seconds each) rather than on the first profile in
    that language, so a long-running matcher answers its first events as fast as the rest."""
    for lang in languages:
        code = _LEMMA_LANG.get(lang, lang)
        if code in _SIMPLEMMA_LANGS:
            simplemma.lemmatize("a", lang=code)


def known_lemmas() -> dict[str, str]:
    """Every lemma looked up so far (to keep for the next run)."""
    return dict(_LEMMAS)


def add_known_lemmas(lemmas: dict[str, str]) -> None:
    _LEMMAS.update(lemmas)


SIMPLEMMA_VERSION = getattr(simplemma, "__version__", "unknown")


def is_acronym(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)
