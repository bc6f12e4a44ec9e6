"""The best partners of each organisation: one list at a time from the index's linear scores
(`best_rows`, for top() and the live index) and every list at once from the compiled candidate
product of topn.py (`suggestions_for_all`, the batch) side by side: they give the same lists. The
lists of the live index are cached, with who is listed where and each list's k-th score, so an
upsert or removal finds the few lists it enters or leaves. Pure (no I/O)."""

from __future__ import annotations

import marshal
import math
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from services.matcher.engine.index import Index
from services.matcher.engine.reasons import ReasonFinder
from services.matcher.engine.settings import EngineSettings
from services.matcher.engine.topn import CandidateProduct, kth_largest
from services.matcher.engine.values import Progress, Reason, Suggestion, Update

LISTS_MADE_KEPT = 2000  # the lists asked for last are kept with their reasons
# and as many more before them packed (marshal: some 2 KB a list, read back in 10 µs): a list an
# upsert enters is made again with the reasons of its other partners from there, where each had
# to be found again (evidence gathered for both rows: some 0.1 ms a partner)
LISTS_PACKED_KEPT = 20000
# An upsert scores the new organisation in the cached lists only, each read from its own row, while
# they are at most this share of the index; beyond it, in every row at once (one column-major pass)
LISTS_READ_APART = 1 / 16
BONUS_MARGIN = 1e-5  # beyond float32 rounding of the bonus's bound and the ranking's round(score, 6)
RANKED_MARGIN = 2e-6  # beyond what rounding a score to 6 decimals moves it (5e-7), both ways
# A float32 score below 10 (every score: each block's weight times at most 1) is within 1e-6 of the
# float64 one, both ways: the k-th score kept in float32, and the float32 sum of a linear part and a
# bound; this allows ten times that
REACH_MARGIN = 1e-5
SUM_SLACK = 1e-9  # beyond float64 rounding of a score's bounds (linear part plus the bonus's estimate)

# A list's reasons as kept: each reason a plain tuple of its fields (Reason's order), made a Reason
# again when the list is read. The cyclic garbage collector never stops tracking a Reason (a tuple
# subclass) nor a Suggestion; it does stop tracking tuples (and dictionaries) of strings and
# floats, so thousands of kept lists are not walked again by each of its collections.
KeptReasons = tuple[tuple[Any, ...], ...]
KeptList = tuple[tuple[str, float, KeptReasons], ...]  # (id, score, reasons) of each partner


def _kept(reasons: tuple[Reason, ...]) -> KeptReasons:
    return tuple([tuple(why) for why in reasons])


def _reasons(kept: KeptReasons, _new: Any = tuple.__new__) -> tuple[Reason, ...]:
    return tuple([_new(Reason, why) for why in kept])


class TopKCache:
    def __init__(self, index: Index, reason_finder: ReasonFinder, settings: EngineSettings) -> None:
        self.index = index
        self.reason_finder = reason_finder
        self.settings = settings
        self.reset(0)

    def reset(self, capacity: int) -> None:
        """No list cached, with room for `capacity` rows."""
        # (score, row) of each cached list, best first; a list's reasons are made when it is asked
        # for (a list with them takes some 13 KB, without them 1 KB) and kept for the lists asked last
        self.lists: dict[str, list[tuple[float, int]]] = {}
        # first in, first out: an OrderedDict, whose oldest key is at hand, where a plain dict's is found
        # by stepping over the holes its deletions left at its front, each time
        self._made: OrderedDict[str, KeptList] = OrderedDict()
        self._packed: OrderedDict[str, bytes] = OrderedDict()  # made lists asked for before those, packed (marshal)
        # the reasons of the partners of lists made again since they were last asked for, by partner
        self._reusable: OrderedDict[str, dict[str, KeptReasons]] = OrderedDict()
        # org -> orgs whose cached list holds it (as keys: a set is always tracked, such a dictionary not)
        self.listed_in: dict[str, dict[str, None]] = {}
        self.kth_score = np.full(max(capacity, 16), np.inf, np.float32)  # per row; inf: no list

    def make_room(self, capacity: int) -> None:
        """Room for as many rows as the index holds."""
        if len(self.kth_score) < capacity:
            grown = np.full(capacity, np.inf, np.float32)
            grown[: len(self.kth_score)] = self.kth_score
            self.kth_score = grown

    # ---- one list ---------------------------------------------------------------------------

    def top(self, org_id: str, k: int) -> list[Suggestion]:
        """The best k partners of an organisation (raises KeyError for an unknown one)."""
        index, cached_k = self.index, self.settings.cached_k
        r = index.row[org_id]
        if not index.active[r]:
            raise KeyError(org_id)
        if k > cached_k:
            return [self.reason_finder.suggestion(r, o, sc) for sc, o in self.best_rows(r, k)]
        ranked = self.lists.get(org_id)
        if ranked is None:
            ranked = self._cache(org_id, self.best_rows(r, cached_k))
        made = self._made.get(org_id)
        if made is None and org_id in self._packed:
            made = marshal.loads(self._packed.pop(org_id))
            self._keep_made(org_id, made)
        if made is not None and len(made) >= min(k, len(ranked)):
            return [Suggestion(oid, score, _reasons(why)) for oid, score, why in made[:k]]
        reusable = self._reusable.pop(org_id, {})
        if made:
            reusable.update((oid, why) for oid, _, why in made)
        ids, finder = index.ids, self.reason_finder
        listed = [
            Suggestion(ids[o], float(sc), _reasons(reusable[ids[o]]))
            if ids[o] in reusable
            else finder.suggestion(r, o, sc)
            for sc, o in ranked[:k]
        ]
        self._keep_made(org_id, tuple([(s.id, s.score, _kept(s.reasons)) for s in listed]))
        return listed

    def _keep_made(self, org_id: str, made: KeptList) -> None:
        """Keep a list as made with its reasons; past LISTS_MADE_KEPT, the one kept longest is
        packed (past LISTS_PACKED_KEPT more, the one packed longest is let go)."""
        self._made.pop(org_id, None)
        if len(self._made) >= LISTS_MADE_KEPT:
            oldest, dropped = self._made.popitem(last=False)
            packed = marshal.dumps(dropped)
            if len(self._packed) >= LISTS_PACKED_KEPT > 0:
                self._packed.popitem(last=False)
            if LISTS_PACKED_KEPT > 0:
                self._packed[oldest] = packed
        self._made[org_id] = made

    def _made_before(self, org_id: str) -> KeptList:
        """The list as last made with its reasons, when it is kept (else nothing)."""
        made = self._made.get(org_id)
        if made is not None:
            return made
        packed = self._packed.get(org_id)
        return marshal.loads(packed) if packed is not None else ()

    def best_rows(self, r: int, k: int, linear: np.ndarray | None = None) -> list[tuple[float, int]]:
        """(score, row) of row r's best k partners, best first; `linear`: index.linear_row(r) when
        already made."""
        linear = np.ascontiguousarray(self.index.linear_row(r) if linear is None else linear, np.float32)
        # the candidates: the best `want` by the linear part, and any equal to the last of them (so
        # which of equal ones are kept does not depend on the order of the rows), or all there are
        floor = kth_largest()(linear, max(self.settings.candidates, 4 * k))
        cand = np.flatnonzero(linear >= floor) if np.isfinite(floor) else np.flatnonzero(np.isfinite(linear))
        if len(cand) == 0:
            return []
        return self._rank(r, cand, linear, k)

    def _rank(self, r: int, candidates: np.ndarray, linear: np.ndarray, k: int) -> list[tuple[float, int]]:
        index = self.index
        base = linear[candidates]
        finite = np.isfinite(base)
        base, candidates = base[finite], candidates[finite]
        worth = self._may_rank(base, k)
        base, candidates = base[worth], candidates[worth]
        near = self._near_enough(r, candidates, base, k)
        base, candidates = base[near], candidates[near]
        scores = base.astype(np.float64) + np.array(index.both_ways_bonuses(r, candidates.tolist()), np.float64)
        positive = scores > 0  # nothing in common is no suggestion (and would have no reason to show)
        scores, candidates = scores[positive], candidates[positive]
        if len(scores) > k:
            # ranked by score rounded to 6 decimals, then id: one more than 1e-6 behind the k-th
            # score is behind k others once rounded (many can tie with the k-th: all are kept)
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            near = scores >= kth - RANKED_MARGIN
            scores, candidates = scores[near], candidates[near]
        # by score rounded to 6 decimals, best first, then by id (ids differ: nothing else is compared)
        found, rows = scores.tolist(), candidates.tolist()
        ordered = sorted(zip([-round(v, 6) for v in found], map(index.ids.__getitem__, rows), found, rows, strict=True))
        return [(score, o) for _, _, score, o in ordered[:k]]

    def _may_rank(self, base: np.ndarray, k: int) -> np.ndarray:
        """Which candidates, by their linear part `base`, may be among the k best once their
        both-ways bonus is added (theirs is not made for the others)."""
        settings = self.settings
        worth = np.ones(len(base), bool)
        if settings.w_give > 0 or settings.w_need > 0:
            # the linear part adds w_give·(A's offers · B's needs) and w_need·(A's needs · B's
            # offers) to terms none of which is negative: where it is 0, one of the two products
            # is, so the bonus (the smaller of them) is 0 too, and a score of 0 is no suggestion.
            # The first 60 candidates of an organisation with few in common can be every row.
            worth = base > 0
        count = int(worth.sum())
        if count > k:
            # the bonus is w_both_ways times at most 1 (the offers and needs blocks have norm 1): a
            # candidate whose linear part falls short of the k-th one's by more cannot be among
            # the k best (nor tie with them once rounded)
            kth = float(np.partition(base[worth], count - k)[count - k])
            worth &= base >= kth - abs(settings.w_both_ways) - BONUS_MARGIN
        return worth

    def _near_enough(self, r: int, candidates: np.ndarray, base: np.ndarray, k: int) -> np.ndarray:
        """Which candidates may be among the k best, or tie with the k-th once rounded, by the
        bounds of their score: the linear part `base` plus their bonus's estimate, give or take its
        error (Index.both_ways_estimates); only their bonus is made exactly (a dot product each).
        The k-th score is at least the k-th lower bound, so any candidate whose score may reach
        it less RANKED_MARGIN is kept: the ranking of those kept is the ranking of all. Where a
        score may not be positive (a linear part of 0, a negative bonus weight) all are kept."""
        if len(base) <= k or self.settings.w_both_ways < 0 or not bool(np.all(base > 0)):
            return np.ones(len(base), bool)
        estimate, error = self.index.both_ways_estimates(r, candidates)
        middle = base.astype(np.float64) + estimate
        low = middle - error - SUM_SLACK
        kth_low = np.partition(low, len(low) - k)[len(low) - k]
        return np.asarray(middle + error + SUM_SLACK >= kth_low - RANKED_MARGIN)

    # ---- every list -------------------------------------------------------------------------

    def suggestions_for_all(
        self, k: int = 5, progress: Progress | None = None, chunk: int = 2000, rows: np.ndarray | None = None
    ) -> Iterator[tuple[str, list[Suggestion]]]:
        """Every organisation's top k, as top() would give them. The best candidates by the linear
        part come from a compiled product (topn.py) in row chunks; their both-ways bonus is
        computed for all pairs of a chunk at once, and so are the reasons of those kept.

        `rows` limits the work to those row numbers (of active organisations), in that order: a
        process can take one part of the index."""
        index, settings, finder = self.index, self.settings, self.reason_finder
        n = len(index.ids)
        rows = np.flatnonzero(index.active[:n]) if rows is None else np.asarray(rows, np.int64)
        if len(rows) == 0:
            return
        right = index.right.merge()
        fitted = index.fitted  # the word matrix and concept hits of fit(), unless rows changed since
        words64 = fitted[0] if fitted is not None else index.term_matrix(np.float64)
        words = words64.astype(np.float32)  # exact weights for the reasons, float32 for the product
        id_rank = np.empty(n, np.int64)
        id_rank[np.argsort(np.array(index.ids, dtype=object))] = np.arange(n)
        product = CandidateProduct(
            sp.hstack([right, words]).tocsr(),
            index.cluster_code,
            index.active,
            max(settings.candidates, 4 * k, 1),
            rank=id_rank,
        )
        hits = finder.hit_matrices(words64, fitted[1:] if fitted is not None else None)
        columns = finder.reason_columns()
        quotes: dict[int, tuple[str, ...]] = {}  # the words reasons quote, by (row, concept, side)
        block_of = index.features.block
        offers, seeks = right[:, block_of["offers"]].tocsr(), right[:, block_of["seeks"]].tocsr()
        for start in range(0, len(rows), chunk):
            block = rows[start : start + chunk]
            left = sp.hstack([sp.csr_matrix(index.left_rows(right[block].toarray())), settings.w_terms * words[block]])
            slot, cand, base = product.best(block, left)  # slot: the owner's place in the block
            owner = block[slot]
            total = base + settings.w_both_ways * np.minimum(
                _row_dots(offers, owner, seeks, cand), _row_dots(offers, cand, seeks, owner)
            )
            # by owner, then best total first, then candidate id (as _rank sorts); k of each owner
            order = np.lexsort((id_rank[cand], -np.round(total, 6), slot))
            slot, cand, total = slot[order], cand[order], total[order]
            keep = np.arange(len(slot)) - np.searchsorted(slot, slot) < k
            slot, cand, total = slot[keep], cand[keep], total[keep]
            reasons = finder.reasons_many(block[slot], cand, hits, columns, quotes)
            ends = np.searchsorted(slot, np.arange(len(block)), side="right").tolist()
            ids, scores, cands = index.ids, total.tolist(), cand.tolist()
            lo = 0
            for r, hi in zip(block.tolist(), ends, strict=True):
                yield (
                    ids[r],
                    [
                        Suggestion(ids[o], sc, tuple(why))
                        for o, sc, why in zip(cands[lo:hi], scores[lo:hi], reasons[lo:hi], strict=True)
                    ],
                )
                lo = hi
            if progress is not None:
                progress(start + len(block), len(rows))

    # ---- the cache as the index changes -----------------------------------------------------

    def after_upsert(self, org_id: str, r: int) -> Update:
        """Row r (organisation org_id) was added or replaced: its own list, and the cached lists it
        entered or left. Costs one product against the index plus work on the few lists touched."""
        index, settings = self.index, self.settings
        self._forget(org_id)
        n = len(index.ids)
        listing = np.flatnonzero(self.kth_score[:n] < np.inf)  # the rows with a list cached
        # r's list, and r's score in each other row's list: in every row's, or in those cached only
        # when they are few (the only ones it can enter)
        read_apart = len(listing) <= n * LISTS_READ_APART
        mine, linear = index.linear_both(r, listing if read_apart else None)
        self._cache(org_id, self.best_rows(r, settings.cached_k, mine))
        update = Update(org_id, lambda: self.top(org_id, settings.cached_k))
        # `linear` holds the word likeness already: only the bonus may lift r further, by at most
        # |w_both_ways| (see _may_rank); the loop below decides on each list's own k-th score
        # (float64), this only leaves out the lists it would pass over (kth_score is that score
        # in float32, within REACH_MARGIN of it, as is the float32 sum here)
        bound, k = abs(settings.w_both_ways) + BONUS_MARGIN, settings.cached_k
        reach = np.float32(bound + REACH_MARGIN)
        kth = self.kth_score[:n]
        if read_apart:  # r's score is in the cached lists only (-inf elsewhere): read there
            reachable = listing[linear[listing] + reach > kth[listing]]
        else:
            reachable = np.flatnonzero(linear + reach > kth)
        holding = set(self.listed_in.get(org_id, ()))  # the lists that held r (listed_in is kept with them)
        ids, lists, active = index.ids, self.lists, index.active
        touched = set(reachable.tolist())
        touched.update([index.row[o] for o in holding])
        cached = [o for o in sorted(touched) if o != r and ids[o] in lists and active[o]]
        # r's score in each list it may be in: the bonus (symmetric: r's with each of them, their
        # rows made dense at once) of those it held, and of those it may enter with the largest
        # bonus there is (see _may_rank); in the others r stays out whatever its bonus
        scored, bases = [], []
        for o, base in zip(cached, linear[cached].tolist(), strict=True):
            if not math.isfinite(base):
                continue
            if ids[o] not in holding and len(lists[ids[o]]) >= k and base + bound <= lists[ids[o]][-1][0]:
                continue
            scored.append(o)
            bases.append(base)
        score_of = {
            o: base + bonus for o, base, bonus in zip(scored, bases, index.both_ways_bonuses(r, scored), strict=True)
        }
        for o in cached:
            oid = ids[o]
            ranked = lists[oid]
            was_in = oid in holding
            rest = [(sc, row) for sc, row in ranked if row != r] if was_in else ranked
            score = score_of.get(o, -np.inf)
            floor = rest[-1][0] if len(rest) >= settings.cached_k else -np.inf
            if score > floor and score > 0:
                fresh = sorted([*rest, (score, r)], key=lambda x: (-x[0], ids[x[1]]))
                self._recache(oid, fresh[: settings.cached_k], org_id)
                update.entered.add(oid)
            elif was_in:
                self._recache(oid, self.best_rows(o, settings.cached_k), org_id)
                update.left.add(oid)
        return update

    def after_remove(self, org_id: str) -> Update:
        """The organisation was made inactive: the lists it was in are made again, reported as left."""
        index = self.index
        self._forget(org_id)
        update = Update(org_id)
        for oid in sorted(self.listed_in.pop(org_id, {})):
            o = index.row[oid]
            if oid in self.lists and index.active[o]:
                self._forget(oid)
                self._cache(oid, self.best_rows(o, self.settings.cached_k))
                update.left.add(oid)
        return update

    def _cache(self, org_id: str, ranked: list[tuple[float, int]]) -> list[tuple[float, int]]:
        index = self.index
        r = index.row[org_id]
        self.lists[org_id] = ranked
        self._made.pop(org_id, None)
        self._packed.pop(org_id, None)
        for _, o in ranked:
            self.listed_in.setdefault(index.ids[o], {})[org_id] = None
        self.kth_score[r] = ranked[-1][0] if len(ranked) >= self.settings.cached_k else -np.inf
        return ranked

    def _recache(self, org_id: str, ranked: list[tuple[float, int]], changed: str) -> None:
        """A new list for org_id after organisation `changed` entered or left it: the reasons made
        for its other partners stay true (neither side changed) and are used again when it is made."""
        known = self._reusable.pop(org_id, {})
        known.update((oid, why) for oid, _, why in self._made_before(org_id))
        ids = self.index.ids
        staying = {o for _, o in ranked}
        for _, o in self.lists.pop(org_id, ()):  # _forget, for the partners that left it only
            if o not in staying:
                self.listed_in.get(ids[o], {}).pop(org_id, None)
        self._cache(org_id, ranked)
        kept = {ids[o]: known[ids[o]] for _, o in ranked if ids[o] in known and ids[o] != changed}
        if kept:
            if len(self._reusable) >= LISTS_MADE_KEPT:
                self._reusable.popitem(last=False)
            self._reusable[org_id] = kept

    def _forget(self, org_id: str) -> None:
        old = self.lists.pop(org_id, None)
        self._made.pop(org_id, None)
        self._packed.pop(org_id, None)
        self._reusable.pop(org_id, None)
        for _, o in old or ():
            self.listed_in.get(self.index.ids[o], {}).pop(org_id, None)
        r = self.index.row.get(org_id)
        if r is not None:
            self.kth_score[r] = np.inf


def _row_dots(a: sp.csr_matrix, a_rows: np.ndarray, b: sp.csr_matrix, b_rows: np.ndarray) -> np.ndarray:
    """a[a_rows[i]] · b[b_rows[i]] for every i, from the few non-zeros of each row."""
    return np.asarray(a[a_rows].multiply(b[b_rows]).sum(axis=1), dtype=np.float32).ravel()
