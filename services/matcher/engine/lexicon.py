"""The multilingual concept lexicon: loading the project's YAML data and finding concepts in text.

Forms follow partnermatch/lexicon/README.md: whole words, `stem*` prefixes, `*part*` infixes for
compounds, multi-word phrases, and CAPITAL acronyms. Text and forms are folded the same way
(Latin script, lower case, no diacritics). Pure apart from reading the data files once (and
reading or writing the compiled copy kept beside the lemma index, see load_lexicon).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter
from pathlib import Path
from typing import Any

import yaml

import partnermatch
from partnermatch import cachefile
from partnermatch.languages import PROFILE_LANGUAGES, label_in
from services.matcher.engine import text as text_module
from services.matcher.engine.text import fold, is_acronym, lemma, strip_marks, tokens, transliterate

logger = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = PROFILE_LANGUAGES
# What the matcher scores (SCORED), where an organisation is or wants partners from (country and
# region, which lists its countries), and the cue words that say a sentence asks, offers, negates.
SCORED = ("sector", "activity", "cooperation")
KINDS = (*SCORED, "country", "region", "cue")
# A concept's `asked_forms` name it only where an organisation asks for the thing ("we need a new
# website", "potrzebujemy zdjęć produktów"): elsewhere ("visit our website") they say nothing. They
# are found under the concept's id with this mark after it (Lexicon.asked), which the analysis reads.
ASKED_MARK = "?"
DATA_DIR = Path(partnermatch.__file__).resolve().parent / "lexicon"


@dataclass(frozen=True)
class Concept:
    id: str
    kind: str
    sector: str | None
    related: tuple[str, ...]
    labels: dict[str, str]
    countries: tuple[str, ...] = ()  # a country's code, or a region's member countries

    def label(self, lang: str) -> str:
        return label_in(self.labels, lang, self.id)


@dataclass(frozen=True)
class Hit:
    concept: str
    surface: str  # the words as written in the text


@dataclass
class _Pattern:
    parts: tuple[tuple[str, str], ...]  # (mode, key) with mode in exact | prefix | infix | acronym
    concept: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    keys: tuple[str, str, str | None]  # folded word, folded lemma, acronym or None
    singles: tuple[str, ...]  # concepts the word expresses on its own
    phrases: tuple[_Pattern, ...]  # multi-word forms whose first word is this one
    hot: bool = False  # singles or phrases: worth a look when scanning a text


_HOT = attrgetter("hot")


_TOKEN_CACHE_MAX = 2_000_000
_GRAM = 5  # infix parts are indexed by their first five letters


@dataclass
class Lexicon:
    concepts: dict[str, Concept]
    exact: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    prefixes: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    infixes: list[tuple[str, str]] = field(default_factory=list)
    infix_grams: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    short_prefixes: list[tuple[str, str]] = field(default_factory=list)  # stems under 4 letters
    acronyms: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    phrases: dict[str, list[_Pattern]] = field(default_factory=lambda: defaultdict(list))
    phrase_prefixes: dict[str, list[_Pattern]] = field(default_factory=lambda: defaultdict(list))
    _tokens: dict[tuple[str, str | None], TokenInfo] = field(default_factory=dict, repr=False)
    _pairs: dict[tuple[int, int], tuple[_Pattern, ...]] = field(default_factory=dict, repr=False)
    asked: dict[str, str] = field(default_factory=dict)  # id + ASKED_MARK -> the concept its asked forms name
    generation: int = 0  # counts forget_words()
    # per language, per word as written: (TokenInfo, term) — analysis.py's cache, dropped with the others
    analysed: dict[str | None, dict[str, tuple[TokenInfo, str | None]]] = field(default_factory=dict, repr=False)

    def concept(self, concept_id: str) -> Concept:
        return self.concepts[concept_id]

    def sector_of(self, concept_id: str) -> str | None:
        c = self.concepts[concept_id]
        return c.id if c.kind == "sector" else c.sector

    @property
    def sectors(self) -> list[str]:
        return sorted(c.id for c in self.concepts.values() if c.kind == "sector")

    # ---- building --------------------------------------------------------------------------

    def _add_form(self, form: str, concept: str) -> None:
        self.forget_words()
        words = form.split()
        if not words:
            return
        parts = tuple(_part(w) for w in words)
        if any(key == "" for _, key in parts):
            return
        if len(parts) == 1:
            mode, key = parts[0]
            if mode == "exact":
                self.exact[key].add(concept)
            elif mode == "prefix" and len(key) < 4:
                self.short_prefixes.append((key, concept))
            elif mode == "prefix":
                self.prefixes[key[:4]].append((key, concept))
            elif mode == "infix" and len(key) >= _GRAM:
                self.infix_grams[key[:_GRAM]].append((key, concept))
            elif mode == "infix":
                self.infixes.append((key, concept))
            else:
                self.acronyms[key].add(concept)
            return
        pattern = _Pattern(parts, concept)
        mode, key = parts[0]
        if mode in ("exact", "acronym"):
            self.phrases[key].append(pattern)
        else:
            self.phrase_prefixes[key[:4]].append(pattern)

    # ---- matching --------------------------------------------------------------------------

    def find(self, text: str, lang: str | None) -> list[Hit]:
        """Every concept occurrence in the text, with the words that expressed it."""
        words = tokens(text)
        return self.find_in(words, [self.token(w, lang) for w in words])

    def find_in(self, words: list[str], infos: list[TokenInfo]) -> list[Hit]:
        return [Hit(c, surface) for c, surface in self.concepts_in(words, infos)]

    def concepts_in(self, words: list[str], infos: list[TokenInfo]) -> Iterator[tuple[str, str]]:
        """(concept, the words as written) for every concept occurrence, in text order (not the
        asked forms, which name a concept only in a request: see concepts_at)."""
        asked = self.asked
        for _, concept, surface in self.concepts_at(words, infos):
            if concept not in asked:
                yield concept, surface

    def concepts_at(self, words: list[str], infos: list[TokenInfo]) -> Iterator[tuple[int, str, str]]:
        """(index of its first word, concept, the words as written) for every concept occurrence;
        an asked form's concept is the id in `asked` (the concept's with ASKED_MARK after it)."""
        n = len(words)
        pairs = self._pairs
        for i in compress(range(n), map(_HOT, infos)):  # only words that start something
            info = infos[i]
            for concept in info.singles:
                yield i, concept, words[i]
            if not info.phrases or i + 1 == n:
                continue
            nxt = infos[i + 1]
            key = (id(info), id(nxt))
            started = pairs.get(key)
            if started is None:  # the phrases whose first two words these are (cached per pair)
                if len(pairs) >= _TOKEN_CACHE_MAX:
                    pairs.clear()
                started = pairs[key] = tuple(p for p in info.phrases if _match(p.parts[1], nxt.keys))
            said: set[tuple[str, int]] = set()  # a phrase of several languages' forms counts once
            for pattern in started:
                end = i + len(pattern.parts)
                if end > n or (pattern.concept, end) in said:
                    continue
                j = i + 2
                for part in pattern.parts[2:]:
                    if not _match(part, infos[j].keys):
                        break
                    j += 1
                else:
                    said.add((pattern.concept, end))
                    yield i, pattern.concept, " ".join(words[i:end])

    def forget_words(self) -> None:
        """Drop every per-word cache together: the pair cache is keyed by the identity of
        TokenInfo objects, which must not outlive it."""
        self._tokens.clear()
        self._pairs.clear()
        self.analysed.clear()
        self.generation += 1

    def token(self, word: str, lang: str | None) -> TokenInfo:
        """What the lexicon makes of one word as written: its matching keys, the concepts it
        expresses alone, the phrases it may start. Computed once per (word, language)."""
        cache = self._tokens
        info = cache.get((word, lang))
        if info is None:
            if len(cache) >= _TOKEN_CACHE_MAX:
                self.forget_words()
            keys = word_keys(word, lang)
            found = self._singles(keys)
            if "-" in word and keys[2] is None:
                found |= self._acronym_parts(word)
            singles = tuple(sorted(found))
            phrases = tuple(p for p in self._phrase_candidates(keys) if _match(p.parts[0], keys))
            info = TokenInfo(keys, singles, phrases, bool(singles or phrases))
            cache[(word, lang)] = info
        return info

    def _singles(self, k: tuple[str, str, str | None]) -> set[str]:
        folded, lemmed, acro = k
        found: set[str] = set()
        for key in {folded, lemmed}:
            found |= self.exact.get(key, set())
            for stem, concept in self.prefixes.get(key[:4], ()):
                if key.startswith(stem):
                    found.add(concept)
            for stem, concept in self.short_prefixes:
                if key.startswith(stem):
                    found.add(concept)
        if len(folded) >= 8:  # compounds: look up every 5-letter window, then the few short parts
            grams = self.infix_grams
            for i in range(len(folded) - _GRAM + 1):
                for part, concept in grams.get(folded[i : i + _GRAM], ()):
                    if folded.startswith(part, i):
                        found.add(concept)
            for part, concept in self.infixes:
                if part in folded:
                    found.add(concept)
        if acro:
            found |= self.acronyms.get(acro, set())
        return found

    def _acronym_parts(self, word: str) -> set[str]:
        """What the acronyms a hyphenated word is made with say ("ERP-решение", "CNC-obrada",
        "LKW-Fahrer", "ИТ-компании"): the word as a whole is no acronym, its capitals part is."""
        found: set[str] = set()
        for part in word.split("-"):
            if is_acronym(part):
                found |= self.acronyms.get(strip_marks(transliterate(part)), set())
        return found

    def _phrase_candidates(self, k: tuple[str, str, str | None]) -> list[_Pattern]:
        folded, lemmed, acro = k
        seen: list[_Pattern] = []
        for key in (folded,) if lemmed == folded else (folded, lemmed):  # not a set: its order varies by run
            seen.extend(self.phrases.get(key, ()))
            seen.extend(self.phrase_prefixes.get(key[:4], ()))
            for short in range(1, min(4, len(key) + 1)):  # a phrase that starts with a short stem ("dom* z bali")
                seen.extend(self.phrase_prefixes.get(key[:short], ()))
        if acro:
            seen.extend(self.phrases.get(acro, ()))
        unique = {id(p): p for p in seen}
        return list(unique.values())

    def __hash__(self) -> int:
        return id(self)


def _part(word: str) -> tuple[str, str]:
    raw = word.strip()
    if raw.startswith("*") and raw.endswith("*") and len(raw) > 2:
        return "infix", fold(raw.strip("*"))
    if raw.endswith("*"):
        return "prefix", fold(raw[:-1])
    core = raw.replace("*", "")
    if is_acronym(core) and core.replace("-", "").isalnum():
        return "acronym", strip_marks(transliterate(core))
    return "exact", fold(core)


def word_keys(word: str, lang: str | None) -> tuple[str, str, str | None]:
    """(folded word, folded lemma, acronym or None): what forms are matched against."""
    folded = fold(word)
    lemmed = fold(lemma(word.lower(), lang))
    acro = strip_marks(transliterate(word)) if is_acronym(word) else None
    return folded, lemmed, acro


def _match(part: tuple[str, str], k: tuple[str, str, str | None]) -> bool:
    mode, key = part
    folded, lemmed, acro = k
    if mode == "exact":
        return key in (folded, lemmed)
    if mode == "prefix":
        return folded.startswith(key) or lemmed.startswith(key)
    if mode == "infix":
        return key in folded
    return acro == key


# libyaml's parser where PyYAML was built with it (the wheels are): the pure-Python one takes
# seconds over the lexicon, at every start of the matcher. Both load plain data only.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_lexicon(paths: Iterable[Path] | None = None) -> Lexicon:
    """Load every concept file (default: all YAML files of the project's lexicon folder). The
    project's lexicon is kept compiled in cachefile.folder(), under a name that changes with its
    files and with the code that compiles it: reading that copy takes a fraction of compiling."""
    if paths is not None:
        return _compile(sorted(paths))
    files = sorted(DATA_DIR.glob("*.yaml"))
    folder = cachefile.folder()
    if folder is None:
        return _compile(files)
    digest = hashlib.sha256()
    for source in (*files, Path(__file__), Path(text_module.__file__)):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    path = folder / f"lexicon-{digest.hexdigest()[:16]}.pickle"
    lexicon = cachefile.read(path)
    if not isinstance(lexicon, Lexicon):
        lexicon = _compile(files)
        cachefile.write(path, lexicon)
    logger.info("lexicon loaded", extra={"concepts": len(lexicon.concepts), "files": len(files)})
    return lexicon


def _compile(files: list[Path]) -> Lexicon:
    raw: list[dict[str, Any]] = []
    for path in files:
        loaded = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_SafeLoader) or []
        if isinstance(loaded, dict):
            loaded = loaded.get("concepts", [])
        raw.extend(loaded)
    concepts: dict[str, Concept] = {}
    for entry in raw:
        cid = entry["id"]
        if cid in concepts:
            raise ValueError(f"concept {cid} is defined twice")
        kind = entry.get("kind", "cooperation")
        if kind not in KINDS:
            raise ValueError(f"concept {cid}: unknown kind {kind!r}")
        countries = (entry["country"],) if kind == "country" else tuple(entry.get("countries") or ())
        concepts[cid] = Concept(
            id=cid,
            kind=kind,
            sector=entry.get("sector"),
            related=tuple(entry.get("related") or ()),
            labels=dict(entry.get("labels") or {}),
            countries=countries,
        )
    lexicon = Lexicon(concepts=concepts)
    for entry in raw:
        said: set[str] = set()
        for lang_forms in (entry.get("forms") or {}).values():
            for form in lang_forms or ():
                lexicon._add_form(str(form), entry["id"])
                said.add(str(form))
        for lang_forms in (entry.get("asked_forms") or {}).values():
            if entry.get("kind", "cooperation") not in SCORED:
                raise ValueError(f"concept {entry['id']}: asked forms are for what the matcher scores")
            for form in lang_forms or ():
                if str(form) not in said:  # a form it has anyway needs no asking
                    lexicon.asked[entry["id"] + ASKED_MARK] = entry["id"]
                    lexicon._add_form(str(form), entry["id"] + ASKED_MARK)
        for label in (entry.get("labels") or {}).values():  # a label is a form too (not a cue's)
            if label and entry.get("kind") != "cue":
                lexicon._add_form(str(label), entry["id"])
    lexicon.forget_words()  # nothing looked up while compiling goes into a kept copy
    logger.info("lexicon compiled", extra={"concepts": len(concepts), "files": len(files)})
    return lexicon
