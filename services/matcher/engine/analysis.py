"""Turning one organisation's texts into language-neutral evidence: what it offers and what it
seeks (concepts with the words that expressed them), the countries it wants partners from, and
within-language term counts. Pure."""

from __future__ import annotations

import marshal
import re
import zlib
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

from partnermatch.languages import is_cyrillic
from services.matcher.engine.lexicon import SCORED, Lexicon
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
    """One organisation's texts read as offers and needs. `offer_hits`: what it offers (sentences of
    its capabilities that ask for nothing, and those of its goals that say "we offer"); `seek_hits`:
    what it seeks (every sentence that asks, the rest of its goals, and its structured needs), each
    concept with the words that named it; `wishes`: the countries it wants partners from, with the
    words; `cap_terms`/`goal_terms`: word counts of each text as written."""

    language: str | None
    offer_hits: dict[str, list[str]] = field(default_factory=dict)
    seek_hits: dict[str, list[str]] = field(default_factory=dict)
    wishes: dict[str, list[str]] = field(default_factory=dict)
    asked: set[str] = field(default_factory=set)  # needs a request stated (a cue, or structured)
    cap_terms: Counter[str] = field(default_factory=Counter)
    goal_terms: Counter[str] = field(default_factory=Counter)
    term_surface: dict[str, str] = field(default_factory=dict)
    chosen: set[str] = field(default_factory=set)  # needs picked from the form (structured), not written
    # of `asked`, those only an aim of partnering in the goals stated ("cooperation with makers of
    # ..."), which count as needs by settings.partnering_weight
    partnered: set[str] = field(default_factory=set)
    # what a negation in a request took back ("we are not looking for more software houses, but
    # ..."): not needs; where it is the organisation's own sector, it asks for no peers
    refused: set[str] = field(default_factory=set)


# What reasons quote of a row other than the one just put: the concepts each side named, with the
# words, and the countries asked for (Hits); the word counts and surfaces come after them.
Hits = tuple[dict[str, list[str]], dict[str, list[str]], dict[str, list[str]]]  # offers, needs, wishes
_QUOTED_SIZE = 4  # a packed analysis starts with the size of its first part, unpacked (little-endian)


def pack(a: Analysis) -> bytes:
    """An analysis in a tenth of its memory (some 1.6 KB where the objects take 14 KB); unpack()
    gives it back equal. Two parts in one compressed stream, the size of the first before it:
    the language, hits, wishes and requests first, which reasons read (unpack_hits decompresses
    and reads only them, a seventh of unpack's time), then the word counts and surfaces."""
    quoted = marshal.dumps(
        (a.language, a.offer_hits, a.seek_hits, a.wishes, sorted(a.asked), sorted(a.partnered), sorted(a.refused))
    )
    words = marshal.dumps((dict(a.cap_terms), dict(a.goal_terms), a.term_surface, sorted(a.chosen)))
    return len(quoted).to_bytes(_QUOTED_SIZE, "little") + zlib.compress(quoted + words, 1)


def to_wire(analyses: list[Analysis]) -> bytes:
    """Analyses as one message between processes, which from_wire() gives back equal: marshal of
    plain values, in two thirds of pickle's time for the same objects (3,000 analyses written
    0.10 s against 0.15 s, read 0.09 s against 0.13 s; the reading is done by the parent, which
    shares the cores with the workers)."""
    return marshal.dumps(
        [
            (a.language, a.offer_hits, a.seek_hits, a.wishes, tuple(a.asked), dict(a.cap_terms), dict(a.goal_terms))
            + (a.term_surface, tuple(a.chosen), tuple(a.partnered), tuple(a.refused))
            for a in analyses
        ]
    )


def from_wire(data: bytes) -> list[Analysis]:
    out = []
    for language, offer_hits, seek_hits, wishes, asked, cap, goal, surface, chosen, partnered, refused in marshal.loads(
        data
    ):
        cap_terms: Counter[str] = Counter()
        dict.update(cap_terms, cap)  # Counter(cap) goes through Counter.update's Python code
        goal_terms: Counter[str] = Counter()
        dict.update(goal_terms, goal)
        out.append(
            Analysis(
                language,
                offer_hits,
                seek_hits,
                wishes,
                set(asked),
                cap_terms,
                goal_terms,
                surface,
                set(chosen),
                set(partnered),
                set(refused),
            )
        )
    return out


def unpack(packed: bytes) -> Analysis:
    data = memoryview(zlib.decompress(memoryview(packed)[_QUOTED_SIZE:]))
    language, offer_hits, seek_hits, wishes, asked, partnered, refused = marshal.loads(data)  # the first part only
    cap_terms, goal_terms, term_surface, chosen = marshal.loads(data[int.from_bytes(packed[:_QUOTED_SIZE], "little") :])
    return Analysis(
        language,
        offer_hits,
        seek_hits,
        wishes,
        set(asked),
        Counter(cap_terms),
        Counter(goal_terms),
        term_surface,
        set(chosen),
        set(partnered),
        set(refused),
    )


def unpack_hits(packed: bytes) -> Hits:
    """The offers' and needs' hits and the wishes of a packed analysis, as unpack() gives them,
    with only the first part decompressed and read."""
    size = int.from_bytes(packed[:_QUOTED_SIZE], "little")
    _, offer_hits, seek_hits, wishes, _, _, _ = marshal.loads(
        zlib.decompressobj().decompress(memoryview(packed)[_QUOTED_SIZE:], size)
    )
    return offer_hits, seek_hits, wishes


def unpack_surface(packed: bytes) -> dict[str, str]:
    """The words' surfaces of a packed analysis (term_surface), as unpack() gives them."""
    data = memoryview(zlib.decompress(memoryview(packed)[_QUOTED_SIZE:]))
    return marshal.loads(data[int.from_bytes(packed[:_QUOTED_SIZE], "little") :])[2]


# A text is read sentence by sentence: whether a sentence asks for something decides whether the
# concepts it names are offered or sought. A line that starts in lower case after a line with no
# closing punctuation continues that line's sentence (a request wrapped over two lines). A line
# ending in ":" introduces what follows it in its paragraph ("Szukamy:" and a list): they are read
# as one where that line asks or offers; else a list whose lines start with marks ("-", "•", "4.",
# "б)") is read sentence by sentence, and one without marks as one where a request or an offer is
# among its lines, else sentence by sentence.
_PARAGRAPHS = re.compile(r"\n[ \t]*\n")
_LINES = re.compile(r"[ \t]*\n\s*")
_SENTENCES = re.compile(r"(?<=[.!?;])\s+")
_LIST_MARK = re.compile(r"\s*(?:[-–—*]\s|[•·▪►\uf0b7]|\w{1,2}[.)]\s)")
_CLOSED = (".", "!", "?", ";", ":")

SEEK, OFFER, NEGATION, CONTRAST = "cue.seek", "cue.offer", "cue.negation", "cue.contrast"
# "cooperation with", "współpraca z", "Zusammenarbeit mit": in the goals, an aim of partnering with
# someone asks for them ("4. establishing cooperation with makers of heat-recovery systems"); in the
# capabilities it says whom the organisation works with, and is no cue.
PARTNERING = "cue.partnering"
# "someone who ...", "keen to meet ...": in the goals a request as "we are looking for" is; in the
# capabilities no cue ("for anyone who ...", "someone to talk to" are the organisation's customers).
WANTED = "cue.wanted"
# "brakuje nam", "uns fehlt", "we lack": a request for what follows it (what comes before it in the
# sentence is what the organisation has: "we have our own CNC shop, but we lack refrigerated
# transport"); with a negation just before or after it ("nie brakuje nam doświadczenia", "uns fehlt
# es nicht an ..."), no cue: the organisation lacks nothing.
LACK = "cue.lack"
# "our customers include dairies and wineries", "нашими заказчиками являются фармацевтические
# заводы": in the capabilities, what follows such a cue names whom the organisation serves, not
# what it offers (up to a "we offer" after it; none after a "we offer" before it); in the goals no
# cue.
CLIENTS = "cue.clients"
# "Partner sought: a research group with ...", "Poszukiwany partner:", "Traženi partner:": the
# header of a partnering network's request asks; the same words elsewhere praise ("we are a sought
# partner", "jesteśmy poszukiwanym partnerem") and are no cue. A header starts a line or a
# sentence, after a list mark or a number at most, and a ":" or the end of the line follows it.
SEEK_HEADER = "cue.seek_header"
# The kind _kinds gives an asked form's id: "a new website", "zdjęcia produktów" name their concept
# only in a sentence that asks (or a goal read as a need), see Lexicon.asked.
ASKED = "asked"
_LACK_NEGATED = 2  # a negation this many words before a lack cue, or after it, takes it back
_NEGATED_VERB = 2  # a negation's own request verb follows it within this many words
# Goals of one line and sentence (no full stop inside) and at most this many words, without a
# request or offer cue, are read as if they began "we seek:", negations included, where the
# capabilities asked for nothing: the answer of a busy member to "what do you seek?" is a fragment
# ("Hoteli, kampovi i turističke zajednice.", "CLT paneli, lijepljeno lamelirano drvo"), where a
# longer goals text without a request, a list of aims on lines, or goals beside a request in the
# capabilities often say what the organisation does or plans for itself ("Wzrost eksportu
# odlewów. Odzysk ciepła ..."), which stays an implicit need. Short plans of its own are read as
# requests too ("Izgradnja novog hotela i wellness centra"), a known cost. Chosen by a sweep on
# seekers_n (terse profiles; so no longer held out for this), bench/quality.py with the fifteen
# seekers sets (1,452 candidates), same-sector P@5 / sought-sector P@5 (seekers_n): at 0 (off)
# 0.828 / 0.687 (0.584); 8 words 0.827 / 0.696 (0.703); 11, 0.827 / 0.700 (0.750); 14 to 20,
# 0.827-0.826 / 0.702 (0.778-0.781); 25, 0.827 / 0.703 (0.784), the other sets moving by -0.007 to
# +0.019. Read as a request (negations, the capabilities' requests, lines: after a review), with
# refused_peer_damp: 0.827 / 0.712 (0.787), against 0.712 (0.781) before.
TERSE_GOALS_WORDS = 16
_FULL_STOPS = re.compile(r"(?<=[.!?])\s+")  # _SENTENCES but for ";", which separates a fragment's items


def _terse(text: str, words: list[str]) -> bool:
    """Whether goals are a fragment (TERSE_GOALS_WORDS): one line, no full stop inside."""
    stripped = text.strip()
    return len(words) <= TERSE_GOALS_WORDS and "\n" not in stripped and len(_FULL_STOPS.split(stripped)) == 1


@dataclass
class _Group:
    """A sentence of its own (one item), or a line ending in ":" (the first item) with the
    sentences after it in its paragraph (an item each); a line that continues the line before it
    is part of that line's item."""

    items: list[list[str]]
    marked: bool = False  # some of its lines start with list marks


def sentence_groups(text: str) -> list[_Group]:
    """The text's sentences, grouped as _Group says."""
    out: list[_Group] = []
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for paragraph in _PARAGRAPHS.split(text):
        group: _Group | None = None  # the open list under a line ending in ":"
        last: list[str] | None = None  # the item the sentence before went into
        before = ""  # the line before
        for line in _LINES.split(paragraph):
            marked = _LIST_MARK.match(line) is not None
            continues = last is not None and not marked and line[:1].islower() and not before.endswith(_CLOSED)
            for k, sentence in enumerate(_SENTENCES.split(line)):
                if not sentence or sentence.isspace():
                    continue
                if k == 0 and continues and last is not None:
                    last.append(sentence)
                elif sentence.rstrip().endswith(":"):
                    if group is not None:
                        out.append(group)
                    group = _Group([[sentence]])
                    last = group.items[0]
                elif group is None:
                    out.append(_Group([[sentence]]))
                    last = out[-1].items[0]
                else:
                    group.marked = group.marked or (marked and k == 0)
                    group.items.append([sentence])
                    last = group.items[-1]
            if line.strip():
                before = line.rstrip()
        if group is not None:
            out.append(group)
    return out


def _unit_ends(text: str, joining: list[int], splitting: list[int]) -> list[int]:
    """Where each unit of the text ends (word indexes): its sentences (a line that continues the
    line before it is part of its sentence: "- Szukamy partnerów z branży\n  transportowej"), but a
    line ending in ":" and the lines after it in its paragraph are one unit where a cue at one of
    `joining` (a request; an offer in the goals) is in that line ("Szukamy:" and a list: its items
    name what is sought), or among the lines of a list without marks. Else each sentence of the
    list is a unit of its own ("Cele:" and a list of aims, one of which asks or is an aim of
    partnering: that one asks, not every aim). A unit also ends before each of `splitting` (a lack
    cue)."""
    ends: list[int] = []
    at = 0
    for group in sentence_groups(text):
        sizes = [sum(len(tokens(sentence)) for sentence in item) for item in group.items]
        size = sum(sizes)
        joined = sizes[0] if group.marked else size  # where a cue joins the whole group
        if len(sizes) > 1 and any(at <= i < at + joined for i in joining):
            at += size
            ends.append(at)
            continue
        for item in sizes:
            at += item
            ends.append(at)
    return sorted(set(ends) | {i for i in splitting if 0 < i < at})


@dataclass
class _Cues:
    """The cues of one sentence that has some."""

    end: int  # the index after its last word
    asks: bool = False  # a request cue
    negations: list[int] = field(default_factory=list)  # where negation cues start
    contrasts: list[int] = field(default_factory=list)  # where contrast cues start
    requests: list[int] = field(default_factory=list)  # where request cues start (not partnering ones)
    clients: int | None = None  # where a clients cue starts ("our customers are ...", capabilities only)
    offered: int | None = None  # where the first offer cue starts

    @property
    def offers(self) -> bool:
        """It has an offer cue ("we offer", "oferujemy")."""
        return self.offered is not None

    def serves(self, i: int) -> bool:
        """Whether the word at i names whom the organisation serves: after a clients cue ("our
        customers are dairies"), up to an offer cue after it ("..., for which we make tanks"); none
        where an offer cue comes first ("we offer our customers CNC machining")."""
        if self.clients is None or i < self.clients:
            return False
        return self.offered is None or self.clients < self.offered and i < self.offered

    @property
    def partnering_only(self) -> bool:
        """It asks by aims of partnering alone ("cooperation with ..."), with no request cue."""
        return self.asks and not self.requests

    def negated(self) -> list[tuple[int, int]]:
        """The word spans its negations cover: each to the next contrast word, or to a request
        that starts anew ("nie szukamy firm IT, szukamy gospodarstw"; a request within the
        negation's own words, as in "nie szukamy", does not end it), or to the end."""
        spans = []
        for start in self.negations:
            stops = [c for c in self.contrasts if c > start] + [r for r in self.requests if r > start + _NEGATED_VERB]
            spans.append((start, min(stops, default=self.end)))
        return spans


@dataclass
class _Read:
    """One text: its concept occurrences (word index, concept, words as written) in text order,
    where each sentence ends, and the cues of the sentences that have some (by sentence)."""

    hits: list[tuple[int, str, str]]
    ends: list[int]
    cues: dict[int, _Cues]
    by_concept: dict[str, list[str]]  # the words of each concept but places, for a text without cues
    places: list[tuple[str, str]]  # (country or region, the words), for a text without cues


@lru_cache(maxsize=8)
def _kinds(lexicon: Lexicon) -> dict[str, str]:
    """Each concept's kind, and ASKED for the ids of asked forms (lexicon.asked)."""
    return {**{c.id: c.kind for c in lexicon.concepts.values()}, **dict.fromkeys(lexicon.asked, ASKED)}


def _read(
    lexicon: Lexicon, text: str, lang: str | None, in_goals: bool = False, retry: bool = True, terse_asks: bool = False
) -> tuple[_Read, Counter[str], dict[str, str]]:
    """The text's concepts and cues by sentence, its term counts, and the first word written for
    each term. The words of all sentences are looked up in one pass (the per-word work is cached;
    the loops over words run in C: map, zip, compress). Cues are kept only where they change
    something: a request anywhere, or an offer in the goals (negations and contrasts matter only
    in a sentence that asks); a text without those is read as a whole."""
    cache = lexicon.analysed.get(lang)
    if cache is None:
        cache = lexicon.analysed[lang] = {}
    generation = lexicon.generation
    words = tokens(text)  # the same words as those of its sentences, one after the other
    entries = list(map(cache.get, words))
    if None in entries:
        for i in [i for i, e in enumerate(entries) if e is None]:
            entry = cache.get(words[i])
            if entry is None:
                info = lexicon.token(words[i], lang)
                entry = cache[words[i]] = (info, _term(info.keys[1], lang))
            entries[i] = entry
    if lexicon.generation != generation and retry:  # the caches were dropped midway (grown too big):
        return _read(lexicon, text, lang, in_goals, retry=False, terse_asks=terse_asks)  # no stale TokenInfo
    kinds = _kinds(lexicon)
    hits: list[tuple[int, str, str]] = []
    by_concept: dict[str, list[str]] = {}
    places: list[tuple[str, str]] = []
    cue_hits: list[tuple[int, str, str]] = []
    asked: list[tuple[int, str, str]] = []
    for found in lexicon.concepts_at(words, list(map(_FIRST, entries))):
        concept = found[1]
        kind = kinds[concept]
        if kind == "cue":
            cue_hits.append(found)
            continue
        if kind == ASKED:  # counts in what the text asks for only (analyse), in the goals' needs
            asked.append(found)
            continue
        hits.append(found)
        if kind == "country" or kind == "region":
            places.append((concept, found[2]))
            continue
        said = by_concept.get(concept)
        if said is None:
            by_concept[concept] = [found[2]]
        else:
            said.append(found[2])
    if asked:  # not where the concept's own forms said it ("transport rutier", "mobile Apps")
        said_at = {(i + k, c) for i, c, w in hits for k in range(len(w.split()))}
        asked = [
            (i, c, w)
            for i, c, w in asked
            if all((i + k, lexicon.asked[c]) not in said_at for k in range(len(w.split())))
        ]
        hits = sorted(hits + asked, key=_FIRST)
        for _, concept, surface in asked if in_goals else ():
            by_concept.setdefault(lexicon.asked[concept], []).append(surface)
    cues: dict[int, _Cues] = {}
    ends: list[int] = []  # where each sentence ends: found only for a text whose cues matter
    wanted: set[int] = set()  # "someone who ...", "find partners": requests, but after "we offer"
    if any(c == SEEK_HEADER for _, c, _ in cue_hits):
        cue_hits = [
            (i, SEEK if c == SEEK_HEADER else c, w) for i, c, w in cue_hits if c != SEEK_HEADER or _heads(text, w)
        ]
    if in_goals:
        wanted = {i for i, c, _ in cue_hits if c == WANTED}
        # "our customers ask for ...": the goals' needs all the same, so no clients cue there
        cue_hits = [(i, SEEK if c == WANTED else c, w) for i, c, w in cue_hits if c != CLIENTS]
    else:  # whom the capabilities say the organisation works with, or its customers: no cue there
        cue_hits = [hit for hit in cue_hits if hit[1] not in (PARTNERING, WANTED)]
    if terse_asks and words and not any(c in (SEEK, PARTNERING, OFFER) for _, c, _ in cue_hits) and _terse(text, words):
        cue_hits.insert(0, (0, SEEK, ""))  # a fragment answers "what do you seek?": read as "we seek: ..."
    lacks: list[int] = []
    if any(c == LACK for _, c, _ in cue_hits):
        cue_hits, lacks = _lacks_read(cue_hits)
    if any(c in (SEEK, PARTNERING, CLIENTS) or (in_goals and c == OFFER) for _, c, _ in cue_hits):
        ends = _unit_ends(text, [i for i, c, _ in cue_hits if c == SEEK or (in_goals and c == OFFER)], lacks)
        if not ends or ends[-1] != len(words):  # cannot happen (split at spaces): one sentence then
            ends = [len(words)]
    for i, concept, _ in cue_hits if ends else ():
        u = bisect_right(ends, i)
        unit = cues.get(u)
        if unit is None:
            unit = cues[u] = _Cues(end=ends[u])
        if i in wanted and unit.offered is not None:
            continue  # "We offer export consulting and help members find partners in Serbia"
        if concept in (SEEK, PARTNERING):
            unit.asks = True
            if concept == SEEK:  # a partnering cue does not end a negation ("not cooperation with ...")
                unit.requests.append(i)
        elif concept == OFFER and unit.offered is None:
            unit.offered = i
        elif concept == CLIENTS and unit.clients is None:
            unit.clients = i
        elif concept == NEGATION:
            unit.negations.append(i)
        elif concept == CONTRAST:
            unit.contrasts.append(i)
    for unit in cues.values():
        if unit.partnering_only and unit.offers:  # "we offer cooperation with our laboratory"
            unit.asks = False
    terms = list(map(_SECOND, entries))
    surfaces = dict(zip(reversed(terms), reversed(words), strict=True))  # the first word wins
    surfaces.pop(None, None)
    return _Read(hits, ends, cues, by_concept, places), Counter(filter(None, terms)), surfaces


def _heads(text: str, said: str) -> bool:
    """Whether the words `said` (as written) stand in `text` as a header: first in a line or a
    sentence (after a list mark or a number at most), a ":" or the end of the line after them."""
    words = r"\s+".join(map(re.escape, said.split()))
    return re.search(rf"(?:^|[\n.!?;])[\s\-–—*•·▪►\d.)]*{words}[ \t]*(?::|\n|$)", text) is not None


def _lacks_read(cue_hits: list[tuple[int, str, str]]) -> tuple[list[tuple[int, str, str]], list[int]]:
    """The cues with each lack cue a request, but those a negation takes back ("nie brakuje nam",
    "uns fehlt es nicht"), which are no cue; and where the lack cues that ask start."""
    negations = [i for i, c, _ in cue_hits if c == NEGATION]
    read: list[tuple[int, str, str]] = []
    lacks: list[int] = []
    for i, concept, said in cue_hits:
        if concept == LACK:
            after = i + len(said.split())
            if any(i - _LACK_NEGATED <= n < i or after <= n < after + _LACK_NEGATED for n in negations):
                continue
            lacks.append(i)
            concept = SEEK
        read.append((i, concept, said))
    return read, lacks


def _a_request_names_nothing(read: _Read) -> bool:
    """Whether a sentence of the text asks and names no concept nor place (but cues): its need is
    what the text's other sentences describe (a problem, then "we are looking for someone to help
    us with it")."""
    named = {bisect_right(read.ends, i) for i, _, _ in read.hits}
    # not an aim of partnering that names nothing ("strengthening cooperation", "együttműködés")
    return any(cues.asks and not cues.partnering_only and u not in named for u, cues in read.cues.items())


def _inside(i: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= i < b for a, b in spans)


_FIRST: Callable[[Any], Any] = itemgetter(0)
_SECOND: Callable[[Any], Any] = itemgetter(1)


def _term(lemmed: str, lang: str | None) -> str | None:
    """The word as a within-language feature, or None for stop words, numbers and scraps."""
    if len(lemmed) < 3 or lemmed in stopwords(lang) or _HAS_DIGIT(lemmed):
        return None
    return lemmed


_HAS_DIGIT = re.compile(r"\d").search


def analyse(
    lexicon: Lexicon,
    capabilities: str,
    goals: str,
    language: str | None,
    offers: Iterable[str] = (),
    seeks: Iterable[str] = (),
    seeks_countries: Iterable[str] = (),
) -> Analysis:
    """Read both texts sentence by sentence. A sentence that asks (a request cue: "szukamy",
    "тражимо", "we are looking for", ...; what the organisation lacks, from the cue on; in the goals
    also "someone who ...", and an aim of partnering, "cooperation with ...", whose needs are kept
    apart in `partnered`) adds what it names to the needs, except what a negation covers ("not ...,
    but ..."), and the countries it names to the wishes; asked forms ("a new website") name their
    concept only there and in the goals' needs. Other sentences of the capabilities are offers,
    but for the customers they name ("our customers include dairies"); other sentences of the
    goals are needs, unless they say "we offer"
    (stated ones where a request of the goals names nothing itself: "we are looking for someone to
    help us with this" after the problem); goals of one short sentence without a cue are read as a
    request where the capabilities asked for nothing (TERSE_GOALS_WORDS).
    Structured needs (lexicon ids, country codes) count as if named twice, in the profile's language
    and the script of its texts."""
    result = Analysis(language=language)
    partnered: set[str] = set()  # needs stated by an aim of partnering ("cooperation with ...")
    requested: set[str] = set()  # needs stated by a request ("we are looking for ...")
    cap_read, result.cap_terms, cap_words = _read(lexicon, capabilities, language)
    terse_asks = not any(cues.asks for cues in cap_read.cues.values())  # else the goals may be its own plans
    goal_read, result.goal_terms, goal_words = _read(lexicon, goals, language, in_goals=True, terse_asks=terse_asks)
    result.term_surface = {**goal_words, **cap_words}  # a capability's wording first
    concepts, kinds = lexicon.concepts, _kinds(lexicon)
    plain = _Cues(end=0)  # a sentence without cues
    for read, in_goals in ((cap_read, False), (goal_read, True)):
        if not read.cues:  # the common case: the whole text is offers (capabilities) or needs (goals)
            if in_goals:
                for concept, surface in read.places:
                    for code in concepts[concept].countries:
                        result.wishes.setdefault(code, []).append(surface)
                if not result.seek_hits:
                    result.seek_hits = read.by_concept
                    continue
            elif not result.offer_hits:
                result.offer_hits = read.by_concept
                continue
            side = result.seek_hits if in_goals else result.offer_hits
            for concept, said in read.by_concept.items():
                known = side.get(concept)
                if known is None:
                    side[concept] = said
                else:
                    known.extend(said)
            continue
        negated: dict[int, list[tuple[int, int]]] = {u: cues.negated() for u, cues in read.cues.items()}
        # A request in the goals that names nothing ("we are looking for someone to sort this out")
        # asks for what the goals' other sentences describe: their needs count as stated too.
        about_the_rest = in_goals and _a_request_names_nothing(read)
        for i, concept, surface in read.hits:
            u = bisect_right(read.ends, i)
            unit = read.cues.get(u, plain)
            kind = kinds[concept]
            if unit.asks and unit.negations and _inside(i, negated[u]):
                if kind not in ("country", "region", ASKED):
                    result.refused.add(concept)
                continue  # "we are not looking for more software firms, but ..."
            seeking = unit.asks or (in_goals and not unit.offers)
            if kind == ASKED:  # "a new website" names the concept only where it is asked for
                if not seeking:
                    continue
                concept = lexicon.asked[concept]
                kind = kinds[concept]
            if kind == "country" or kind == "region":
                if seeking:
                    for code in concepts[concept].countries:
                        result.wishes.setdefault(code, []).append(surface)
                continue
            if not seeking and unit.serves(i):
                continue  # "our customers are dairies": whom it serves, not what it does
            side = result.seek_hits if seeking else result.offer_hits
            found = side.get(concept)
            if found is None:
                side[concept] = [surface]
            else:
                found.append(surface)
            if unit.asks or (seeking and about_the_rest):
                result.asked.add(concept)
                if unit.partnering_only:
                    partnered.add(concept)
                else:
                    requested.add(concept)
    result.partnered = partnered - requested
    # Their labels stand for the organisation's own words in reasons, so they are written in its
    # script too: Serbian texts in Cyrillic get the Cyrillic labels.
    offers, seeks, seeks_countries = tuple(offers), tuple(seeks), tuple(seeks_countries)
    labels_in = language or "en"
    if language == "sr" and (offers or seeks or seeks_countries) and is_cyrillic(f"{capabilities} {goals}"):
        labels_in = "sr-Cyrl"
    for ids, side in ((offers, result.offer_hits), (seeks, result.seek_hits)):
        for concept in ids:
            if concept in concepts and concepts[concept].kind in SCORED:
                label = concepts[concept].label(labels_in)
                side.setdefault(concept, []).extend((label, label))
                if side is result.seek_hits:
                    result.asked.add(concept)
                    result.chosen.add(concept)
                    result.partnered.discard(concept)
    for code in seeks_countries:
        name = f"country.{code}"
        label = concepts[name].label(labels_in) if name in concepts else code
        result.wishes.setdefault(code, []).extend((label, label))
    return result
