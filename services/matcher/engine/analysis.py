"""Turning one organisation's texts into language-neutral evidence: concept hits with the words
that expressed them, and within-language term counts. Pure."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter

from services.matcher.engine.lexicon import Lexicon
from services.matcher.engine.text import fold, tokens

# Stop words per language come from stopwordsiso where it has the language; Serbian and Bosnian
# share Croatian's list (the same language family, folded to the same Latin), and a short list
# of our own covers Macedonian and Albanian, which it lacks.
_OWN_STOPWORDS = {
    "mk": "и во на за од со се да е што не ги го ја ние вие тие кој која кое како но или до по при меѓу "
          "преку исто така овој оваа ова тој таа тоа нивните нашите",
    "sq": "dhe të në e i me për nga një që është janë si por ose në të kjo ky këto këta ai ajo ata ato ne "
          "ju tyre tij saj edhe më mbi nën pas para gjatë",
}


@lru_cache(maxsize=32)
def stopwords(lang: str | None) -> frozenset[str]:
    import stopwordsiso

    words: set[str] = set()
    for code in {lang or "en", "en"}:
        source = {"sr": "hr", "bs": "hr"}.get(code, code)
        if stopwordsiso.has_lang(source):
            words |= set(stopwordsiso.stopwords(source))
        words |= set(_OWN_STOPWORDS.get(code, "").split())
    return frozenset(fold(w) for w in words)


@dataclass
class Analysis:
    language: str | None
    cap_hits: dict[str, list[str]] = field(default_factory=dict)
    goal_hits: dict[str, list[str]] = field(default_factory=dict)
    cap_terms: Counter[str] = field(default_factory=Counter)
    goal_terms: Counter[str] = field(default_factory=Counter)
    term_surface: dict[str, str] = field(default_factory=dict)


def _side(lex: Lexicon, text: str, lang: str | None, retry: bool = True
          ) -> tuple[dict[str, list[str]], Counter[str], dict[str, str]]:
    """Concepts with the words that expressed them, term counts, and the first word written for
    each term. The per-word work is cached; the loops over words run in C (map, zip, compress)."""
    words = tokens(text)
    cache = lex.analysed.get(lang)
    if cache is None:
        cache = lex.analysed[lang] = {}
    entries = list(map(cache.get, words))
    if None in entries:
        generation = lex.generation
        for i in [i for i, e in enumerate(entries) if e is None]:
            entry = cache.get(words[i])
            if entry is None:
                info = lex.token(words[i], lang)
                entry = cache[words[i]] = (info, _term(info.keys[1], lang))
            entries[i] = entry
        if lex.generation != generation and retry:  # the caches were dropped midway (grown too big):
            return _side(lex, text, lang, retry=False)  # redo, so no word holds a TokenInfo they forgot
    infos = list(map(_FIRST, entries))
    found: dict[str, list[str]] = {}
    for concept, surface in lex.concepts_in(words, infos):
        if concept in found:
            found[concept].append(surface)
        else:
            found[concept] = [surface]
    terms = list(map(_SECOND, entries))
    surfaces = dict(zip(reversed(terms), reversed(words), strict=True))  # the first word wins
    surfaces.pop(None, None)  # type: ignore[call-overload]
    counts = Counter(filter(None, terms))
    return found, counts, surfaces


_FIRST, _SECOND = itemgetter(0), itemgetter(1)


def _term(lemmed: str, lang: str | None) -> str | None:
    """The word as a within-language feature, or None for stop words, numbers and scraps."""
    if len(lemmed) < 3 or lemmed in stopwords(lang) or _HAS_DIGIT(lemmed):
        return None
    return lemmed


_HAS_DIGIT = re.compile(r"\d").search


def analyse(lex: Lexicon, capabilities: str, goals: str, language: str | None) -> Analysis:
    result = Analysis(language=language)
    result.cap_hits, result.cap_terms, cap_words = _side(lex, capabilities, language)
    result.goal_hits, result.goal_terms, goal_words = _side(lex, goals, language)
    result.term_surface = {**goal_words, **cap_words}  # a capability's wording first
    return result
