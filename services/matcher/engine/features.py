"""The feature space: which concepts, sectors and countries are scored, the layout of an
organisation's vector, the concept and word weights (scikit-learn's TF-IDF, learnt from the
organisations indexed), and an analysis turned into its vector and word weights, one at a time
(`vectors`, `term_vector`) or many at once (`vectors_many`, `term_vectors`) side by side: they give
the same numbers. Pure (no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from partnermatch.languages import detect_language
from services.matcher.engine.analysis import Analysis, analyse
from services.matcher.engine.lexicon import SCORED, Lexicon
from services.matcher.engine.settings import EngineSettings
from services.matcher.engine.values import OrgProfile


@dataclass
class Readings:
    """What the weights and the vectors are made from, for many analyses, one row each: how many
    words named each concept in the offers and in the seeks, the concepts a request states
    (1/0), whether the goals seek nothing, where each organisation is and the countries it
    wished (1/0, by the feature space's countries), and how often each word was used (columns:
    `word_id`, every word any of them used). Some bytes per organisation where its analysis
    takes kilobytes."""

    offer_counts: sp.csr_matrix
    seek_counts: sp.csr_matrix
    asked: sp.csr_matrix
    no_goal: np.ndarray
    here: sp.csr_matrix
    wish: sp.csr_matrix
    word_counts: sp.csr_matrix
    word_id: dict[str, int]
    chosen: sp.csr_matrix | None = None  # the needs picked from the form (1/0); None: none
    refused: sp.csr_matrix | None = None  # what a negated request took back (1/0); None: none

    @property
    def rows(self) -> int:
        return self.offer_counts.shape[0]

    @property
    def words(self) -> list[str]:
        """The word of each column of word_counts."""
        return sorted(self.word_id, key=self.word_id.__getitem__)

    def renumbered(self, word_id: dict[str, int]) -> Readings:
        """These readings with their words numbered by `word_id` (extended with the words it lacks,
        in the order they were first met here), each row's words in that order: what reading them
        with `word_id` would give (a worker reads its chunk with a numbering of its own)."""
        number = np.array([word_id.setdefault(w, len(word_id)) for w in self.words], np.int64)
        counts = self.word_counts
        width = max(len(word_id), 1)
        index_type = np.int32 if width < 2**31 and counts.nnz < 2**31 else np.int64
        renumbered = sp.csr_matrix(
            (counts.data, number[counts.indices].astype(index_type), counts.indptr.astype(index_type)),
            shape=(counts.shape[0], width),
        )
        renumbered.sort_indices()
        return replace(self, word_counts=renumbered, word_id=word_id)

    @staticmethod
    def stack(parts: list[Readings], word_id: dict[str, int], concepts: int, countries: int) -> Readings:
        """The rows of these readings (read with the same word_id), one after the other."""

        def rows(name: str, width: int) -> sp.csr_matrix:
            blocks = [getattr(p, name) for p in parts]
            if name == "word_counts":  # words met later widen the matrices read before
                blocks = [sp.csr_matrix((b.data, b.indices, b.indptr), shape=(b.shape[0], width)) for b in blocks]
            return sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, width), dtype=np.float32)

        width = max(len(word_id), 1)
        return Readings(
            rows("offer_counts", concepts),
            rows("seek_counts", concepts),
            rows("asked", concepts),
            np.concatenate([p.no_goal for p in parts]) if parts else np.zeros(0, bool),
            rows("here", countries),
            rows("wish", countries),
            rows("word_counts", width),
            word_id,
            rows("chosen", concepts) if all(p.chosen is not None for p in parts) else None,
            rows("refused", concepts) if all(p.refused is not None for p in parts) else None,
        )


ROWS_PER_COUNT_BLOCK = 50_000  # learn_weights selects the words kept this many rows at a time


def tfidf_transformer() -> Any:
    """scikit-learn's TfidfTransformer, imported on first use: importing scikit-learn takes most of a
    second, which a batch run spends while its analysis workers are busy rather than at start."""
    from sklearn.feature_extraction.text import TfidfTransformer

    return TfidfTransformer


class FeatureSpace:
    def __init__(self, lexicon: Lexicon, settings: EngineSettings) -> None:
        self.lexicon = lexicon
        self.settings = settings
        # the concepts scored (countries and cues are read by the analysis, not scored as features)
        self.concepts = sorted(c for c, concept in lexicon.concepts.items() if concept.kind in SCORED)
        self.concept_index = {c: i for i, c in enumerate(self.concepts)}
        self.sectors = lexicon.sectors
        self.sector_index = {s: i for i, s in enumerate(self.sectors)}
        self.kinds = {c: lexicon.concepts[c].kind for c in self.concepts}
        self.is_cooperation = np.array([self.kinds[c] == "cooperation" for c in self.concepts], bool)
        # Whole-profile likeness leaves the cooperation vocabulary out: every cluster text speaks of
        # innovation, projects and SMEs, so two profiles alike in it are alike in nothing. (It still
        # counts in what one side offers and the other seeks.)
        self.in_profile = np.where(self.is_cooperation, 0.0, 1.0).astype(np.float32)
        # A sector concept's place among the sectors (-1: the concept is no sector)
        self.sector_place = np.array(
            [
                self.sector_index[c] if self.kinds[c] == "sector" and c in self.sector_index else -1
                for c in self.concepts
            ],
            np.int64,
        )
        weight_of_kind = dict(settings.kind_weight)
        self.kind_weight = np.array(
            [weight_of_kind.get(lexicon.concepts[c].kind, 1.0) for c in self.concepts], np.float32
        )
        # The place among the sectors of the sector each concept is or belongs to (-1: none)
        self.concept_sector = np.array([self.sector_index.get(lexicon.sector_of(c) or "", -1) for c in self.concepts])
        # A sector is evidenced by its own words and by those of its activities: the column of the
        # sector concept each concept counts for (-1: none), and the same as a 0/1 matrix.
        self.sector_concept_column = np.array(
            [self.concept_index[self.sectors[s]] if s >= 0 else -1 for s in self.concept_sector], np.int64
        )
        self.sector_columns = np.array([self.concept_index[s] for s in self.sectors], np.int64)  # each sector's own
        self.sector_concept_column_by_id = {
            c: int(j) for c, j in zip(self.concepts, self.sector_concept_column, strict=True) if j >= 0
        }
        has = np.flatnonzero(self.sector_concept_column >= 0)
        self.to_sector_concept = sp.csr_matrix(
            (np.ones(len(has), np.int8), (has, self.sector_concept_column[has])), shape=(len(self.concepts),) * 2
        )
        related = np.eye(len(self.sectors), dtype=np.float32)
        for s in self.sectors:
            for r in lexicon.concepts[s].related:
                if r in self.sector_index:
                    i, j = self.sector_index[s], self.sector_index[r]
                    related[i, j] = related[j, i] = settings.related_weight
        self.related = related
        nc, ns = len(self.concepts), len(self.sectors)
        rollup = sp.lil_matrix((nc, nc), dtype=np.float32)  # a concept counts for itself, an activity
        to_sector = sp.lil_matrix((nc, ns), dtype=np.float32)  # also for its sector
        for i, c in enumerate(self.concepts):
            rollup[i, i] = 1.0
            parent = lexicon.concepts[c].sector
            if parent in self.concept_index:
                rollup[i, self.concept_index[parent]] += settings.rollup
            if self.concept_sector[i] >= 0:
                to_sector[i, self.concept_sector[i]] = 1.0
        self.rollup, self.to_sector = rollup.tocsr(), to_sector.tocsr()
        self.has_sector = (self.concept_sector >= 0).astype(np.float32)  # per concept: 1 for an activity or a sector
        self._education = self.sectors.index("education") if "education" in self.sectors else None
        self.countries = sorted(
            {code for c in lexicon.concepts.values() if c.kind == "country" for code in c.countries}
        )
        self.country_index = {code: i for i, code in enumerate(self.countries)}
        nk = len(self.countries)
        # An organisation's vector ("right-hand": B's in A's list), block by block: [sector | profile |
        # seeks | offers | sought sectors | country | countries wished | sector shared]. The sector
        # block is what the organisation does, as others' needs meet it; the shared one the same,
        # less as much as it seeks other sectors (seek_sector_damp), as peers meet it.
        sizes = {
            "sector": ns,
            "profile": nc,
            "seeks": nc,
            "offers": nc,
            "seek_sector": ns,
            "country": nk,
            "wish": nk,
            "shared": ns,
        }
        self.block: dict[str, slice] = {}
        at = 0
        for name, size in sizes.items():
            self.block[name] = slice(at, at + size)
            at += size
        self.dim = at
        # learnt from the organisations indexed (learn_weights)
        self.idf = np.ones(nc, np.float32)
        self.term_idf: dict[str, float] = {}
        self.term_column: dict[str, int] = {}
        self._term_names: list[str] | None = None  # the word of each column, once asked for
        self._word_tfidf: Any = None  # scikit-learn's TfidfTransformer of the words, once fitted

    def analyse(self, profile: OrgProfile) -> Analysis:
        language = profile.language or detect_language(
            f"{profile.capabilities}\n{profile.goals}", country=profile.country or None
        )
        return analyse(
            self.lexicon,
            profile.capabilities or "",
            profile.goals or "",
            language,
            profile.offers,
            profile.seeks,
            profile.seeks_countries,
        )

    # ---- weights ----------------------------------------------------------------------------

    def learn_weights(self, readings: Readings) -> sp.csr_matrix:
        """Learn the weights of concepts and words from these readings (of every organisation
        indexed), taking their word counts (the readings keep none after). Returns their word
        vectors: scikit-learn's sublinear TF-IDF, L2-normalised, one float64 row each over the
        columns of term_column (what term_vector gives one by one)."""
        tfidf = tfidf_transformer()
        total = max(readings.rows, 1)
        # scikit-learn's smoothed IDF, over the organisations that name each concept
        if readings.rows:
            named = (readings.offer_counts + readings.seek_counts) > 0
            self.idf = tfidf(smooth_idf=True).fit(named).idf_.astype(np.float32)
        else:
            self.idf = np.ones(len(self.concepts), np.float32)
        word_counts, words = readings.word_counts, readings.words
        # the counts of every word are needed no further: freed now, before the vectors are made
        # (at a million organisations they take half a gigabyte)
        readings.word_counts = sp.csr_matrix((readings.rows, 1), dtype=np.float32)
        df = np.bincount(word_counts.indices, minlength=len(words))
        limit = max(2, self.settings.max_term_df * total)
        # words two share, and not too common
        kept = sorted(words[i] for i in np.flatnonzero((df >= 2) & (df <= limit)).tolist())
        self.term_column = {t: i for i, t in enumerate(kept)}
        self._term_names = kept
        column = np.full(word_counts.shape[1], -1, np.int32)
        for t, i in self.term_column.items():
            column[readings.word_id[t]] = i
        counts = _kept_counts(word_counts, column, max(len(kept), 1))
        del word_counts, words, column
        self._word_tfidf = tfidf(sublinear_tf=True, smooth_idf=True)
        if counts.shape[0] and kept:
            self._word_tfidf.fit(counts)
            self.term_idf = dict(zip(kept, self._word_tfidf.idf_.tolist(), strict=True))
            return sp.csr_matrix(self._word_tfidf.transform(counts, copy=False))  # in place: no second copy
        self.term_idf = {}
        return sp.csr_matrix(counts.shape, dtype=np.float64)

    def term_columns(self, words: Iterable[str]) -> np.ndarray:
        """The term columns of these words; a word with a weight but no column (weights set from
        another index) is given the next one."""
        column = self.term_column
        for t in words:
            if t not in column:
                column[t] = len(column)
                self._term_names = None
        return np.array([column[t] for t in words], np.int32)

    def term_names(self) -> list[str]:
        """The word of each column of term_column (made once per learning of the weights)."""
        if self._term_names is None:
            self._term_names = sorted(self.term_column, key=self.term_column.__getitem__)
        return self._term_names

    # ---- one organisation -------------------------------------------------------------------

    def vectors(self, a: Analysis, country: str) -> tuple[np.ndarray, dict[str, float]]:
        """An organisation's vector and its word weights (term_vector)."""
        settings = self.settings
        cap = self._concept_vector(a.offer_hits)
        goal = self._concept_vector(a.seek_hits) if a.seek_hits else 0.5 * cap
        prof = (cap + goal) * self.in_profile
        sector = np.zeros(len(self.sectors), np.float32)
        sought = np.zeros(len(self.sectors), np.float32)
        for hits, share in ((a.offer_hits, 1.0), (a.seek_hits, settings.goal_sector_weight)):
            for c, words in hits.items():
                i = self.concept_index.get(c)
                if i is not None and self.concept_sector[i] >= 0:
                    weight = _tf(len(words)) * self.idf[i]
                    sector[self.concept_sector[i]] += share * weight
                    if hits is a.seek_hits:
                        sought[self.concept_sector[i]] += weight * self._stated(self._asked_value(a, c))
        strength = self._stated(
            max(
                (
                    self._asked_value(a, c)
                    for c in a.asked
                    if c in self.concept_index and self.concept_sector[self.concept_index[c]] >= 0
                ),
                default=0.0,
            )
        )
        alike = _l2(sector)  # the sectors as peers are alike; own_sectors: as it is asked for and asks
        own_sectors = self._as_taught(alike[None, :])[0]
        sought = strength * _other_sectors(_l2(sought)[None, :], own_sectors[None, :], settings.own_sector_discount)[0]
        if a.seek_hits:
            whole = np.zeros((1, len(self.concepts)), bool)
            whole[0, [self.concept_index[c] for c in a.chosen if c in self.concept_index]] = True
            goal = self._needs(goal[None, :], own_sectors[None, :], whole)[0]
        shared = alike * (1.0 - settings.seek_sector_damp * float(np.linalg.norm(sought)))
        if a.refused and settings.refused_peer_damp:
            shared = shared * (1.0 - settings.refused_peer_damp * self._refused_sectors(a))
        right = np.concatenate(
            [own_sectors, _l2(prof), _l2(goal), _l2(cap), sought, *self._country_blocks(country, a), shared]
        ).astype(np.float32)
        return right, self.term_vector(a)

    def _refused_sectors(self, a: Analysis) -> np.ndarray:
        """1 for each sector a negated request took back ("we are not looking for more software
        houses", from a software house: no peers wanted), but for one a request names as such
        ("other builders for a consortium, not material suppliers": peers of another kind wanted);
        a request for an activity of the sector does not undo it, as requests often name the
        organisation's own product ("not software firms, but hotels for our booking system")."""
        index, sector_of = self.concept_index, self.concept_sector
        refused = {int(sector_of[index[c]]) for c in a.refused if c in index}
        refused -= {self.sector_index[c] for c in a.asked if c in self.sector_index and self._asked_value(a, c) > 0}
        refused.discard(-1)
        mask = np.zeros(len(self.sectors), np.float32)
        mask[sorted(refused)] = 1.0
        return mask

    def _as_taught(self, own_sectors: np.ndarray) -> np.ndarray:
        """The sectors (unit rows) of organisations that teach as others' needs meet them and as
        their own needs are discounted: where a row's education part is at least teaching_share,
        the other sectors are the trades it teaches ("we educate cooks, waiters and hotel technicians"
        reads mostly as tourism), counted by taught_weight and the row made unit again. Likeness
        (the shared block) keeps them whole: a school teaching CNC machining is still alike to
        machining firms."""
        settings = self.settings
        at = self._education
        if at is None or settings.taught_weight == 1.0:
            return own_sectors
        teaching = own_sectors[:, at] >= settings.teaching_share
        if not teaching.any():
            return own_sectors
        taught = own_sectors[teaching] * settings.taught_weight
        taught[:, at] = own_sectors[teaching, at]
        out = own_sectors.copy()
        out[teaching] = _l2_rows(taught)
        return out

    def _needs(self, goal: np.ndarray, own_sectors: np.ndarray, whole: np.ndarray) -> np.ndarray:
        """Rows of the goal block as needs: each activity of a sector counts less by the share that
        sector has of the organisation's own (own_sectors, unit rows), times own_activity_discount,
        but for the places `whole` marks (a need picked from the form; an organisation without goals)."""
        discount = self.settings.own_activity_discount
        if not discount:
            return goal
        own = np.hstack([own_sectors, np.zeros((len(own_sectors), 1), own_sectors.dtype)])  # -1: no sector
        needs = goal * np.maximum(0.0, 1.0 - discount * own[:, self.concept_sector])
        return np.where(whole, goal, needs)

    def _concept_vector(self, hits: dict[str, list[str]]) -> np.ndarray:
        v = np.zeros(len(self.concepts), np.float32)
        for c, words in hits.items():
            i = self.concept_index.get(c)
            if i is None:
                continue
            v[i] += _tf(len(words))
            sector = self.lexicon.concepts[c].sector
            if sector in self.concept_index:
                v[self.concept_index[sector]] += self.settings.rollup * _tf(len(words))
        return v * self.idf * self.kind_weight

    def term_vector(self, a: Analysis) -> dict[str, float]:
        """An organisation's word weights: sublinear TF-IDF of both texts' words, L2-normalised."""
        # the two texts' counts added as Counter's sum adds them (the capabilities' words first, a
        # sum that is not positive left out), only for the words with a weight
        cap, goal, idf = a.cap_terms, a.goal_terms, self.term_idf
        counts = {t: n + goal.get(t, 0) for t, n in cap.items() if t in idf}
        counts.update((t, n) for t, n in goal.items() if t in idf and t not in cap)
        log = math.log
        weights = {t: (1.0 + log(n)) * idf[t] for t, n in counts.items() if n > 0}  # _tf(n) * idf[t]
        norm = math.sqrt(sum(x * x for x in weights.values())) or 1.0
        return {t: x / norm for t, x in weights.items()}

    # ---- many organisations -----------------------------------------------------------------

    def vectors_many(self, analyses: list[Analysis], countries: list[str]) -> np.ndarray:
        """The vectors of many analyses at once (what vectors() gives one by one), one row each."""
        return self.vectors_of(self.read(analyses, countries, {}), 0, len(analyses))

    def read(self, analyses: list[Analysis], countries: list[str], word_id: dict[str, int]) -> Readings:
        """What the weights and vectors are made from, for these analyses (one row each); `word_id`:
        the number of each word seen so far, extended with those seen first here."""
        lengths: list[int] = []
        ids: list[int] = []
        counts: list[int] = []
        for a in analyses:
            for side in (a.cap_terms, a.goal_terms):
                ids.extend(word_id.setdefault(t, len(word_id)) for t in side)
                counts.extend(side.values())
            lengths.append(len(a.cap_terms) + len(a.goal_terms))
        rows = np.repeat(np.arange(len(analyses)), lengths)
        word_counts = sp.csr_matrix(
            (np.array(counts, np.float32), (rows, np.array(ids, np.int64))), shape=(len(analyses), max(len(word_id), 1))
        )
        word_counts.sum_duplicates()  # a word of both texts: its counts add up, as in cap_terms + goal_terms
        places = [self._country_blocks(country, a) for a, country in zip(analyses, countries, strict=True)]
        here = np.array([p[0] for p in places], np.float32).reshape(len(analyses), len(self.countries))
        wish = np.array([p[1] for p in places], np.float32).reshape(len(analyses), len(self.countries))
        return Readings(
            self.concept_counts(analyses, "offer_hits"),
            self.concept_counts(analyses, "seek_hits"),
            self._asked(analyses),
            np.array([not a.seek_hits for a in analyses], bool),
            sp.csr_matrix(here),
            sp.csr_matrix(wish),
            word_counts,
            word_id,
            self._asked(analyses, "chosen"),
            self._asked(analyses, "refused"),
        )

    def vectors_of(self, readings: Readings, start: int, end: int) -> np.ndarray:
        """The vectors of rows start..end-1 of these readings, one row each."""

        def tf(m: sp.csr_matrix) -> sp.csr_matrix:
            m = m.copy()
            m.data = (1.0 + np.log(m.data)).astype(np.float32)
            return m

        settings = self.settings
        offer_counts, seek_counts = readings.offer_counts[start:end], readings.seek_counts[start:end]
        weight = self.idf * self.kind_weight
        cap = np.asarray((tf(offer_counts) @ self.rollup).todense()) * weight
        goal = np.asarray((tf(seek_counts) @ self.rollup).todense()) * weight
        no_goal = readings.no_goal[start:end]
        goal[no_goal] = 0.5 * cap[no_goal]
        prof = (cap + goal) * self.in_profile
        said = tf(offer_counts) + settings.goal_sector_weight * tf(seek_counts)
        sector = np.asarray((said.multiply(self.idf[None, :]).tocsr() @ self.to_sector).todense())
        need = tf(seek_counts)
        asked = readings.asked[start:end]  # 1, or partnering_weight for a need an aim of partnering stated
        implicit = settings.implicit_need_weight
        need = implicit * need + (1.0 - implicit) * need.multiply(asked).tocsr()
        sought = np.asarray((need.multiply(self.idf[None, :]).tocsr() @ self.to_sector).todense())
        stated = np.asarray(asked.multiply(self.has_sector[None, :]).max(axis=1).todense()).ravel()
        strength = (implicit + (1.0 - implicit) * stated).astype(np.float32)[:, None]
        alike = _l2_rows(sector)
        own_sectors = self._as_taught(alike)
        sought = strength * _other_sectors(_l2_rows(sought), own_sectors, settings.own_sector_discount)
        whole = np.repeat(no_goal[:, None], goal.shape[1], axis=1)
        if readings.chosen is not None:
            whole |= readings.chosen[start:end].toarray().astype(bool)
        goal = self._needs(goal, own_sectors, whole)  # prof was made of goal as it is
        shared = alike * (1.0 - settings.seek_sector_damp * np.linalg.norm(sought, axis=1, keepdims=True))
        if readings.refused is not None and readings.refused[start:end].nnz and settings.refused_peer_damp:
            refused = (readings.refused[start:end] @ self.to_sector).toarray() > 0
            refused &= ~(asked[:, self.sector_columns] > 0).toarray()  # a sector asked for as such
            shared = shared * (1.0 - settings.refused_peer_damp * refused.astype(np.float32))
        return np.hstack(
            [
                own_sectors,
                _l2_rows(prof),
                _l2_rows(goal),
                _l2_rows(cap),
                sought,
                readings.here[start:end].toarray(),
                readings.wish[start:end].toarray(),
                shared,
            ]
        ).astype(np.float32)

    def vectors_stacked(self, readings: Readings, rows: int, step: int) -> sp.csr_matrix:
        """The vectors of the first `rows` rows of these readings as one sparse matrix, made `step`
        rows at a time (a block's dense rows, then its sparse copy; the blocks are freed here)."""
        blocks = [
            sp.csr_matrix(self.vectors_of(readings, start, min(start + step, rows))) for start in range(0, rows, step)
        ]
        return sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, self.dim), dtype=np.float32)

    def concept_counts(self, analyses: Sequence[Analysis | None], side: str) -> sp.csr_matrix:
        """How many words named each concept on one side ("offer_hits", "seek_hits"), one row each."""
        indptr: list[int] = [0]
        cols: list[int] = []
        vals: list[float] = []
        column = self.concept_index
        for a in analyses:
            if a is not None:
                hits = getattr(a, side)
                cols.extend(map(column.__getitem__, hits))  # every concept found is one of the lexicon's
                vals.extend(map(len, hits.values()))
            indptr.append(len(cols))
        m = sp.csr_matrix(
            (np.array(vals, np.float32), np.array(cols, np.int64), np.array(indptr, np.int64)),
            shape=(len(analyses), len(self.concepts)),
        )
        m.sort_indices()  # products then add in concept order, whatever order the text named them
        return m

    def _asked(self, analyses: list[Analysis], side: str = "asked") -> sp.csr_matrix:
        """Per row, for each concept a request states as a need (a cue or structured), 1, or
        partnering_weight where only an aim of partnering stated it; with `side` "chosen", 1 for
        each need picked from the form."""
        rows, cols, values = [], [], []
        for r, a in enumerate(analyses):
            for c in getattr(a, side):
                if c in self.concept_index:
                    rows.append(r)
                    cols.append(self.concept_index[c])
                    values.append(self._asked_value(a, c) if side == "asked" else 1.0)
        return sp.csr_matrix((np.array(values, np.float32), (rows, cols)), shape=(len(analyses), len(self.concepts)))

    def _asked_value(self, a: Analysis, c: str) -> float:
        """How much a request stated the need `c`: 1, partnering_weight where only an aim of
        partnering did, 0 where nothing did (an implicit need)."""
        if c not in a.asked:
            return 0.0
        return self.settings.partnering_weight if c in a.partnered else 1.0

    def _stated(self, asked: float) -> float:
        """A need's weight toward the sought sectors: implicit_need_weight for one no request
        stated, 1 for one a request stated, between for an aim of partnering."""
        implicit = self.settings.implicit_need_weight
        return implicit + (1.0 - implicit) * asked

    def _country_blocks(self, country: str, a: Analysis) -> tuple[np.ndarray, np.ndarray]:
        """Where the organisation is (one-hot) and the countries it asked for (1 each; its own
        country is no wish: "Polish partners" in a Polish text is about itself)."""
        here = np.zeros(len(self.countries), np.float32)
        wish = np.zeros(len(self.countries), np.float32)
        if country in self.country_index:
            here[self.country_index[country]] = 1.0
        for code in a.wishes:
            if code != country and code in self.country_index:
                wish[self.country_index[code]] = 1.0
        return here, wish


def _kept_counts(word_counts: sp.csr_matrix, column: np.ndarray, width: int) -> sp.csr_matrix:
    """The counts of the words kept, in float64, each row's in the order of their new columns:
    `column` gives each word's new column (-1: dropped). Made into arrays allocated once, a block
    of rows at a time: at a million organisations a copy of the counts takes most of a gigabyte."""
    rows, indptr = word_counts.shape[0], word_counts.indptr
    kept_per_row = np.zeros(rows, np.int64)
    for start in range(0, rows, ROWS_PER_COUNT_BLOCK):
        end = min(start + ROWS_PER_COUNT_BLOCK, rows)
        keep = column[word_counts.indices[indptr[start] : indptr[end]]] >= 0
        kept_before = np.zeros(len(keep) + 1, np.int64)
        np.cumsum(keep, out=kept_before[1:])
        kept_per_row[start:end] = np.diff(kept_before[indptr[start : end + 1] - indptr[start]])
    new_indptr = np.zeros(rows + 1, np.int64)
    np.cumsum(kept_per_row, out=new_indptr[1:])
    data = np.empty(new_indptr[-1], np.float64)
    indices = np.empty(new_indptr[-1], np.int32)
    for start in range(0, rows, ROWS_PER_COUNT_BLOCK):
        end = min(start + ROWS_PER_COUNT_BLOCK, rows)
        col = column[word_counts.indices[indptr[start] : indptr[end]]]
        keep = col >= 0
        data[new_indptr[start] : new_indptr[end]] = word_counts.data[indptr[start] : indptr[end]][keep]
        indices[new_indptr[start] : new_indptr[end]] = col[keep]
    counts = sp.csr_matrix((data, indices, new_indptr), shape=(rows, width))
    counts.sort_indices()
    return counts


def _tf(count: float) -> float:
    return 1.0 + math.log(count) if count > 0 else 0.0


def _l2(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _l2_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)


def _other_sectors(sought: np.ndarray, own_sectors: np.ndarray, discount: float) -> np.ndarray:
    """Sought sectors (unit rows) less the organisation's own: each is kept in the share it is
    not the organisation's (`own_sectors`, unit rows), and the rest counts in full where it was at least
    half of the need (a request naming its own products besides what it seeks), in proportion
    where less (a need mostly for peers, who are found by likeness anyway)."""
    other = sought * np.maximum(0.0, 1.0 - discount * own_sectors)
    norms = np.linalg.norm(other, axis=1, keepdims=True)
    return other / np.maximum(norms, 0.5)
