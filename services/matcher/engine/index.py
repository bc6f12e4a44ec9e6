"""The index: one row per organisation (its profile, analysis, vector and word weights, cluster,
whether it is active) and the linear part of the scores against every row. A score is
left(A) · right(B) plus the word likeness: left(A) puts A's blocks against the blocks of B they
meet, a linear map, so one product per row gives A's list (`left`, `left_rows` for many rows)
and one with its transpose (`left_transposed`) gives every list B would enter. Pure (no I/O)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from services.matcher.engine.analysis import Analysis
from services.matcher.engine.features import FeatureSpace
from services.matcher.engine.values import OrgProfile

# Rows changed since the sparse copies were built that are still scored from the dense rows and
# the word dictionaries; beyond this many the copies are built again.
REBUILD_AFTER = 2000

# What fit() made for all rows, kept for the batch while no row changes: the word vectors (float64)
# and the concepts each row's offers and seeks name (1/0)
FittedMatrices = tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]


class Index:
    def __init__(self, features: FeatureSpace) -> None:
        self.features = features
        self.settings = settings = features.settings
        # (block of B met, block of A, weight, matrix applied to A's block or None)
        self._left_map: tuple[tuple[str, str, float, np.ndarray | None], ...] = (
            ("sector", "sector", settings.w_sector, features.related),
            ("profile", "profile", settings.w_profile, None),
            ("offers", "seeks", settings.w_need, None),
            ("seeks", "offers", settings.w_give, None),
            ("sector", "seek_sector", settings.w_need_sector, None),
            ("seek_sector", "sector", settings.w_give_sector, None),
            ("country", "wish", settings.w_country, None),
            ("wish", "country", settings.w_country_give, None),
        )
        self.reset(0)

    # ---- rows -------------------------------------------------------------------------------

    def reset(self, capacity: int) -> None:
        """Empty, with room for `capacity` rows."""
        self.ids: list[str] = []
        self.row: dict[str, int] = {}
        self.right = np.zeros((max(capacity, 16), self.features.dim), np.float32)
        self.cluster_code = np.zeros(max(capacity, 16), np.int64)
        self.active = np.zeros(max(capacity, 16), bool)
        self.clusters: dict[str, int] = {}
        self.profiles: list[OrgProfile | None] = []
        self.analyses: list[Analysis | None] = []
        self.terms: list[dict[str, float]] = []
        self._word_matrix: sp.csr_matrix | None = None  # word vectors of the rows, built lazily
        self._word_matrix_by_term: sp.csc_matrix | None = None  # the same, column-major
        self._rows_with_new_words: set[int] = set()  # rows whose words changed since
        self._sparse_right: sp.csc_matrix | None = None  # the rows' vectors as built last, sparse
        self._rows_with_new_vectors: set[int] = set()  # rows whose vectors changed since
        self.fitted: FittedMatrices | None = None

    @property
    def capacity(self) -> int:
        return self.right.shape[0]

    def put(self, p: OrgProfile, a: Analysis, right: np.ndarray, terms: dict[str, float]) -> int:
        """Add an organisation, or replace the row of one indexed already; returns its row."""
        r = self.row.get(p.id)
        if r is None:
            if len(self.ids) == self.capacity:
                self._grow()
            r = len(self.ids)
            self.ids.append(p.id)
            self.profiles.append(p)
            self.analyses.append(a)
            self.terms.append(terms)
            self.row[p.id] = r
        else:
            self.profiles[r], self.analyses[r], self.terms[r] = p, a, terms
            self._rows_with_new_words.add(r)
            self._rows_with_new_vectors.add(r)
        self.right[r] = right
        self.cluster_code[r] = self.clusters.setdefault(p.cluster, len(self.clusters))
        self.active[r] = True
        return r

    def _grow(self) -> None:
        capacity = self.capacity * 2
        self.right = np.resize(self.right, (capacity, self.features.dim))
        self.right[len(self.ids):] = 0
        for name, fill in (("cluster_code", 0), ("active", False)):
            old = getattr(self, name)
            new = np.full(capacity, fill, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def __len__(self) -> int:
        return int(self.active[: len(self.ids)].sum())

    def __contains__(self, org_id: str) -> bool:
        return org_id in self.row

    def term_matrix(self, dtype: type = np.float32) -> sp.csr_matrix:
        """Every row's word weights, one row each over the feature space's term columns."""
        term_column = self.features.term_column
        indptr, indices, data = [0], [], []
        for weights in self.terms:
            for t, w in weights.items():
                col = term_column.get(t)
                if col is not None:
                    indices.append(col)
                    data.append(w)
            indptr.append(len(indices))
        return sp.csr_matrix((np.array(data, dtype), np.array(indices, np.int64), np.array(indptr)),
                             shape=(len(self.terms), max(len(term_column), 1)))

    def use_word_matrix(self, words: sp.csr_matrix) -> None:
        """Score from this word matrix of all rows (the batch's), and build the sparse copy of the
        vectors again when next needed."""
        self._word_matrix, self._rows_with_new_words, self._word_matrix_by_term = words, set(), None
        self._sparse_right, self._rows_with_new_vectors = None, set()

    # ---- the linear map ---------------------------------------------------------------------

    def left(self, right: np.ndarray) -> np.ndarray:
        """A's blocks placed against the blocks of B they meet: a candidate B scores left · right(B)."""
        return self.left_rows(right[None, :])[0]

    def left_rows(self, rows: np.ndarray) -> np.ndarray:
        """left() of many right-hand vectors at once (one per row of `rows`)."""
        block = self.features.block
        left = np.zeros((rows.shape[0], self.features.dim), np.float32)
        for met, own, weight, matrix in self._left_map:
            part = rows[:, block[own]]
            left[:, block[met]] += weight * (part @ matrix.T if matrix is not None else part)
        return left

    def left_transposed(self, right: np.ndarray) -> np.ndarray:
        """The transpose of left(): right(A) · left_transposed(right(B)) is the score of B in A's list."""
        block = self.features.block
        out = np.zeros(self.features.dim, np.float32)
        for met, own, weight, matrix in self._left_map:
            part = right[block[met]]
            out[block[own]] += weight * (matrix.T @ part if matrix is not None else part)
        return out

    # ---- scores -----------------------------------------------------------------------------

    def linear_score(self, r: int, o: int) -> float:
        """The linear part of row o's score in row r's list."""
        return (float(self.left(self.right[r]) @ self.right[o])
                + self.settings.w_terms * _dot(self.terms[r], self.terms[o]))

    def linear_row(self, r: int) -> np.ndarray:
        """The linear part of every row's score in r's list (-inf where it may not be suggested)."""
        scores = self._products(self.left(self.right[r])[:, None])[:, 0]
        return self.allowed(r, scores + self.settings.w_terms * self._term_scores(r))

    def linear_both(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """The linear part of every row's score in r's list, and of r's score in every row's list
        (the scores are not symmetric: what each seeks differs), from one pass over the index."""
        terms = self.settings.w_terms * self._term_scores(r)
        both = self._products(np.stack([self.left(self.right[r]), self.left_transposed(self.right[r])], axis=1))
        return self.allowed(r, both[:, 0] + terms), self.allowed(r, both[:, 1] + terms)

    def allowed(self, r: int, scores: np.ndarray) -> np.ndarray:
        """`scores` of r's candidates, -inf for itself, its own cluster and inactive rows."""
        n = len(self.ids)
        scores[~self.active[:n]] = -np.inf
        scores[self.cluster_code[:n] == self.cluster_code[r]] = -np.inf
        scores[r] = -np.inf
        return scores

    def both_ways_bonus(self, r: int, o: int) -> float:
        """The bonus of a pair where each offers what the other seeks: the weaker direction."""
        a, b = self.right[r], self.right[o]
        offers, seeks = self.features.block["offers"], self.features.block["seeks"]
        s1 = float(a[offers] @ b[seeks])  # A offers, B seeks
        s2 = float(b[offers] @ a[seeks])  # B offers, A seeks
        return self.settings.w_both_ways * min(s1, s2)

    def _term_scores(self, r: int) -> np.ndarray:
        """Word likeness of row r with every row: from the columns of r's words in the word matrix
        built last (column-major, so only those words' rows are read), plus plain dictionary
        products for the rows changed since (rebuilt when they pile up)."""
        n = len(self.ids)
        if self._word_matrix is None or len(self._rows_with_new_words) > REBUILD_AFTER:
            self._word_matrix, self._rows_with_new_words = self.term_matrix(), set()
            self._word_matrix_by_term = None
        if self._word_matrix_by_term is None:
            self._word_matrix_by_term = self._word_matrix.tocsc()
        out = np.zeros(n, np.float32)
        built = self._word_matrix.shape[0]
        x = self.terms[r]
        if x:
            term_column = self.features.term_column
            cols = [term_column[t] for t in x if t in term_column]
            if cols:
                weights = np.array([x[t] for t in x if t in term_column], np.float32)
                out[:built] = self._word_matrix_by_term[:, cols] @ weights
        for o in self._rows_with_new_words | set(range(built, n)):
            out[o] = _dot(x, self.terms[o])
        return out

    def _products(self, lefts: np.ndarray) -> np.ndarray:
        """Every row's vector times each column of `lefts`: from the vectors as built last, held
        sparse and column-major, only the columns `lefts` use are read (most of a row's columns
        are zero, and a left vector names few of them); plus dense products for the rows changed
        since (rebuilt when they pile up)."""
        n = len(self.ids)
        if (self._sparse_right is None
                or len(self._rows_with_new_vectors) + n - self._sparse_right.shape[0] > REBUILD_AFTER):
            self._sparse_right, self._rows_with_new_vectors = sp.csc_matrix(self.right[:n]), set()
        built = self._sparse_right.shape[0]
        out = np.empty((n, lefts.shape[1]), np.float32)
        used = np.flatnonzero(np.any(lefts != 0, axis=1))
        out[:built] = self._sparse_right[:, used] @ lefts[used]
        changed = sorted(self._rows_with_new_vectors | set(range(built, n)))
        if changed:
            out[changed] = self.right[changed] @ lefts
        return out


def _dot(a: dict[str, float], b: dict[str, float]) -> float:
    if len(b) < len(a):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())
