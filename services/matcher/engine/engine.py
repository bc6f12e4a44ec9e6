"""The cross-lingual matching index: fit once, then add, replace or remove one organisation at a time.

Needs first: B's score in A's list is how well B offers what A seeks (the sectors and activities
A's requests name, and the countries A asked for), then what A offers that B seeks, shared sector
(related sectors can count partly: `related_weight`, 0 by default) and whole-profile likeness of
activities, a within-language term signal, and a both-ways bonus on the best candidates. So a
score is not symmetric: A's need met is not B's. Concept and word weights are scikit-learn's
TF-IDF, learnt again as the index changes (reweigh). Pure (no I/O).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import scipy.sparse as sp

from services.matcher.engine.analysis import Analysis
from services.matcher.engine.features import FeatureSpace, tfidf_transformer
from services.matcher.engine.lexicon import Lexicon, load_lexicon
from services.matcher.engine.reasons import ReasonFinder
from services.matcher.engine.settings import EngineSettings
from services.matcher.engine.values import OrgProfile, Progress, Reason, Suggestion, Update
from services.matcher.engine.workers import analyse_all

__all__ = ["EngineSettings", "MatchEngine", "OrgProfile", "Progress", "Reason", "Suggestion", "Update"]

logger = logging.getLogger(__name__)


class MatchEngine:
    def __init__(self, lexicon: Lexicon | None = None, settings: EngineSettings | None = None) -> None:
        self.features = features = FeatureSpace(lexicon or load_lexicon(), settings or EngineSettings())
        self.lexicon, self.settings = features.lexicon, features.settings
        self.block, self.dim = features.block, features.dim
        # A score is left(A) · right(B), where left(A) puts A's blocks against the blocks of B they
        # meet (_left_map): a linear map, so one product per row gives A's list and one with its
        # transpose gives every list B would enter.
        s = self.settings
        # (block of B met, block of A, weight, matrix applied to A's block or None)
        self._left_map: tuple[tuple[str, str, float, np.ndarray | None], ...] = (
            ("sector", "sector", s.w_sector, features.related),
            ("profile", "profile", s.w_profile, None),
            ("offers", "seeks", s.w_need, None),
            ("seeks", "offers", s.w_give, None),
            ("sector", "seek_sector", s.w_need_sector, None),
            ("seek_sector", "sector", s.w_give_sector, None),
            ("country", "wish", s.w_country, None),
            ("wish", "country", s.w_country_give, None),
        )
        self._changes = 0  # upserts and removals since the weights were learnt
        self.reason_finder = ReasonFinder(features, self)
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
        self.reason_finder.forget_all()
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
        for batch in analyse_all(self.features.analyse, items, workers, while_waiting=tfidf_transformer):
            analyses.extend(batch)
            if progress is not None:
                progress(len(analyses), len(items))
        self._index(items, analyses)

    def _index(self, items: list[OrgProfile], analyses: list[Analysis]) -> None:
        """Learn the weights of concepts and words from these analyses, and index them all anew."""
        (c_cap, c_goal), words64 = self.features.learn_weights(analyses)
        self._reset(len(items))
        names = self.features.term_names()
        row_terms = list(map(names.__getitem__, words64.indices.tolist()))
        row_weights, bounds = words64.data.tolist(), words64.indptr.tolist()
        for start in range(0, len(items), 5000):
            end = min(start + 5000, len(items))
            vectors = self.features.vectors_many(analyses[start:end], [p.country for p in items[start:end]],
                                         (c_cap[start:end], c_goal[start:end]))
            for r, right in zip(range(start, end), vectors, strict=True):
                lo, hi = bounds[r], bounds[r + 1]
                self._put(items[r], analyses[r], (right, dict(zip(row_terms[lo:hi], row_weights[lo:hi], strict=True))))
        # kept for the batch while no row changes (_put drops them)
        self._fitted = (words64, (c_cap > 0).astype(np.int8).tocsr(), (c_goal > 0).astype(np.int8).tocsr())
        self._changes = 0
        logger.info("index fitted", extra={"profiles": len(items), "terms": len(self.features.term_idf)})

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
        if self._changes >= max(self.settings.reweigh_min_changes, self.settings.reweigh_share * len(self)):
            self.reweigh()

    def _put(self, p: OrgProfile, a: Analysis, vectors: tuple[np.ndarray, dict[str, float]] | None = None) -> int:
        right, terms = vectors if vectors is not None else self.features.vectors(a, p.country)
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
            self.row[p.id] = r
        else:
            self.profiles[r], self.analyses[r], self.terms[r] = p, a, terms
            self.reason_finder.forget(r)
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
            self._words, self._dirty = self.term_matrix(), set()
            self._words_by_term = None
        if self._words_by_term is None:
            self._words_by_term = self._words.tocsc()
        out = np.zeros(n, np.float32)
        built = self._words.shape[0]
        x = self.terms[r]
        if x:
            cols = [self.features.term_column[t] for t in x if t in self.features.term_column]
            if cols:
                weights = np.array([x[t] for t in x if t in self.features.term_column], np.float32)
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
        return self._allowed(r, scores + self.settings.w_terms * self._term_scores(r))

    def _linear_both(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """The linear part of every row's score in r's list, and of r's score in every row's list
        (the scores are not symmetric: what each seeks differs), from one pass over the index."""
        terms = self.settings.w_terms * self._term_scores(r)
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
        return self.settings.w_both_ways * min(s1, s2)

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
        want = min(max(self.settings.candidates, 4 * k), finite)
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
                + self.settings.w_terms * _dot(self.terms[ra], self.terms[rb]))
        return self.reason_finder.suggestion(ra, rb, base + self._extras(ra, rb))

    def top(self, org_id: str, k: int = 5) -> list[Suggestion]:
        """The best k partners of an organisation (raises KeyError for an unknown one)."""
        r = self.row[org_id]
        if not self.active[r]:
            raise KeyError(org_id)
        cached = self.topk.get(org_id)
        if cached is not None and k <= self.settings.cached_k:
            return cached[:k]
        if k > self.settings.cached_k:
            return [self.reason_finder.suggestion(r, o, sc) for sc, o in self._top_rows(r, k)]
        return self._cache(org_id, self._top_rows(r, self.settings.cached_k))[:k]

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
        words64 = fitted[0] if fitted is not None else self.term_matrix(np.float64)
        words = words64.astype(np.float32)  # exact weights for the reasons, float32 for the product
        self._words, self._dirty, self._words_by_term = words, set(), None
        self._sparse_right, self._right_dirty = None, set()
        id_rank = np.empty(n, np.int64)
        id_rank[np.argsort(np.array(self.ids, dtype=object))] = np.arange(n)
        product = CandidateProduct(sp.hstack([sp.csr_matrix(right), words]).tocsr(), self.cluster_code,
                                   self.active, max(self.settings.candidates, 4 * k, 1), rank=id_rank)
        hits = self.reason_finder.hit_matrices(words64, fitted[1:] if fitted is not None else None)
        columns = self.reason_finder.reason_columns()
        quotes: dict[int, tuple[str, ...]] = {}  # the words reasons quote, by (row, concept, side)
        offers, seeks = sp.csr_matrix(right[:, self.block["offers"]]), sp.csr_matrix(right[:, self.block["seeks"]])
        for start in range(0, len(rows), chunk):
            block = rows[start:start + chunk]
            left = sp.hstack([sp.csr_matrix(self._left_rows(right[block])),
                              self.settings.w_terms * words[block]])
            slot, cand, base = product.best(block, left)  # slot: the owner's place in the block
            owner = block[slot]
            total = base + self.settings.w_both_ways * np.minimum(_row_dots(offers, owner, seeks, cand),
                                                           _row_dots(offers, cand, seeks, owner))
            # by owner, then best total first, then candidate id (as _rank sorts); k of each owner
            order = np.lexsort((id_rank[cand], -np.round(total, 6), slot))
            slot, cand, total = slot[order], cand[order], total[order]
            keep = np.arange(len(slot)) - np.searchsorted(slot, slot) < k
            slot, cand, total = slot[keep], cand[keep], total[keep]
            reasons = self.reason_finder.reasons_many(block[slot], cand, hits, columns, quotes)
            ends = np.searchsorted(slot, np.arange(len(block)), side="right").tolist()
            ids, scores, cands = self.ids, total.tolist(), cand.tolist()
            lo = 0
            for r, hi in zip(block.tolist(), ends, strict=True):
                yield ids[r], [Suggestion(ids[o], sc, tuple(why))
                               for o, sc, why in zip(cands[lo:hi], scores[lo:hi], reasons[lo:hi], strict=True)]
                lo = hi
            if progress is not None:
                progress(start + len(block), len(rows))

    def term_matrix(self, dtype: type = np.float32) -> sp.csr_matrix:
        indptr, indices, data = [0], [], []
        for tv in self.terms:
            for t, w in tv.items():
                col = self.features.term_column.get(t)
                if col is not None:
                    indices.append(col)
                    data.append(w)
            indptr.append(len(indices))
        return sp.csr_matrix((np.array(data, dtype), np.array(indices, np.int64), np.array(indptr)),
                             shape=(len(self.terms), max(len(self.features.term_column), 1)))

    # ---- incremental ------------------------------------------------------------------------

    def upsert(self, profile: OrgProfile) -> Update:
        """Add or replace one organisation, keeping the fitted weights; report whose cached lists
        it entered or left. Costs one product against the index plus work on the few lists touched."""
        self._changed()
        r = self._put(profile, self.features.analyse(profile))
        self._forget(profile.id)
        mine, linear = self._linear_both(r)  # r's list, and r's score in each other row's list
        own = self._cache(profile.id, self._top_rows(r, self.settings.cached_k, mine))
        update = Update(profile.id, own)
        max_extra = self.settings.w_both_ways + self.settings.w_terms
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
            floor = rest[-1].score if len(rest) >= self.settings.cached_k else -np.inf
            if score > floor and score > 0:
                fresh = sorted([*rest, self.reason_finder.suggestion(o, r, score)], key=lambda s: (-s.score, s.id))
                self._forget(oid)
                self._cache(oid, [(s, self.row[s.id]) for s in fresh[: self.settings.cached_k]])
                update.entered[oid] = self.topk[oid]
            elif was_in:
                self._forget(oid)
                update.left[oid] = self._cache(oid, self._top_rows(o, self.settings.cached_k))
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
                update.left[oid] = self._cache(oid, self._top_rows(o, self.settings.cached_k))
        return update

    def _cache(self, org_id: str, ranked: list[tuple[float, int]] | list[tuple[Suggestion, int]]
               ) -> list[Suggestion]:
        r = self.row[org_id]
        result = [sc if isinstance(sc, Suggestion) else self.reason_finder.suggestion(r, o, sc) for sc, o in ranked]
        self.topk[org_id] = result
        for s in result:
            self._listed_in.setdefault(s.id, set()).add(org_id)
        self._kth[r] = result[-1].score if len(result) >= self.settings.cached_k else -np.inf
        return result

    def _forget(self, org_id: str) -> None:
        old = self.topk.pop(org_id, None)
        for s in old or ():
            self._listed_in.get(s.id, set()).discard(org_id)
        r = self.row.get(org_id)
        if r is not None:
            self._kth[r] = np.inf

    # ---- reasons ----------------------------------------------------------------------------

    def reasons(self, r: int, o: int) -> list[Reason]:
        """Why row o is listed for row r."""
        return self.reason_finder.reasons(r, o)




def _row_dots(a: sp.csr_matrix, a_rows: np.ndarray, b: sp.csr_matrix, b_rows: np.ndarray) -> np.ndarray:
    """a[a_rows[i]] · b[b_rows[i]] for every i, from the few non-zeros of each row."""
    return np.asarray(a[a_rows].multiply(b[b_rows]).sum(axis=1), dtype=np.float32).ravel()


def _dot(a: dict[str, float], b: dict[str, float]) -> float:
    if len(b) < len(a):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


