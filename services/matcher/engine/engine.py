"""The cross-lingual matching index: fit once, then add, replace or remove one organisation at a time.

Needs first: B's score in A's list is how well B offers what A seeks (the sectors and activities
A's requests name, and the countries A asked for), then what A offers that B seeks, shared sector
(related sectors can count partly: `related_weight`, 0 by default) and whole-profile likeness of
activities, a within-language term signal, and a both-ways bonus on the best candidates. So a
score is not symmetric: A's need met is not B's. Concept and word weights are scikit-learn's
TF-IDF, learnt again as the index changes (reweigh, which may run beside the event path: it holds
the caller's lock only to take the rows, catch up and swap).

MatchEngine is a façade over four parts, each owning its state: the feature space (features.py:
layout, weights, vectors), the index (index.py: rows, linear scores), the top-K cache (topk.py:
the lists, one or all) and the reason finder (reasons.py). Pure (no I/O); fit(workers=...) may
analyse in forked processes (workers.py).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np

from services.matcher.engine.analysis import Analysis, unpack
from services.matcher.engine.features import FeatureSpace, Readings, tfidf_transformer
from services.matcher.engine.index import Index
from services.matcher.engine.lexicon import Lexicon, load_lexicon
from services.matcher.engine.reasons import ReasonFinder
from services.matcher.engine.rows import SparseRows
from services.matcher.engine.settings import EngineSettings
from services.matcher.engine.topk import TopKCache
from services.matcher.engine.topn import event_kernels
from services.matcher.engine.values import OrgProfile, Progress, Reason, Suggestion, Update
from services.matcher.engine.workers import read_all, release_freed_memory

__all__ = ["EngineSettings", "MatchEngine", "OrgProfile", "Progress", "Reason", "Suggestion", "Update"]

logger = logging.getLogger(__name__)

ROWS_PER_VECTOR_BLOCK = 5000  # fit() makes the vectors this many rows at a time
# A reweigh catches up with the changes made while it learnt in rounds without the caller's lock,
# until at most this many are left: those it applies under the lock, with the swap. Each is one
# vector made and put (about a millisecond on a busy machine; 20 held events 18 ms at 1,000
# indexed), so the event path waits little for the swap.
CATCH_UP_UNDER_LOCK = 4
CATCH_UP_ROUNDS = 5  # then the rest under the lock, however many (events faster than vectors)
ROWS_PER_READ_BESIDE_EVENTS = 1000  # reweigh reads the kept analyses and makes vectors this many rows at a time


@dataclass(frozen=True)
class RowsTaken:
    """The rows a reweigh learns from, taken under the caller's lock, in row order: ids, analyses
    as stored, cluster and country codes, and the codes' names as they were."""

    ids: list[str]
    stored: list[Analysis | bytes]
    cluster_codes: np.ndarray
    country_codes: np.ndarray
    cluster_code_of: dict[str, int]
    country_code_of: dict[str, int]

    def clusters(self) -> list[str]:
        return _names(self.cluster_codes, self.cluster_code_of)

    def countries(self) -> list[str]:
        return _names(self.country_codes, self.country_code_of)


class MatchEngine:
    def __init__(self, lexicon: Lexicon | None = None, settings: EngineSettings | None = None) -> None:
        self.features = FeatureSpace(lexicon or load_lexicon(), settings or EngineSettings())
        self.lexicon, self.settings = self.features.lexicon, self.features.settings
        self.index = Index(self.features)
        self.reason_finder = ReasonFinder(self.features, self.index)
        self.top_lists = TopKCache(self.index, self.reason_finder, self.settings)
        self._changes = 0  # upserts and removals since the weights were learnt
        self._journal: set[str] | None = None  # while a reweigh learns: the organisations changed since

    # ---- fitting ----------------------------------------------------------------------------

    def fit(
        self,
        profiles: Iterable[OrgProfile],
        progress: Progress | None = None,
        workers: int = 1,
        keep_analyses: bool = False,
        meanwhile: Callable[[], object] | None = None,
    ) -> None:
        """Analyse every profile, learn the weights of concepts and words, index them all.
        `workers` > 1 analyses in that many forked processes where forking is safe (no other
        thread running, as in the batch command); elsewhere it analyses in this process. The
        analyses are kept packed (a tenth of their memory; reasons unpack the few they need)
        unless `keep_analyses`: the batch, which reasons about every row at once, keeps them whole.
        `profiles` are read as the analysis needs them: an iterator is never held whole.
        `meanwhile` runs once the analysis workers are busy (what the caller needs next, prepared
        while this process mostly waits for them); not where the analysis runs in this process."""
        total = len(profiles) if isinstance(profiles, Sized) else None  # read as they come: no copy
        items: list[OrgProfile] = []  # id, cluster and country: the index keeps no texts
        stored: list[Analysis | bytes] = []
        parts: list[Readings] = []
        word_id: dict[str, int] = {}
        for kept, analysed, readings in read_all(
            self.features, profiles, workers, word_id, keep_analyses, while_waiting=lambda: _prepare(meanwhile)
        ):
            items.extend(kept)
            stored.extend(analysed)
            parts.append(readings)
            if progress is not None:
                progress(len(stored), len(stored) if total is None else total)
        self._index_anew(items, stored, self._stack(parts, word_id))
        release_freed_memory()

    def reweigh(self, hold: AbstractContextManager[object] | None = None) -> None:
        """Learn the weights again from the organisations indexed now, without analysing their
        texts again (the analyses are kept), and index them anew in the order of their ids: the
        weights follow the corpus as profiles arrive, and two indexes of one corpus are alike row by
        row. Cached lists are dropped, as after fit(); they are made again when asked for.

        `hold` guards this engine against the caller's other threads (its lock; none by default).
        It is held only to take the rows, to catch up and to swap: the learning runs without it,
        while the engine answers and changes with the weights it had. The organisations changed
        meanwhile are then indexed again with the new weights, the last few under `hold` with the
        swap; their weights are the ones learnt without them, as for any upsert."""
        started = time.perf_counter()
        guard = hold if hold is not None else nullcontext()
        with guard:
            if self._journal is not None:
                raise RuntimeError("the weights are being learnt again already")
            taken = self._take_rows()
            self._journal = set()
        try:
            fresh = self._learnt_from(taken)
            caught_up = 0
            for round_ in range(CATCH_UP_ROUNDS + 1):
                with guard:
                    changed, self._journal = self._journal, set()
                    if len(changed) <= CATCH_UP_UNDER_LOCK or round_ == CATCH_UP_ROUNDS:
                        fresh._catch_up(self._rows_now(changed))
                        self._adopt(fresh, caught_up + len(changed))
                        break
                    rows_now = self._rows_now(changed)
                fresh._catch_up(rows_now)
                caught_up += len(changed)
        finally:
            with guard:
                self._journal = None
        release_freed_memory()
        logger.info(
            "index weights learnt again",
            extra={
                "profiles": len(taken.ids),
                "caught_up": self._changes,
                "weights": self.weights_digest(),
                "seconds": round(time.perf_counter() - started, 2),
            },
        )

    def prepare_events(self) -> None:
        """Load the event path's compiled loops and make the index's column copies now, so the first
        profile event after a start does not wait for them (about a second at 100,000 indexed)."""
        event_kernels()
        self.index.prepare_products()

    def reweigh_due(self) -> bool:
        """Whether enough has changed since the weights were learnt to learn them again: at least
        reweigh_min_changes upserts and removals, and reweigh_share of the index."""
        return self._changes >= max(self.settings.reweigh_min_changes, self.settings.reweigh_share * len(self))

    @property
    def changes_since_learnt(self) -> int:
        """Upserts and removals since the weights were last learnt (fit or reweigh)."""
        return self._changes

    def weights_digest(self) -> str:
        """A short fingerprint of the concept and word weights: equal for indexes that learnt them
        from the same organisations."""
        digest = hashlib.sha256(np.ascontiguousarray(self.features.idf, np.float32).tobytes())
        for word, weight in sorted(self.term_idf.items()):
            digest.update(f"{word}\t{weight!r}\n".encode())
        return digest.hexdigest()[:16]

    def _take_rows(self) -> RowsTaken:
        """The active rows as the reweigh learns from them, copied without a Python step per row
        (this runs under the caller's lock: at 20,000 rows 2-8 ms, where row by row took 10-19 ms).
        References: a row replaced later gets a new analysis object, it does not change the one
        taken; codes are never renumbered."""
        index = self.index
        rows = np.flatnonzero(index.active[: len(index.ids)])
        at = rows.tolist()
        return RowsTaken(
            list(map(index.ids.__getitem__, at)),
            list(map(index.stored.__getitem__, at)),
            index.cluster_code[rows].copy(),
            index.country_code[rows].copy(),
            dict(index.clusters),
            dict(index.countries),
        )

    def _learnt_from(self, taken: RowsTaken) -> MatchEngine:
        """A new engine of these rows, in the order of their ids, with the weights they give.

        Beside the event path, so read in small blocks with the cyclic collector paused: unpacking
        makes millions of short-lived containers, and each full collection they set off walks the
        whole heap holding the GIL (events stalled up to 0.7 s at 10,000 indexed); small blocks keep
        each numeric step short too, reading as making the vectors."""
        ids, stored = taken.ids, taken.stored
        clusters, countries = taken.clusters(), taken.countries()
        order = sorted(range(len(ids)), key=ids.__getitem__)
        fresh = MatchEngine(self.lexicon, self.settings)
        parts: list[Readings] = []
        word_id: dict[str, int] = {}
        collecting = gc.isenabled()
        gc.disable()
        try:
            for start in range(0, len(order), ROWS_PER_READ_BESIDE_EVENTS):
                block = order[start : start + ROWS_PER_READ_BESIDE_EVENTS]
                parts.append(
                    fresh.features.read([_analysis(stored[i]) for i in block], [countries[i] for i in block], word_id)
                )
        finally:
            if collecting:
                gc.enable()
        fresh._index_anew(
            [OrgProfile(id=ids[i], cluster=clusters[i], country=countries[i]) for i in order],
            [stored[i] for i in order],
            fresh._stack(parts, word_id),
            step=ROWS_PER_READ_BESIDE_EVENTS,
        )
        fresh.index.prepare_products()  # here, not in the first event after the swap (a third of a second at 100,000)
        return fresh

    def _rows_now(self, org_ids: set[str]) -> list[tuple[str, OrgProfile | None, Analysis | bytes | None]]:
        """These organisations as this index holds them now: (id, profile, analysis as stored), or
        (id, None, None) for one removed."""
        index = self.index
        found: list[tuple[str, OrgProfile | None, Analysis | bytes | None]] = []
        for org_id in sorted(org_ids):
            r = index.row.get(org_id)
            if r is None or not index.active[r]:
                found.append((org_id, None, None))
            else:
                found.append((org_id, index.profiles[r], index.stored[r]))
        return found

    def _catch_up(self, rows: list[tuple[str, OrgProfile | None, Analysis | bytes | None]]) -> None:
        """Index these rows of another index (_rows_now) with this one's weights; no list is cached
        here yet, so none is updated."""
        for org_id, profile, stored in rows:
            self.index.fitted = None
            if profile is None or stored is None:
                r = self.index.row.get(org_id)
                if r is not None:
                    self.index.active[r] = False
                continue
            analysis = _analysis(stored)
            right, terms = self.features.vectors(analysis, profile.country)
            self._put(profile, analysis, right, terms)

    def _adopt(self, fresh: MatchEngine, changes: int) -> None:
        """Take the parts of `fresh` as this engine's (the weights, the index, no list cached). The
        replaced reason finder lets go of its evidence, which refers back to it: a reference cycle
        holding the old index, which only the cyclic collector would free, and the live matcher
        freezes what its start made out of the collector's sight (gc.freeze)."""
        self.reason_finder.forget_all()
        self.features, self.index = fresh.features, fresh.index
        self.reason_finder, self.top_lists = fresh.reason_finder, fresh.top_lists
        self._changes = changes

    def _stack(self, parts: list[Readings], word_id: dict[str, int]) -> Readings:
        """The parts' rows in one Readings; the parts are emptied (their copies freed)."""
        stacked = Readings.stack(parts, word_id, len(self.features.concepts), len(self.features.countries))
        parts.clear()
        return stacked

    def _index_anew(
        self,
        items: list[OrgProfile],
        analyses: list[Analysis | bytes],
        readings: Readings,
        step: int = ROWS_PER_VECTOR_BLOCK,
    ) -> None:
        """Learn the weights of concepts and words from these readings, and index them all anew,
        making the vectors `step` rows at a time."""
        words64 = self.features.learn_weights(readings)
        self._reset(len(items))
        n = len(items)
        self.index.load(items, analyses, self.features.vectors_stacked(readings, n, step), words64)
        self.top_lists.make_room(self.index.capacity)
        # kept for the batch while no row changes (upsert drops them)
        self.index.fitted = (
            words64,
            (readings.offer_counts > 0).astype(np.int8).tocsr(),
            (readings.seek_counts > 0).astype(np.int8).tocsr(),
        )
        self._changes = 0
        logger.info(
            "index fitted",
            extra={"profiles": len(items), "terms": len(self.features.term_idf), "weights": self.weights_digest()},
        )

    def _reset(self, capacity: int) -> None:
        self.index.reset(capacity)
        self.reason_finder.forget_all()
        self.top_lists.reset(capacity)

    def _put(self, p: OrgProfile, a: Analysis, right: np.ndarray, terms: dict[str, float]) -> int:
        r = self.index.put(p, a, right, terms)
        self.reason_finder.forget(r, a)
        self.top_lists.make_room(self.index.capacity)
        return r

    def _changed(self, org_id: str) -> None:
        """Count one change since the weights were learnt (see reweigh_due); while a reweigh learns,
        remember whose, to catch up with it."""
        self._changes += 1
        if self._journal is not None:
            self._journal.add(org_id)

    # ---- incremental ------------------------------------------------------------------------

    def upsert(self, profile: OrgProfile) -> Update:
        """Add or replace one organisation, keeping the fitted weights; report whose cached lists
        it entered or left. Costs one product against the index plus work on the few lists touched."""
        self._changed(profile.id)
        analysis = self.features.analyse(profile)
        right, terms = self.features.vectors(analysis, profile.country)
        self.index.fitted = None
        r = self._put(profile, analysis, right, terms)
        return self.top_lists.after_upsert(profile.id, r)

    def remove(self, org_id: str) -> Update:
        """Take one organisation out; the lists it was in are recomputed and reported as left."""
        if org_id in self.index:
            self._changed(org_id)
        r = self.index.row.get(org_id)
        if r is None or not self.index.active[r]:
            raise KeyError(org_id)
        self.index.active[r] = False
        return self.top_lists.after_remove(org_id)

    # ---- questions --------------------------------------------------------------------------

    def top(self, org_id: str, k: int = 5) -> list[Suggestion]:
        """The best k partners of an organisation (raises KeyError for an unknown one)."""
        return self.top_lists.top(org_id, k)

    def suggestions_for_all(
        self, k: int = 5, progress: Progress | None = None, chunk: int = 2000, rows: np.ndarray | None = None
    ) -> Iterator[tuple[str, list[Suggestion]]]:
        """Every organisation's top k, as top() would give them (see TopKCache.suggestions_for_all);
        `rows` limits the work to those row numbers, in that order."""
        return self.top_lists.suggestions_for_all(k, progress, chunk, rows)

    def score_pair(self, a_id: str, b_id: str) -> Suggestion | None:
        """B as a suggestion in A's list, whatever its rank (None where it may not be one)."""
        index = self.index
        ra, rb = index.row.get(a_id), index.row.get(b_id)
        if ra is None or rb is None or ra == rb or not (index.active[ra] and index.active[rb]):
            return None
        if index.cluster_code[ra] == index.cluster_code[rb]:
            return None
        return self.reason_finder.suggestion(ra, rb, index.linear_score(ra, rb) + index.both_ways_bonus(ra, rb))

    def reason_vectors(self, org_id: str, candidate_ids: Sequence[str]) -> np.ndarray:
        """How each candidate earns the linear part of its score in the organisation's list, feature
        by feature (left(A) times right(B), element by element), L2-normalised: one row per
        candidate, zeros for one not indexed or removed. Two candidates with alike rows are listed
        for the same reasons (what they offer against its needs, the sector they share with it...).
        Raises KeyError for an organisation not indexed."""
        index = self.index
        left = index.left(index.right[index.row[org_id]])
        rows = np.zeros((len(candidate_ids), len(left)), np.float32)
        for i, candidate in enumerate(candidate_ids):
            o = index.row.get(candidate)
            if o is not None and index.active[o]:
                rows[i] = left * index.right[o]
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)

    def reasons(self, r: int, o: int) -> list[Reason]:
        """Why row o is listed for row r."""
        return self.reason_finder.reasons(r, o)

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, org_id: str) -> bool:
        return org_id in self.index

    # ---- the parts' state, as callers read it -----------------------------------------------

    @property
    def ids(self) -> list[str]:
        return self.index.ids

    @property
    def row(self) -> dict[str, int]:
        return self.index.row

    @property
    def profiles(self) -> Sequence[OrgProfile]:
        """Each row's organisation as the index keeps it (id, cluster, country: no texts)."""
        return self.index.profiles

    @property
    def analyses(self) -> Sequence[Analysis]:
        """Each row's analysis (unpacked when asked for)."""
        return self.index.analyses

    @property
    def terms(self) -> Sequence[dict[str, float]]:
        """Each row's word weights, made when asked for."""
        return self.index.terms

    @property
    def right(self) -> SparseRows:
        """The rows' vectors; right[r] is row r's, dense."""
        return self.index.right

    @property
    def topk(self) -> dict[str, list[tuple[float, int]]]:
        """The cached lists, by organisation: (score, row), best first."""
        return self.top_lists.lists

    @property
    def idf(self) -> np.ndarray:
        """The concepts' weights (the feature space's)."""
        return self.features.idf

    @idf.setter
    def idf(self, weights: np.ndarray) -> None:
        self.features.idf = weights

    @property
    def term_idf(self) -> dict[str, float]:
        """The words' weights (the feature space's)."""
        return self.features.term_idf

    @term_idf.setter
    def term_idf(self, weights: dict[str, float]) -> None:
        self.features.term_idf = weights


def _analysis(stored: Analysis | bytes) -> Analysis:
    return unpack(stored) if isinstance(stored, bytes) else stored


def _names(codes: np.ndarray, code_of: dict[str, int]) -> list[str]:
    name_of = {code: name for name, code in code_of.items()}
    return [name_of[code] for code in codes.tolist()]


def _prepare(meanwhile: Callable[[], object] | None) -> None:
    tfidf_transformer()
    if meanwhile is not None:
        meanwhile()
