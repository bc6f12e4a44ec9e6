"""The cross-lingual matching index: fit once, then add, replace or remove one organisation at a time.

Needs first: B's score in A's list is how well B offers what A seeks (the sectors and activities
A's requests name, and the countries A asked for), then what A offers that B seeks, shared sector
(related sectors can count partly: `related_weight`, 0 by default) and whole-profile likeness of
activities, a within-language term signal, and a both-ways bonus on the best candidates. So a
score is not symmetric: A's need met is not B's. Concept and word weights are scikit-learn's
TF-IDF, learnt again as the index changes (reweigh). Pure (no I/O).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import multiprocessing as mp
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from partnermatch.languages import detect_language
from services.matcher.engine.analysis import Analysis, analyse
from services.matcher.engine.lexicon import SCORED, Lexicon, load_lexicon

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class OrgProfile:
    id: str
    name: str = ""
    cluster: str = ""
    country: str = ""
    capabilities: str = ""
    goals: str = ""
    language: str | None = None
    # Optional structured needs, chosen from lists: sector or activity ids of the lexicon, and
    # ISO 3166-1 alpha-2 codes. Strong evidence where given; the texts are read either way.
    offers: tuple[str, ...] = ()
    seeks: tuple[str, ...] = ()
    seeks_countries: tuple[str, ...] = ()


class Reason(NamedTuple):  # a tuple: millions are made in a batch run
    concept: str | None
    kind: str  # sector | activity | cooperation | term
    direction: str  # a_offers_b_seeks | b_offers_a_seeks | shared
    weight: float
    terms_a: tuple[str, ...]
    terms_b: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"concept": self.concept, "kind": self.kind, "direction": self.direction,
                "weight": round(self.weight, 4), "terms_a": list(self.terms_a), "terms_b": list(self.terms_b)}


@dataclass(frozen=True)
class Suggestion:
    id: str
    score: float
    reasons: tuple[Reason, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": round(self.score, 4), "reasons": [r.to_dict() for r in self.reasons]}


@dataclass
class Update:
    """What one upsert or removal changed: the organisation's own list, and the other
    organisations whose cached lists it entered or left (with their new lists)."""

    org_id: str
    suggestions: list[Suggestion]
    entered: dict[str, list[Suggestion]] = field(default_factory=dict)
    left: dict[str, list[Suggestion]] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineSettings:
    w_sector: float = 0.65  # shared sector
    w_profile: float = 0.15  # whole-profile concept likeness
    # What the organisation seeks against what the candidate offers (its needs met), and the
    # reverse (it meets the candidate's needs): concept by concept, and sector by sector (what
    # the candidate does, read mostly from its capabilities, against the sectors sought).
    # A need met against likeness is the trade-off between the two quality bars: what seekers
    # seek, and the same sector for the dev set, whose organisations also state needs (a third of
    # them, other sectors than their own). Tuned on the dev set and seekers_a only (seekers_b held
    # out): P@5 same sector / sought sector of those seeking another sector, at 0.45: 0.894 /
    # 0.495; 0.55: 0.862 / 0.585; 0.65: 0.830 / 0.655; 0.8: 0.77 / 0.76. A peer slot kept in each
    # list traded worse (0.035 of same sector for 0.1 of sought). The candidate's sector meeting
    # the other's need (w_give_sector) lowered both.
    w_need: float = 0.25
    w_give: float = 0.04
    w_need_sector: float = 0.55
    w_give_sector: float = 0.0
    # A candidate in a country the organisation asked for, and the reverse. Seekers_a's country
    # wishes met in the top 5: 0.22 at 0.1, 0.48 at 0.3 (nothing else changed), 0.63 at 0.6 (at
    # the cost of sought sectors and same sector: a country is no partner by itself).
    w_country: float = 0.3
    w_country_give: float = 0.03
    w_both_ways: float = 0.08  # bonus: the weaker of the two directions
    w_terms: float = 0.10  # within-language words (same-language texts only share them)
    # How much a related sector counts as a shared one. The dev set says not at all: at 0.35,
    # P@5 same sector was 0.952 and related 0.985; at 0 they are 0.965 and 0.986, better in each
    # of its three parts, since related-sector partners were pushed above same-sector ones.
    related_weight: float = 0.0
    rollup: float = 0.5  # an activity also counts for its sector
    # How much the goals count toward an organisation's own sector, against 1 for its capabilities:
    # what it seeks is often another sector (a dairy seeking biogas partners, a paint maker seeking
    # furniture makers). P@5 same sector, dev set / 64 profiles a helper wrote later: at 1.0,
    # 0.970 / 0.681; at 0.3, 0.984 / 0.688; at 0, 0.990 / 0.691. Not 0: a text whose capabilities
    # name no sector still has one.
    goal_sector_weight: float = 0.3
    # How much a need counts toward the sought sectors when no request states it (a goals sentence
    # without "we seek ..."), against 1 when one does: such goals often say what the organisation
    # does or wants for itself rather than whom it seeks.
    implicit_need_weight: float = 0.25
    # A need for the organisation's own sector counts less by its share of that sector: a request
    # often names its own products ("we seek distributors for our cheese"), and peers are found
    # by likeness anyway.
    own_sector_discount: float = 1.0
    # A sector counts in the sector block only: in the profile, capability and goal blocks too, it
    # would add little (dev set: P@5 0.948 with it, 0.952 without) and a quarter of the work of
    # the batch's sparse product, whose densest columns it made.
    kind_weight: tuple[tuple[str, float], ...] = (("sector", 0.0), ("activity", 1.0), ("cooperation", 0.2))
    max_term_df: float = 0.15  # words in more profiles than this share say nothing
    candidates: int = 60
    cached_k: int = 10
    max_reasons: int = 5
    # A need met that adds at least this to the score is named first among the reasons.
    need_first_min: float = 0.02
    # The weights are learnt again from the whole index once this many changes (upserts and
    # removals), and at least this share of the index, have happened since they were last learnt.
    reweigh_min_changes: int = 200
    reweigh_share: float = 0.2


def _l2(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _l2_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)


def _other_sectors(sought: np.ndarray, is_: np.ndarray, discount: float) -> np.ndarray:
    """Sought sectors (unit rows) less the organisation's own: each is kept in the share it is
    not the organisation's (`is_`, unit rows), and the rest counts in full where it was at least
    half of the need (a request naming its own products besides what it seeks), in proportion
    where less (a need mostly for peers, who are found by likeness anyway)."""
    other = sought * np.maximum(0.0, 1.0 - discount * is_)
    norms = np.linalg.norm(other, axis=1, keepdims=True)
    return other / np.maximum(norms, 0.5)


def _tf(count: float) -> float:
    return 1.0 + math.log(count) if count > 0 else 0.0


class MatchEngine:
    def __init__(self, lexicon: Lexicon | None = None, settings: EngineSettings | None = None) -> None:
        self.lex = lexicon or load_lexicon()
        self.s = settings or EngineSettings()
        # the concepts scored (countries and cues are read by the analysis, not scored as features)
        self.concepts = sorted(c for c, concept in self.lex.concepts.items() if concept.kind in SCORED)
        self.cidx = {c: i for i, c in enumerate(self.concepts)}
        self.sectors = self.lex.sectors
        self.sidx = {s: i for i, s in enumerate(self.sectors)}
        kinds = dict(self.s.kind_weight)
        self._kinds = {c: self.lex.concepts[c].kind for c in self.concepts}
        self._is_coop = np.array([self._kinds[c] == "cooperation" for c in self.concepts], bool)
        # Whole-profile likeness leaves the cooperation vocabulary out: every cluster text speaks of
        # innovation, projects and SMEs, so two profiles alike in it are alike in nothing. (It still
        # counts in what one side offers and the other seeks.)
        self._in_profile = np.where(self._is_coop, 0.0, 1.0).astype(np.float32)
        # What a reason weighs is what it adds to the score: for a sector, the product of the two
        # sides' sector weights (offered: the sector block; sought: the sought-sector block) times
        # w_need_sector or w_give_sector, or times w_sector when shared; for any other concept, that
        # of their offer and seek weights times w_need or w_give, or of profile weights times
        # w_profile (shared).
        self._sector_col = np.array([self.sidx[c] if self._kinds[c] == "sector" and c in self.sidx else -1
                                     for c in self.concepts], np.int64)
        is_sector = self._sector_col >= 0
        self._mult_need = np.where(is_sector, self.s.w_need_sector, self.s.w_need).astype(np.float64)
        self._mult_give = np.where(is_sector, self.s.w_give_sector, self.s.w_give).astype(np.float64)
        self._mult_prof = np.where(is_sector, self.s.w_sector, self.s.w_profile).astype(np.float64)
        self.kind_w = np.array([kinds.get(self.lex.concepts[c].kind, 1.0) for c in self.concepts], np.float32)
        self.concept_sector = np.array([self.sidx.get(self.lex.sector_of(c) or "", -1) for c in self.concepts])
        # A sector is evidenced by its own words and by those of its activities: the column of the
        # sector concept each concept counts for (-1: none), and the same as a 0/1 matrix.
        self._sector_concept_of = np.array([self.cidx[self.sectors[s]] if s >= 0 else -1
                                            for s in self.concept_sector], np.int64)
        self._sector_of_id = {c: int(j) for c, j in zip(self.concepts, self._sector_concept_of, strict=True) if j >= 0}
        has = np.flatnonzero(self._sector_concept_of >= 0)
        self._to_sector_concept = sp.csr_matrix(
            (np.ones(len(has), np.int8), (has, self._sector_concept_of[has])), shape=(len(self.concepts),) * 2)
        rel = np.eye(len(self.sectors), dtype=np.float32)
        for s in self.sectors:
            for r in self.lex.concepts[s].related:
                if r in self.sidx:
                    rel[self.sidx[s], self.sidx[r]] = rel[self.sidx[r], self.sidx[s]] = self.s.related_weight
        self.related = rel
        nc0 = len(self.concepts)
        roll = sp.lil_matrix((nc0, nc0), dtype=np.float32)  # a concept counts for itself, an activity
        to_sector = sp.lil_matrix((nc0, len(self.sectors)), dtype=np.float32)  # also for its sector
        for i, c in enumerate(self.concepts):
            roll[i, i] = 1.0
            parent = self.lex.concepts[c].sector
            if parent in self.cidx:
                roll[i, self.cidx[parent]] += self.s.rollup
            if self.concept_sector[i] >= 0:
                to_sector[i, self.concept_sector[i]] = 1.0
        self._rollup, self._to_sector = roll.tocsr(), to_sector.tocsr()
        nc, ns = len(self.concepts), len(self.sectors)
        self.countries = sorted({code for c in self.lex.concepts.values() if c.kind == "country"
                                 for code in c.countries})
        self.country_idx = {code: i for i, code in enumerate(self.countries)}
        nk = len(self.countries)
        # Right-hand vector layout: [sector | profile | seeks | offers | sought sectors | country |
        # countries wished]. A score is left(A) · right(B), where left(A) puts A's blocks against the
        # blocks of B they meet (_left_map): a linear map, so one product per row gives A's list and
        # one with its transpose gives every list B would enter.
        sizes = {"sector": ns, "profile": nc, "seeks": nc, "offers": nc, "seek_sector": ns, "country": nk, "wish": nk}
        self.block: dict[str, slice] = {}
        at = 0
        for name, size in sizes.items():
            self.block[name] = slice(at, at + size)
            at += size
        self.dim = at
        s = self.s
        # (block of B met, block of A, weight, matrix applied to A's block or None)
        self._left_map: tuple[tuple[str, str, float, np.ndarray | None], ...] = (
            ("sector", "sector", s.w_sector, self.related),
            ("profile", "profile", s.w_profile, None),
            ("offers", "seeks", s.w_need, None),
            ("seeks", "offers", s.w_give, None),
            ("sector", "seek_sector", s.w_need_sector, None),
            ("seek_sector", "sector", s.w_give_sector, None),
            ("country", "wish", s.w_country, None),
            ("wish", "country", s.w_country_give, None),
        )
        self.idf = np.ones(nc, np.float32)
        self.term_idf: dict[str, float] = {}
        self._term_col: dict[str, int] = {}
        self._words_tfidf: Any = None  # scikit-learn's TfidfTransformer of the words, once fitted
        self._changes = 0  # upserts and removals since the weights were learnt
        self._reset(0)

    # ---- storage ----------------------------------------------------------------------------

    def _reset(self, capacity: int) -> None:
        self.ids: list[str] = []
        self.row: dict[str, int] = {}
        self.right = np.zeros((max(capacity, 16), self.dim), np.float32)
        self.cluster_code = np.zeros(max(capacity, 16), np.int64)
        self.active = np.zeros(max(capacity, 16), bool)
        self.clusters: dict[str, int] = {}
        self.profiles: list[OrgProfile | None] = []
        self.analyses: list[Analysis | None] = []
        self.terms: list[dict[str, float]] = []
        self._ev: list[_Evidence | None] = []  # per row, built when its reasons are first needed
        self.topk: dict[str, list[Suggestion]] = {}
        self._listed_in: dict[str, set[str]] = {}  # org -> orgs whose cached list holds it
        self._words: sp.csr_matrix | None = None  # word vectors of the rows, built lazily
        self._words_by_term: sp.csc_matrix | None = None  # the same, column-major
        self._dirty: set[int] = set()  # rows whose words changed since
        self._sparse_right: sp.csc_matrix | None = None  # the rows' vectors as built last, sparse
        self._right_dirty: set[int] = set()  # rows whose vectors changed since
        self._kth = np.full(max(capacity, 16), np.inf, np.float32)  # k-th cached score; inf: no list
        self._fitted: tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix] | None = None

    def _grow(self) -> None:
        cap = self.right.shape[0] * 2
        self.right = np.resize(self.right, (cap, self.dim))
        self.right[len(self.ids):] = 0
        for name, fill in (("cluster_code", 0), ("active", False), ("_kth", np.inf)):
            old = getattr(self, name)
            new = np.full(cap, fill, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def _cluster(self, name: str) -> int:
        return self.clusters.setdefault(name, len(self.clusters))

    def __len__(self) -> int:
        return int(self.active[: len(self.ids)].sum())

    def __contains__(self, org_id: str) -> bool:
        return org_id in self.row

    # ---- features ---------------------------------------------------------------------------

    def _analyse(self, p: OrgProfile) -> Analysis:
        lang = p.language or detect_language(f"{p.capabilities}\n{p.goals}")
        return analyse(self.lex, p.capabilities or "", p.goals or "", lang, p.offers, p.seeks, p.seeks_countries)

    def _analyse_all(self, items: list[OrgProfile], workers: int, chunk: int = 1000
                     ) -> Iterator[list[Analysis]]:
        """Analyses in input order, a chunk at a time."""
        chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
        if workers <= 1 or len(chunks) < 2 or not can_fork():
            for part in chunks:
                yield [self._analyse(p) for p in part]
            return
        # The first chunk is analysed here: the workers then inherit the per-word caches it filled,
        # rather than each looking up the most common words again.
        yield [self._analyse(p) for p in chunks[0]]
        global _FORKED
        _FORKED = self
        try:
            with frozen_objects(), ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
                # a worker that dies (killed, out of memory) raises BrokenProcessPool here
                analysed = pool.map(_analyse_chunk, chunks[1:])  # every chunk is handed out now
                _tfidf_transformer()  # what fit() needs next, imported while this process waits
                yield from analysed
        finally:
            _FORKED = None

    def _concept_vec(self, hits: dict[str, list[str]]) -> np.ndarray:
        v = np.zeros(len(self.concepts), np.float32)
        for c, words in hits.items():
            i = self.cidx.get(c)
            if i is None:
                continue
            v[i] += _tf(len(words))
            sector = self.lex.concepts[c].sector
            if sector in self.cidx:
                v[self.cidx[sector]] += self.s.rollup * _tf(len(words))
        return v * self.idf * self.kind_w

    def _vectors(self, a: Analysis, country: str) -> tuple[np.ndarray, dict[str, float]]:
        cap = self._concept_vec(a.offer_hits)
        goal = self._concept_vec(a.seek_hits) if a.seek_hits else 0.5 * cap
        prof = (cap + goal) * self._in_profile
        sector = np.zeros(len(self.sectors), np.float32)
        sought = np.zeros(len(self.sectors), np.float32)
        for hits, share in ((a.offer_hits, 1.0), (a.seek_hits, self.s.goal_sector_weight)):
            for c, words in hits.items():
                i = self.cidx.get(c)
                if i is not None and self.concept_sector[i] >= 0:
                    weight = _tf(len(words)) * self.idf[i]
                    sector[self.concept_sector[i]] += share * weight
                    if hits is a.seek_hits:
                        stated_here = 1.0 if c in a.asked else self.s.implicit_need_weight
                        sought[self.concept_sector[i]] += weight * stated_here
        stated = any(self.concept_sector[self.cidx[c]] >= 0 for c in a.asked if c in self.cidx)
        strength = 1.0 if stated else self.s.implicit_need_weight
        is_ = _l2(sector)
        sought = strength * _other_sectors(_l2(sought)[None, :], is_[None, :], self.s.own_sector_discount)[0]
        right = np.concatenate([is_, _l2(prof), _l2(goal), _l2(cap), sought,
                                *self._country_blocks(country, a)]).astype(np.float32)
        return right, self._term_vec(a)

    def _country_blocks(self, country: str, a: Analysis) -> tuple[np.ndarray, np.ndarray]:
        """Where the organisation is (one-hot) and the countries it asked for (1 each; its own
        country is no wish: "Polish partners" in a Polish text is about itself)."""
        here = np.zeros(len(self.countries), np.float32)
        wish = np.zeros(len(self.countries), np.float32)
        if country in self.country_idx:
            here[self.country_idx[country]] = 1.0
        for code in a.wishes:
            if code != country and code in self.country_idx:
                wish[self.country_idx[code]] = 1.0
        return here, wish

    def _term_vec(self, a: Analysis) -> dict[str, float]:
        terms = a.cap_terms + a.goal_terms
        idf = self.term_idf
        tv = {t: _tf(n) * idf[t] for t, n in terms.items() if t in idf}
        norm = math.sqrt(sum(x * x for x in tv.values())) or 1.0
        return {t: x / norm for t, x in tv.items()}

    def _term_counts(self, analyses: list[Analysis]) -> sp.csr_matrix:
        """Word counts of both texts, one row each, over the columns of self._term_col."""
        get = self._term_col.get
        lengths, cols, counts = [], [], []
        for a in analyses:
            for side in (a.cap_terms, a.goal_terms):
                cols.extend(map(get, side, repeat(-1)))  # -1: a word too rare or too common to count
                counts.extend(side.values())
            lengths.append(len(a.cap_terms) + len(a.goal_terms))
        row = np.repeat(np.arange(len(analyses)), lengths)
        col, count = np.array(cols, np.int64), np.array(counts, np.float64)
        keep = col >= 0
        m = sp.csr_matrix((count[keep], (row[keep], col[keep])), shape=(len(analyses), max(len(self._term_col), 1)))
        m.sum_duplicates()  # a word of both texts: its counts add up, as in cap_terms + goal_terms
        return m

    def _term_vectors(self, analyses: list[Analysis], counts: sp.csr_matrix | None = None) -> sp.csr_matrix:
        """What _term_vec gives one by one, for many analyses at once: scikit-learn's sublinear
        TF-IDF, L2-normalised, one float64 row each over the columns of self._term_col."""
        counts = self._term_counts(analyses) if counts is None else counts
        if not self.term_idf:
            return sp.csr_matrix(counts.shape, dtype=np.float64)
        return self._words_tfidf.transform(counts).tocsr()

    def _vectors_many(self, analyses: list[Analysis], countries: list[str],
                      counts: tuple[sp.csr_matrix, sp.csr_matrix] | None = None) -> np.ndarray:
        """The right-hand vectors of many analyses at once (what _vectors gives one by one);
        `counts`: their concept counts (offers, seeks) when already made."""

        def tf(m: sp.csr_matrix) -> sp.csr_matrix:
            m = m.copy()
            m.data = (1.0 + np.log(m.data)).astype(np.float32)
            return m

        if counts is None:
            counts = self._concept_counts(analyses, "offer_hits"), self._concept_counts(analyses, "seek_hits")
        c_cap, c_goal = counts
        weight = self.idf * self.kind_w
        cap = np.asarray((tf(c_cap) @ self._rollup).todense()) * weight
        goal = np.asarray((tf(c_goal) @ self._rollup).todense()) * weight
        no_goal = np.array([not a.seek_hits for a in analyses], bool)
        goal[no_goal] = 0.5 * cap[no_goal]
        prof = (cap + goal) * self._in_profile
        said = tf(c_cap) + self.s.goal_sector_weight * tf(c_goal)
        sector = np.asarray((said.multiply(self.idf[None, :]).tocsr() @ self._to_sector).todense())
        need = tf(c_goal)
        asked = self._asked(analyses)
        need = self.s.implicit_need_weight * need + (1.0 - self.s.implicit_need_weight) * need.multiply(asked).tocsr()
        sought = np.asarray((need.multiply(self.idf[None, :]).tocsr() @ self._to_sector).todense())
        stated = np.asarray((asked @ self._to_sector).sum(axis=1)).ravel() > 0
        strength = np.where(stated, 1.0, self.s.implicit_need_weight).astype(np.float32)[:, None]
        places = [self._country_blocks(country, a) for a, country in zip(analyses, countries, strict=True)]
        here = np.array([p[0] for p in places], np.float32).reshape(len(analyses), len(self.countries))
        wish = np.array([p[1] for p in places], np.float32).reshape(len(analyses), len(self.countries))
        is_ = _l2_rows(sector)
        sought = strength * _other_sectors(_l2_rows(sought), is_, self.s.own_sector_discount)
        return np.hstack([is_, _l2_rows(prof), _l2_rows(goal), _l2_rows(cap), sought,
                          here, wish]).astype(np.float32)

    def _asked(self, analyses: list[Analysis]) -> sp.csr_matrix:
        """Per row, 1 for each concept a request states as a need (a cue or structured)."""
        rows, cols = [], []
        for r, a in enumerate(analyses):
            for c in a.asked:
                if c in self.cidx:
                    rows.append(r)
                    cols.append(self.cidx[c])
        return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(analyses), len(self.concepts)))

    def _concept_counts(self, analyses: list[Analysis | None], side: str) -> sp.csr_matrix:
        """How many words named each concept on one side ("offer_hits", "seek_hits"), one row each."""
        indptr, cols, vals = [0], [], []
        cidx = self.cidx
        for a in analyses:
            if a is not None:
                hits = getattr(a, side)
                cols.extend(map(cidx.__getitem__, hits))  # every concept found is one of the lexicon's
                vals.extend(map(len, hits.values()))
            indptr.append(len(cols))
        m = sp.csr_matrix((np.array(vals, np.float32), np.array(cols, np.int64), np.array(indptr, np.int64)),
                          shape=(len(analyses), len(self.concepts)))
        m.sort_indices()  # products then add in concept order, whatever order the text named them
        return m

    def _left(self, right: np.ndarray) -> np.ndarray:
        """A's blocks placed against the blocks of B they meet: a candidate B scores left · right(B)."""
        return self._left_rows(right[None, :])[0]

    def _left_rows(self, rows: np.ndarray) -> np.ndarray:
        """_left of many right-hand vectors at once (one per row of `rows`)."""
        left = np.zeros((rows.shape[0], self.dim), np.float32)
        for met, own, weight, matrix in self._left_map:
            part = rows[:, self.block[own]]
            left[:, self.block[met]] += weight * (part @ matrix.T if matrix is not None else part)
        return left

    def _left_t(self, right: np.ndarray) -> np.ndarray:
        """The transpose of _left: right(A) · _left_t(right(B)) is the score of B in A's list."""
        out = np.zeros(self.dim, np.float32)
        for met, own, weight, matrix in self._left_map:
            part = right[self.block[met]]
            out[self.block[own]] += weight * (matrix.T @ part if matrix is not None else part)
        return out

    # ---- fitting ----------------------------------------------------------------------------

    def fit(self, profiles: Iterable[OrgProfile], progress: Progress | None = None, workers: int = 1
            ) -> None:
        """Analyse every profile, learn the weights of concepts and words, index them all.
        `workers` > 1 analyses in that many forked processes where forking is safe (no other
        thread running, as in the batch command); elsewhere it analyses in this process."""
        items = list(profiles)
        seen: set[str] = set()
        for p in items:
            if p.id in seen:
                raise ValueError(f"organisation {p.id} appears twice")
            seen.add(p.id)
        analyses: list[Analysis] = []
        for batch in self._analyse_all(items, workers):
            analyses.extend(batch)
            if progress is not None:
                progress(len(analyses), len(items))
        self._index(items, analyses)

    def _index(self, items: list[OrgProfile], analyses: list[Analysis]) -> None:
        """Learn the weights of concepts and words from these analyses, and index them all anew."""
        tfidf = _tfidf_transformer()
        total = max(len(items), 1)
        c_cap, c_goal = self._concept_counts(analyses, "offer_hits"), self._concept_counts(analyses, "seek_hits")
        # scikit-learn's smoothed IDF, over the organisations that name each concept
        if analyses:
            self.idf = tfidf(smooth_idf=True).fit((c_cap + c_goal) > 0).idf_.astype(np.float32)
        else:
            self.idf = np.ones(len(self.concepts), np.float32)
        term_df: Counter[str] = Counter()
        for a in analyses:
            term_df.update(a.cap_terms.keys() | a.goal_terms.keys())
        limit = max(2, self.s.max_term_df * total)
        kept = sorted(t for t, n in term_df.items() if 2 <= n <= limit)  # words two share, and not too common
        self._term_col = {t: i for i, t in enumerate(kept)}
        self._reset(len(items))
        counts = self._term_counts(analyses)
        self._words_tfidf = tfidf(sublinear_tf=True, smooth_idf=True)
        if counts.shape[0] and kept:
            self._words_tfidf.fit(counts)
            self.term_idf = dict(zip(kept, self._words_tfidf.idf_.tolist(), strict=True))
        else:
            self.term_idf = {}
        words64 = self._term_vectors(analyses, counts)
        names = self._term_names()
        row_terms = list(map(names.__getitem__, words64.indices.tolist()))
        row_weights, bounds = words64.data.tolist(), words64.indptr.tolist()
        for start in range(0, len(items), 5000):
            end = min(start + 5000, len(items))
            vectors = self._vectors_many(analyses[start:end], [p.country for p in items[start:end]],
                                         (c_cap[start:end], c_goal[start:end]))
            for r, right in zip(range(start, end), vectors, strict=True):
                lo, hi = bounds[r], bounds[r + 1]
                self._put(items[r], analyses[r], (right, dict(zip(row_terms[lo:hi], row_weights[lo:hi], strict=True))))
        # kept for the batch while no row changes (_put drops them)
        self._fitted = (words64, (c_cap > 0).astype(np.int8).tocsr(), (c_goal > 0).astype(np.int8).tocsr())
        self._changes = 0
        logger.info("index fitted", extra={"profiles": len(items), "terms": len(self.term_idf)})

    def reweigh(self) -> None:
        """Learn the weights again from the organisations indexed now, without analysing their
        texts again (the analyses are kept): the weights follow the corpus as profiles arrive.
        Cached lists are dropped, as after fit(); they are made again when asked for."""
        started = time.perf_counter()
        kept = [(p, a) for p, a, on in zip(self.profiles, self.analyses, self.active, strict=False)
                if on and p is not None and a is not None]
        self._index([p for p, _ in kept], [a for _, a in kept])
        logger.info("index weights learnt again", extra={
            "profiles": len(kept), "seconds": round(time.perf_counter() - started, 2)})

    def _changed(self) -> None:
        """Count one change; once a share of the index has changed since the weights were learnt,
        learn them again (its cost, linear in the index, is so spread over many events)."""
        self._changes += 1
        if self._changes >= max(self.s.reweigh_min_changes, self.s.reweigh_share * len(self)):
            self.reweigh()

    def _put(self, p: OrgProfile, a: Analysis, vectors: tuple[np.ndarray, dict[str, float]] | None = None) -> int:
        right, terms = vectors if vectors is not None else self._vectors(a, p.country)
        if vectors is None:
            self._fitted = None
        r = self.row.get(p.id)
        if r is None:
            if len(self.ids) == self.right.shape[0]:
                self._grow()
            r = len(self.ids)
            self.ids.append(p.id)
            self.profiles.append(p)
            self.analyses.append(a)
            self.terms.append(terms)
            self._ev.append(None)
            self.row[p.id] = r
        else:
            self.profiles[r], self.analyses[r], self.terms[r] = p, a, terms
            self._ev[r] = None
            self._dirty.add(r)
            self._right_dirty.add(r)
        self.right[r] = right
        self.cluster_code[r] = self._cluster(p.cluster)
        self.active[r] = True
        return r

    # ---- scoring ----------------------------------------------------------------------------

    def _term_scores(self, r: int) -> np.ndarray:
        """Word likeness of row r with every row: from the columns of r's words in the word matrix
        built last (column-major, so only those words' rows are read), plus plain dictionary
        products for the rows changed since (rebuilt when they pile up)."""
        n = len(self.ids)
        if self._words is None or len(self._dirty) > 2000:
            self._words, self._dirty = self._term_matrix(), set()
            self._words_by_term = None
        if self._words_by_term is None:
            self._words_by_term = self._words.tocsc()
        out = np.zeros(n, np.float32)
        built = self._words.shape[0]
        x = self.terms[r]
        if x:
            cols = [self._term_col[t] for t in x if t in self._term_col]
            if cols:
                weights = np.array([x[t] for t in x if t in self._term_col], np.float32)
                out[:built] = self._words_by_term[:, cols] @ weights
        for o in self._dirty | set(range(built, n)):
            out[o] = _dot(x, self.terms[o])
        return out

    def _products(self, lefts: np.ndarray) -> np.ndarray:
        """Every row's vector times each column of `lefts`: from the vectors as built last, held
        sparse and column-major, only the columns `lefts` use are read (most of a row's columns
        are zero, and a left vector names few of them); plus dense products for the rows changed
        since (rebuilt when they pile up)."""
        n = len(self.ids)
        if (self._sparse_right is None
                or len(self._right_dirty) + n - self._sparse_right.shape[0] > 2000):
            self._sparse_right, self._right_dirty = sp.csc_matrix(self.right[:n]), set()
        built = self._sparse_right.shape[0]
        out = np.empty((n, lefts.shape[1]), np.float32)
        used = np.flatnonzero(np.any(lefts != 0, axis=1))
        out[:built] = self._sparse_right[:, used] @ lefts[used]
        changed = sorted(self._right_dirty | set(range(built, n)))
        if changed:
            out[changed] = self.right[changed] @ lefts
        return out

    def _linear_row(self, r: int) -> np.ndarray:
        """The linear part of every row's score in r's list (-inf where it may not be suggested)."""
        scores = self._products(self._left(self.right[r])[:, None])[:, 0]
        return self._allowed(r, scores + self.s.w_terms * self._term_scores(r))

    def _linear_both(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """The linear part of every row's score in r's list, and of r's score in every row's list
        (the scores are not symmetric: what each seeks differs), from one pass over the index."""
        terms = self.s.w_terms * self._term_scores(r)
        both = self._products(np.stack([self._left(self.right[r]), self._left_t(self.right[r])], axis=1))
        return self._allowed(r, both[:, 0] + terms), self._allowed(r, both[:, 1] + terms)

    def _allowed(self, r: int, scores: np.ndarray) -> np.ndarray:
        n = len(self.ids)
        scores[~self.active[:n]] = -np.inf
        scores[self.cluster_code[:n] == self.cluster_code[r]] = -np.inf
        scores[r] = -np.inf
        return scores

    def _extras(self, r: int, o: int) -> float:
        a, b = self.right[r], self.right[o]
        offers, seeks = self.block["offers"], self.block["seeks"]
        s1 = float(a[offers] @ b[seeks])  # A offers, B seeks
        s2 = float(b[offers] @ a[seeks])  # B offers, A seeks
        return self.s.w_both_ways * min(s1, s2)

    def _rank(self, r: int, candidates: Iterable[int], linear: np.ndarray | Callable[[int], float], k: int
              ) -> list[tuple[float, int]]:
        scored = []
        for o in candidates:
            base = linear[o] if isinstance(linear, np.ndarray) else linear(o)
            if not np.isfinite(base):
                continue
            score = float(base) + self._extras(r, o)
            if score > 0:  # nothing in common is no suggestion (and would have no reason to show)
                scored.append((score, o))
        scored.sort(key=lambda x: (-round(x[0], 6), self.ids[x[1]]))
        return scored[:k]

    def _top_rows(self, r: int, k: int, linear: np.ndarray | None = None) -> list[tuple[float, int]]:
        linear = self._linear_row(r) if linear is None else linear
        finite = int(np.isfinite(linear).sum())
        want = min(max(self.s.candidates, 4 * k), finite)
        if want <= 0:
            return []
        cand = np.argpartition(-linear, want - 1)[:want]
        return self._rank(r, cand, linear, k)

    def score_pair(self, a_id: str, b_id: str) -> Suggestion | None:
        ra, rb = self.row.get(a_id), self.row.get(b_id)
        if ra is None or rb is None or ra == rb or not (self.active[ra] and self.active[rb]):
            return None
        if self.cluster_code[ra] == self.cluster_code[rb]:
            return None
        base = (float(self._left(self.right[ra]) @ self.right[rb])
                + self.s.w_terms * _dot(self.terms[ra], self.terms[rb]))
        return self._suggestion(ra, rb, base + self._extras(ra, rb))

    def top(self, org_id: str, k: int = 5) -> list[Suggestion]:
        """The best k partners of an organisation (raises KeyError for an unknown one)."""
        r = self.row[org_id]
        if not self.active[r]:
            raise KeyError(org_id)
        cached = self.topk.get(org_id)
        if cached is not None and k <= self.s.cached_k:
            return cached[:k]
        if k > self.s.cached_k:
            return [self._suggestion(r, o, sc) for sc, o in self._top_rows(r, k)]
        return self._cache(org_id, self._top_rows(r, self.s.cached_k))[:k]

    # ---- batch ------------------------------------------------------------------------------

    def suggestions_for_all(self, k: int = 5, progress: Progress | None = None, chunk: int = 2000,
                            rows: np.ndarray | None = None) -> Iterator[tuple[str, list[Suggestion]]]:
        """Every organisation's top k, as top() would give them. The best candidates by the linear
        part come from a compiled product (topn.py) in row chunks; their both-ways bonus is
        computed for all pairs of a chunk at once, and so are the reasons of those kept.

        `rows` limits the work to those row numbers (of active organisations), in that order: a
        process can take one part of the index."""
        from .topn import CandidateProduct

        n = len(self.ids)
        rows = np.flatnonzero(self.active[:n]) if rows is None else np.asarray(rows, np.int64)
        if len(rows) == 0:
            return
        right = self.right[:n]
        fitted = self._fitted  # the word matrix and concept hits of fit(), unless rows changed since
        words64 = fitted[0] if fitted is not None else self._term_matrix(np.float64)
        words = words64.astype(np.float32)  # exact weights for the reasons, float32 for the product
        self._words, self._dirty, self._words_by_term = words, set(), None
        self._sparse_right, self._right_dirty = None, set()
        id_rank = np.empty(n, np.int64)
        id_rank[np.argsort(np.array(self.ids, dtype=object))] = np.arange(n)
        product = CandidateProduct(sp.hstack([sp.csr_matrix(right), words]).tocsr(), self.cluster_code,
                                   self.active, max(self.s.candidates, 4 * k, 1), rank=id_rank)
        hits = self._hit_matrices(words64, fitted[1:] if fitted is not None else None)
        columns = self._reason_columns()
        quotes: dict[int, tuple[str, ...]] = {}  # the words reasons quote, by (row, concept, side)
        offers, seeks = sp.csr_matrix(right[:, self.block["offers"]]), sp.csr_matrix(right[:, self.block["seeks"]])
        for start in range(0, len(rows), chunk):
            block = rows[start:start + chunk]
            left = sp.hstack([sp.csr_matrix(self._left_rows(right[block])),
                              self.s.w_terms * words[block]])
            slot, cand, base = product.best(block, left)  # slot: the owner's place in the block
            owner = block[slot]
            total = base + self.s.w_both_ways * np.minimum(_row_dots(offers, owner, seeks, cand),
                                                           _row_dots(offers, cand, seeks, owner))
            # by owner, then best total first, then candidate id (as _rank sorts); k of each owner
            order = np.lexsort((id_rank[cand], -np.round(total, 6), slot))
            slot, cand, total = slot[order], cand[order], total[order]
            keep = np.arange(len(slot)) - np.searchsorted(slot, slot) < k
            slot, cand, total = slot[keep], cand[keep], total[keep]
            reasons = self._reasons_many(block[slot], cand, hits, columns, quotes)
            ends = np.searchsorted(slot, np.arange(len(block)), side="right").tolist()
            ids, scores, cands = self.ids, total.tolist(), cand.tolist()
            lo = 0
            for r, hi in zip(block.tolist(), ends, strict=True):
                yield ids[r], [Suggestion(ids[o], sc, tuple(why))
                               for o, sc, why in zip(cands[lo:hi], scores[lo:hi], reasons[lo:hi], strict=True)]
                lo = hi
            if progress is not None:
                progress(start + len(block), len(rows))

    def _term_matrix(self, dtype: type = np.float32) -> sp.csr_matrix:
        indptr, indices, data = [0], [], []
        for tv in self.terms:
            for t, w in tv.items():
                col = self._term_col.get(t)
                if col is not None:
                    indices.append(col)
                    data.append(w)
            indptr.append(len(indices))
        return sp.csr_matrix((np.array(data, dtype), np.array(indices, np.int64), np.array(indptr)),
                             shape=(len(self.terms), max(len(self._term_col), 1)))

    # ---- incremental ------------------------------------------------------------------------

    def upsert(self, profile: OrgProfile) -> Update:
        """Add or replace one organisation, keeping the fitted weights; report whose cached lists
        it entered or left. Costs one product against the index plus work on the few lists touched."""
        self._changed()
        r = self._put(profile, self._analyse(profile))
        self._forget(profile.id)
        mine, linear = self._linear_both(r)  # r's list, and r's score in each other row's list
        own = self._cache(profile.id, self._top_rows(r, self.s.cached_k, mine))
        update = Update(profile.id, own)
        max_extra = self.s.w_both_ways + self.s.w_terms
        n = len(self.ids)
        reachable = np.flatnonzero(linear + max_extra > self._kth[:n])
        touched = set(int(x) for x in reachable) | {self.row[o] for o in self._listed_in.get(profile.id, ())}
        for o in sorted(touched):
            oid = self.ids[o]
            if o == r or oid not in self.topk or not self.active[o]:
                continue
            lst = self.topk[oid]
            was_in = any(s.id == profile.id for s in lst)
            rest = [s for s in lst if s.id != profile.id]
            score = float(linear[o]) + self._extras(o, r) if np.isfinite(linear[o]) else -np.inf
            floor = rest[-1].score if len(rest) >= self.s.cached_k else -np.inf
            if score > floor and score > 0:
                fresh = sorted([*rest, self._suggestion(o, r, score)], key=lambda s: (-s.score, s.id))
                self._forget(oid)
                self._cache(oid, [(s, self.row[s.id]) for s in fresh[: self.s.cached_k]])
                update.entered[oid] = self.topk[oid]
            elif was_in:
                self._forget(oid)
                update.left[oid] = self._cache(oid, self._top_rows(o, self.s.cached_k))
        return update

    def remove(self, org_id: str) -> Update:
        """Take one organisation out; the lists it was in are recomputed and reported as left."""
        if org_id in self.row:
            self._changed()
        r = self.row.get(org_id)
        if r is None or not self.active[r]:
            raise KeyError(org_id)
        self.active[r] = False
        self._forget(org_id)
        update = Update(org_id, [])
        for oid in sorted(self._listed_in.pop(org_id, set())):
            o = self.row[oid]
            if oid in self.topk and self.active[o]:
                self._forget(oid)
                update.left[oid] = self._cache(oid, self._top_rows(o, self.s.cached_k))
        return update

    def _cache(self, org_id: str, ranked: list[tuple[float, int]] | list[tuple[Suggestion, int]]
               ) -> list[Suggestion]:
        r = self.row[org_id]
        result = [sc if isinstance(sc, Suggestion) else self._suggestion(r, o, sc) for sc, o in ranked]
        self.topk[org_id] = result
        for s in result:
            self._listed_in.setdefault(s.id, set()).add(org_id)
        self._kth[r] = result[-1].score if len(result) >= self.s.cached_k else -np.inf
        return result

    def _forget(self, org_id: str) -> None:
        old = self.topk.pop(org_id, None)
        for s in old or ():
            self._listed_in.get(s.id, set()).discard(org_id)
        r = self.row.get(org_id)
        if r is not None:
            self._kth[r] = np.inf

    # ---- reasons ----------------------------------------------------------------------------

    def _suggestion(self, r: int, o: int, score: float) -> Suggestion:
        return Suggestion(self.ids[o], float(score), tuple(self.reasons(r, o)))

    def _evidence(self, r: int) -> _Evidence:
        """Row r's concepts with their weights and the words that expressed them (kept per row)."""
        ev = self._ev[r]
        if ev is None:
            a = self.analyses[r]
            assert a is not None
            row = self.right[r]
            cap, goal, prof = row[self.block["offers"]], row[self.block["seeks"]], row[self.block["profile"]]
            sought = row[self.block["seek_sector"]]
            cap_words: dict[str, tuple[str, ...]] = {}
            goal_words: dict[str, tuple[str, ...]] = {}
            for hits, said in ((a.offer_hits, cap_words), (a.seek_hits, goal_words)):
                for c in hits:
                    i = self.cidx.get(c)
                    if i is None:
                        continue
                    if self._sector_col[i] < 0:
                        said[c] = self._said(hits, i)
                    j = self._sector_concept_of[i]
                    if j >= 0 and self.concepts[j] not in said:
                        said[self.concepts[j]] = self._said(hits, j)
            weights = {}
            for c in cap_words.keys() | goal_words.keys():
                i = self.cidx[c]
                if self._sector_col[i] >= 0:
                    is_ = float(row[self._sector_col[i]])
                    weights[c] = (is_, float(sought[self._sector_col[i]]), is_)
                else:
                    weights[c] = (float(cap[i]), float(goal[i]), float(prof[i]))
            wishes = {code: _distinct(words) for code, words in a.wishes.items()}
            ev = self._ev[r] = _Evidence(weights, cap_words, goal_words, {**goal_words, **cap_words}, wishes)
        return ev

    def _country_places(self) -> np.ndarray:
        """Per row, the place of its country among self.countries (-1: none the lexicon knows)."""
        n = len(self.ids)
        here = self.right[:n, self.block["country"]]
        if here.shape[1] == 0:
            return np.full(n, -1, np.int64)
        return np.where(here.any(axis=1), here.argmax(axis=1), -1).astype(np.int64)

    def _country_of(self, r: int) -> str | None:
        """Row r's country, when it is one the lexicon knows (and so one a wish can name)."""
        p = self.profiles[r]
        return p.country if p is not None and p.country in self.country_idx else None

    def _sector_words(self, hits: dict[str, list[str]]) -> dict[int, tuple[str, ...]]:
        """What _said gives for each sector column one side of a profile names, from one pass."""
        of = self._sector_of_id
        found: dict[int, list[str]] = {}
        for c, words in hits.items():
            j = of.get(c)
            if j is not None:
                found.setdefault(j, []).extend(words)
        return {j: _distinct(words) for j, words in found.items()}

    def _said(self, hits: dict[str, list[str]], i: int) -> tuple[str, ...]:
        """The words one side of a profile named concept column i with: for a sector, those of
        the sector and of all its activities, in the order the text first named them."""
        if self._sector_col[i] < 0:
            return _distinct(hits[self.concepts[i]])
        of = self._sector_of_id
        return _distinct(w for c, words in hits.items() if of.get(c) == i for w in words)

    def _hit_matrices(self, words64: sp.csr_matrix | None = None,
                      made: tuple[sp.csr_matrix, sp.csr_matrix] | None = None
                      ) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
        """Per row, the concepts its capabilities name, its goals name, and either (1/0), and its
        word weights in float64 (the values of self.terms): what _reasons_many reads."""
        if made is not None:
            cap, goal = made
        else:
            cap = (self._concept_counts(self.analyses, "offer_hits") > 0).astype(np.int8)
            goal = (self._concept_counts(self.analyses, "seek_hits") > 0).astype(np.int8)
        words64 = self._term_matrix(np.float64) if words64 is None else words64
        # a sector counts as named wherever one of its activities is
        cap = ((cap + cap @ self._to_sector_concept) > 0).astype(np.int8).tocsr()
        goal = ((goal + goal @ self._to_sector_concept) > 0).astype(np.int8).tocsr()
        return cap, goal, ((cap + goal) > 0).astype(np.int8).tocsr(), words64

    def _reason_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row and concept, the offer, seek and profile weights reasons read: for a sector, the
        sector block's weight (offered, profile) and the sought-sector block's (sought); the
        blocks' own weights for other concepts."""
        right = self.right[: len(self.ids)]
        sector_cols = np.flatnonzero(self._sector_col >= 0)
        views = []
        for block, sectors in (("offers", "sector"), ("seeks", "seek_sector"), ("profile", "sector")):
            view = right[:, self.block[block]].copy()
            view[:, sector_cols] = right[:, self.block[sectors]][:, self._sector_col[sector_cols]]
            views.append(view)
        return views[0], views[1], views[2]

    def _reasons_many(self, owner: np.ndarray, cand: np.ndarray,
                      hits: tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix, sp.csr_matrix],
                      columns: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                      quotes: dict[int, tuple[str, ...]] | None = None) -> list[list[Reason]]:
        """reasons(owner[i], cand[i]) for many pairs: the same reasons, weights and order, with the
        weights of all pairs taken from sparse products rather than one dictionary walk per pair."""
        if len(owner) > 50_000:  # pairs are independent: in slices, to bound the per-pair arrays
            return [reasons for i in range(0, len(owner), 50_000)
                    for reasons in self._reasons_many(owner[i:i + 50_000], cand[i:i + 50_000], hits, columns,
                                                      quotes)]
        h_cap, h_goal, h_any, words = hits
        nc = len(self.concepts)
        cap, goal, prof = columns if columns is not None else self._reason_columns()
        w_need, w_give, w_prof, top = self._mult_need, self._mult_give, self._mult_prof, self.s.max_reasons
        out: list[list[Reason]] = [[] for _ in range(len(owner))]
        if len(owner) == 0:
            return out

        def both(a_rows: np.ndarray, a: sp.csr_matrix, b_rows: np.ndarray, b: sp.csr_matrix
                 ) -> tuple[np.ndarray, np.ndarray]:  # (pair, concept) where both rows have a 1
            m = a[a_rows].multiply(b[b_rows]).tocoo()
            return m.row.astype(np.int64), m.col.astype(np.int64)

        f64 = np.float64
        p0, c0 = both(owner, h_cap, cand, h_goal)  # the owner offers, the candidate seeks
        w0 = w_give[c0] * cap[owner[p0], c0].astype(f64) * goal[cand[p0], c0].astype(f64)
        p1, c1 = both(cand, h_cap, owner, h_goal)  # the candidate offers, the owner seeks
        w1 = w_need[c1] * cap[cand[p1], c1].astype(f64) * goal[owner[p1], c1].astype(f64)
        k0, k1 = w0 > 1e-6, w1 > 1e-6
        p2, c2 = both(owner, h_any, cand, h_any)  # named by both, in no direction
        directed = np.zeros(len(owner) * nc, bool)
        directed[p0[k0] * nc + c0[k0]] = directed[p1[k1] * nc + c1[k1]] = True
        k2 = ~directed[p2 * nc + c2] & ~self._is_coop[c2]
        p2, c2 = p2[k2], c2[k2]
        w2 = w_prof[c2] * prof[owner[p2], c2].astype(f64) * prof[cand[p2], c2].astype(f64) + 1e-5
        # countries: the candidate is where the owner asked for (a need met), or the reverse;
        # their concept numbers follow the scored concepts' (nc + the country's place)
        wish, right = self.block["wish"], self.right
        place = self._country_places()
        k_of, k_of_owner = place[cand], place[owner]
        p3 = np.flatnonzero((k_of >= 0) & (k_of != k_of_owner))
        p3 = p3[right[owner[p3], wish.start + k_of[p3]] > 0]
        p4 = np.flatnonzero((k_of_owner >= 0) & (k_of != k_of_owner))
        p4 = p4[right[cand[p4], wish.start + k_of_owner[p4]] > 0]
        pair = np.concatenate([p0[k0], p1[k1], p2, p3, p4])
        concept = np.concatenate([c0[k0], c1[k1], c2, nc + k_of[p3], nc + k_of_owner[p4]])
        direction = np.concatenate([np.zeros(k0.sum(), np.int8), np.ones(k1.sum(), np.int8),
                                    np.full(len(p2), 2, np.int8), np.ones(len(p3), np.int8),
                                    np.zeros(len(p4), np.int8)])
        weight = np.concatenate([w0[k0], w1[k1], w2, np.full(len(p3), self.s.w_country),
                                 np.full(len(p4), self.s.w_country_give)])
        later = (direction != 1) | (weight < self.s.need_first_min)  # a need met comes first
        # as reasons(): needs met first, then by weight, concept, direction
        order = np.lexsort((direction, concept, -weight, later, pair))
        pair, concept, direction, weight = pair[order], concept[order], direction[order], weight[order]
        keep = np.arange(len(pair)) - np.searchsorted(pair, pair, side="left") < top
        pair, concept, direction, weight = pair[keep], concept[keep], direction[keep], weight[keep]

        analyses, kinds = self.analyses, self._kinds
        names = [*self.concepts, *(f"country.{code}" for code in self.countries)]
        width = len(names)
        # Which side's words each reason quotes (0: offers, 1: seeks): as directed, or for a
        # shared concept the offers where they name them. One key per (row, concept, side). A
        # country is quoted from the side that asked for it only (side 1), the other says nothing.
        rows_a, rows_b = owner[pair], cand[pair]
        scored = concept < nc
        in_cap_a, in_cap_b = np.zeros(len(pair), bool), np.zeros(len(pair), bool)
        in_cap_a[scored] = _entries(h_cap, rows_a[scored], concept[scored]) > 0
        in_cap_b[scored] = _entries(h_cap, rows_b[scored], concept[scored]) > 0
        side_a = np.where(direction == 2, ~in_cap_a, direction == 1).astype(np.int64)
        side_b = np.where(direction == 2, ~in_cap_b, direction == 0).astype(np.int64)
        keys, where = np.unique(np.concatenate([(rows_a * width + concept) * 2 + side_a,
                                                (rows_b * width + concept) * 2 + side_b]), return_inverse=True)
        quoted = []
        quotes = {} if quotes is None else quotes  # the caller may keep them from block to block
        for key in keys.tolist():
            got = quotes.get(key)
            if got is None:
                a = analyses[key // (2 * width)]
                assert a is not None
                col = (key // 2) % width
                if col >= nc:
                    got = _distinct(a.wishes.get(self.countries[col - nc], ())) if key % 2 else ()
                elif self._sector_col[col] >= 0:  # every sector of this side at once: one pass
                    base = key - col * 2
                    for sector, said in self._sector_words(a.seek_hits if key % 2 else a.offer_hits).items():
                        quotes[base + sector * 2] = said
                    got = quotes.get(key, ())
                else:
                    got = self._said(a.seek_hits if key % 2 else a.offer_hits, col)
                quotes[key] = got
            quoted.append(got)
        half = len(pair)
        words_a = map(quoted.__getitem__, where[:half].tolist())
        words_b = map(quoted.__getitem__, where[half:].tolist())
        directions = ("a_offers_b_seeks", "b_offers_a_seeks", "shared")
        for p, c, d, w, ta, tb in zip(pair.tolist(), map(names.__getitem__, concept.tolist()), direction.tolist(),
                                      weight.tolist(), words_a, words_b, strict=True):
            out[p].append(Reason(c, kinds.get(c, "country"), directions[d], w, ta, tb))

        short = np.flatnonzero(np.bincount(pair, minlength=len(owner)) < top)  # room for shared words
        if len(short) and words.shape[1]:
            m = words[owner[short]].multiply(words[cand[short]]).tocoo()
            q, col, val = short[m.row], m.col.astype(np.int64), m.data
            order = np.lexsort((-col, -val, q))  # as reasons(): by weight, then the word, both descending
            q, col, val = q[order], col[order], val[order]
            room = top - np.bincount(pair, minlength=len(owner))
            keep = np.arange(len(q)) - np.searchsorted(q, q, side="left") < room[q]
            term_names, owners, cands = self._term_names(), owner.tolist(), cand.tolist()
            for p, j, w in zip(q[keep].tolist(), col[keep].tolist(), val[keep].tolist(), strict=True):
                a, b = analyses[owners[p]], analyses[cands[p]]
                assert a is not None and b is not None
                t = term_names[j]
                out[p].append(Reason(None, "term", "shared", self.s.w_terms * w,
                                     (a.term_surface.get(t, t),), (b.term_surface.get(t, t),)))
        return out

    def _term_names(self) -> list[str]:
        names = [""] * len(self._term_col)
        for t, i in self._term_col.items():
            names[i] = t
        return names

    def reasons(self, r: int, o: int) -> list[Reason]:
        ea, eb = self._evidence(r), self._evidence(o)
        found: list[tuple[bool, float, str, str]] = []  # (not a need met, -weight, concept, direction)
        kinds = self._kinds
        first = self.s.need_first_min
        for c in ea.weights.keys() & eb.weights.keys():
            (cap_a, goal_a, prof_a), (cap_b, goal_b, prof_b) = ea.weights[c], eb.weights[c]
            i = self.cidx[c]
            w_need, w_give, w_prof = float(self._mult_need[i]), float(self._mult_give[i]), float(self._mult_prof[i])
            directed = False
            if c in ea.cap_words and c in eb.goal_words and (w := w_give * cap_a * goal_b) > 1e-6:
                found.append((True, -w, c, "a_offers_b_seeks"))
                directed = True
            if c in eb.cap_words and c in ea.goal_words and (w := w_need * cap_b * goal_a) > 1e-6:
                found.append((w < first, -w, c, "b_offers_a_seeks"))
                directed = True
            if not directed and kinds[c] != "cooperation":
                found.append((True, -(w_prof * prof_a * prof_b + 1e-5), c, "shared"))
        here_a, here_b = self._country_of(r), self._country_of(o)
        if here_b and here_b != here_a and here_b in ea.wishes:
            found.append((self.s.w_country < first, -self.s.w_country, f"country.{here_b}", "b_offers_a_seeks"))
        if here_a and here_a != here_b and here_a in eb.wishes:
            found.append((True, -self.s.w_country_give, f"country.{here_a}", "a_offers_b_seeks"))
        found.sort()
        ranked = []
        for _, neg_w, c, direction in found[: self.s.max_reasons]:
            if c.startswith("country."):
                code = c.removeprefix("country.")
                words = (ea.wishes[code], ()) if direction == "b_offers_a_seeks" else ((), eb.wishes[code])
                ranked.append(Reason(c, "country", direction, -neg_w, *words))
                continue
            if direction == "a_offers_b_seeks":
                words = ea.cap_words[c], eb.goal_words[c]
            elif direction == "b_offers_a_seeks":
                words = ea.goal_words[c], eb.cap_words[c]
            else:
                words = ea.words[c], eb.words[c]
            ranked.append(Reason(c, kinds[c], direction, -neg_w, *words))
        if len(ranked) < self.s.max_reasons:
            a, b = self.analyses[r], self.analyses[o]
            assert a is not None and b is not None
            ta, tb = self.terms[r], self.terms[o]
            shared = sorted(((ta[t] * tb[t], t) for t in ta.keys() & tb.keys()), reverse=True)
            for w, t in shared[: self.s.max_reasons - len(ranked)]:
                ranked.append(Reason(None, "term", "shared", self.s.w_terms * w,
                                     (a.term_surface.get(t, t),), (b.term_surface.get(t, t),)))
        return ranked


@dataclass(frozen=True)
class _Evidence:
    weights: dict[str, tuple[float, float, float]]  # concept -> (capabilities, goals, profile)
    cap_words: dict[str, tuple[str, ...]]
    goal_words: dict[str, tuple[str, ...]]
    words: dict[str, tuple[str, ...]]
    wishes: dict[str, tuple[str, ...]]  # country code -> the words that asked for it


@contextlib.contextmanager
def frozen_objects() -> Iterator[None]:
    """Out of the cycle collector's sight while forked workers live: a collection in a worker would
    write to every object it scans and so copy the parent's memory, page by page (measured: two
    analysis workers took 6.8 s where one process took 4.2 s; frozen, 3.4 s). Leaves alone a
    caller that froze its objects itself."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _tfidf_transformer() -> Any:
    """scikit-learn's TfidfTransformer, imported on first use: importing scikit-learn takes most of a
    second, which a batch run spends while its analysis workers are busy rather than at start."""
    from sklearn.feature_extraction.text import TfidfTransformer

    return TfidfTransformer


def can_fork() -> bool:
    """Forking copies only the calling thread: unsafe once other threads hold locks."""
    return "fork" in mp.get_all_start_methods() and threading.active_count() == 1


_FORKED: MatchEngine | None = None  # the engine a forked analysis worker inherited


def _analyse_chunk(part: list[OrgProfile]) -> list[Analysis]:
    assert _FORKED is not None
    return [_FORKED._analyse(p) for p in part]


def _entries(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """m[rows[i], cols[i]] for every i, as a flat array (also when there are none)."""
    if len(rows) == 0:
        return np.zeros(0, m.dtype)
    return np.asarray(m[rows, cols]).ravel()


def _row_dots(a: sp.csr_matrix, a_rows: np.ndarray, b: sp.csr_matrix, b_rows: np.ndarray) -> np.ndarray:
    """a[a_rows[i]] · b[b_rows[i]] for every i, from the few non-zeros of each row."""
    return np.asarray(a[a_rows].multiply(b[b_rows]).sum(axis=1), dtype=np.float32).ravel()


def _dot(a: dict[str, float], b: dict[str, float]) -> float:
    if len(b) < len(a):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


def _distinct(words: Iterable[str], limit: int = 3) -> tuple[str, ...]:
    """The first `limit` words that differ other than in case, as first written; an iterable is
    read no further than needed."""
    if isinstance(words, list) and len(words) == 1:
        return (words[0],)
    seen: dict[str, str] = {}
    for w in words:
        key = w.lower()
        if key not in seen:
            seen[key] = w
            if len(seen) == limit:
                break
    return tuple(seen.values())
