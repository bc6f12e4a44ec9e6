"""The index: one row per organisation (its profile, analysis, vector and word weights, cluster,
whether it is active) and the linear part of the scores against every row. A score is
left(A) · right(B) plus the word likeness: left(A) puts A's blocks against the blocks of B they
meet, a linear map, so one product per row gives A's list (`left`, `left_rows` for many rows)
and one with its transpose (`left_transposed`) gives every list B would enter. Pure (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from services.matcher.engine.analysis import Analysis, pack, unpack
from services.matcher.engine.features import FeatureSpace
from services.matcher.engine.rows import SparseRows
from services.matcher.engine.topn import ColumnBlocks, bonus_blocks, bonus_sums, row_products, scores_finished
from services.matcher.engine.values import OrgProfile

# Rows changed since the vectors and word weights were last merged into one matrix each, scored
# apart; beyond this many they are merged again.
REBUILD_AFTER = 2000
# The vectors held column-major for the event path's product (ColumnBlocks): in blocks of this many
# rows (the block's part of the result stays in the first-level cache), the columns more than this
# share of the rows have held dense (the sectors, the commonest concepts: 4 bytes a row each)
ROWS_PER_BLOCK = 4096
DENSE_COLUMN_SHARE = 0.3
# A float32 dot of the offers and needs blocks (185 columns) is within 185 * 2**-24 (1.1e-5) of the
# exact sum of its products, relative to their sum (none is negative, whatever the order or fused
# multiply-adds): both_ways_estimates allows ten times that
BONUS_ROUNDING = 1e-4

# What fit() made for all rows, kept for the batch while no row changes: the word vectors (float64)
# and the concepts each row's offers and seeks name (1/0)
FittedMatrices = tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]


class Index:
    def __init__(self, features: FeatureSpace) -> None:
        self.features = features
        self.settings = settings = features.settings
        # (block of B met, block of A, weight, matrix applied to A's block or None)
        self._left_map: tuple[tuple[str, str, float, np.ndarray | None], ...] = (
            ("shared", "shared", settings.w_sector, features.related),
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
        size = max(capacity, 16)
        self.ids: list[str] = []
        self.row: dict[str, int] = {}
        self.right = SparseRows(self.features.dim, np.float32)  # the rows' vectors
        self.words = SparseRows(max(len(self.features.term_column), 1), np.float64)  # their word weights
        self.cluster_code = np.zeros(size, np.int32)
        self.country_code = np.zeros(size, np.int32)
        self.active = np.zeros(size, bool)
        self.clusters: dict[str, int] = {}
        self.countries: dict[str, int] = {}
        self._cluster_names: list[str] = []
        self._country_names: list[str] = []
        self.stored: list[Analysis | bytes] = []  # each row's analysis, packed or as it is
        # column-major float32 copies of the vectors and word weights as merged last (the base
        # of each), built when first needed: (the base they copy, the copy)
        self._right_by_column: tuple[sp.csr_matrix, ColumnBlocks] | None = None
        self._words_by_term: tuple[sp.csr_matrix, ColumnBlocks] | None = None
        self._bonus_side: np.ndarray | None = None  # per column: 0 in the needs block, 1 in the offers, 2 elsewhere
        self.fitted: FittedMatrices | None = None

    @property
    def capacity(self) -> int:
        return len(self.active)

    # Views made when asked for, not kept: a view kept here would refer back to the index, and an
    # index in a reference cycle is freed only by the cyclic collector, which never sees one the
    # live matcher froze after its start (gc.freeze): each reweigh left the replaced index behind.
    @property
    def analyses(self) -> _Analyses:
        """Each row's analysis (unpacked when asked for)."""
        return _Analyses(self)

    @property
    def profiles(self) -> _Profiles:
        """Each row's organisation as the index keeps it (id, cluster, country)."""
        return _Profiles(self)

    @property
    def terms(self) -> _Terms:
        """Each row's word weights as a dictionary."""
        return _Terms(self)

    def load(
        self, items: list[OrgProfile], analyses: list[Analysis | bytes], vectors: sp.csr_matrix, words: sp.csr_matrix
    ) -> None:
        """Every row anew: the organisations, their analyses (packed or not), vectors (one row each)
        and word weights."""
        self.reset(len(items))
        self.ids = [p.id for p in items]
        self.row = {org_id: r for r, org_id in enumerate(self.ids)}
        self.stored = list(analyses)
        self.right.load(vectors)
        self.words.load(words)
        for r, p in enumerate(items):
            self._place(r, p)

    def put(self, p: OrgProfile, a: Analysis, right: np.ndarray, terms: dict[str, float]) -> int:
        """Add an organisation, or replace the row of one indexed already; returns its row."""
        r = self.row.get(p.id)
        if r is None:
            if len(self.ids) == self.capacity:
                self._grow()
            r = len(self.ids)
            self.ids.append(p.id)
            self.stored.append(pack(a))
            self.row[p.id] = r
        else:
            self.stored[r] = pack(a)
        self.right.set_dense(r, right)
        columns = self.features.term_columns(terms)
        if len(self.features.term_column) > self.words.width:
            self.words.widen(len(self.features.term_column))
        self.words.set(r, columns, np.array(list(terms.values()), np.float64))
        self._place(r, p)
        return r

    def _place(self, r: int, p: OrgProfile) -> None:
        """Row r's cluster and country, and that it is active."""
        self.cluster_code[r] = _code(self.clusters, self._cluster_names, p.cluster)
        self.country_code[r] = _code(self.countries, self._country_names, p.country)
        self.active[r] = True

    def cluster(self, r: int) -> str:
        return self._cluster_names[self.cluster_code[r]]

    def country(self, r: int) -> str:
        return self._country_names[self.country_code[r]]

    def _grow(self) -> None:
        capacity = self.capacity * 2
        for name in ("cluster_code", "country_code", "active"):
            old = getattr(self, name)
            new = np.zeros(capacity, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def __len__(self) -> int:
        return int(self.active[: len(self.ids)].sum())

    def __contains__(self, org_id: str) -> bool:
        return org_id in self.row

    def term_matrix(self, dtype: type = np.float32) -> sp.csr_matrix:
        """Every row's word weights, one row each over the feature space's term columns."""
        return self.words.merge().astype(dtype)

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
        return float(self.left(self.right[r]) @ self.right[o]) + self.settings.w_terms * _dot(
            self.terms[r], self.terms[o]
        )

    def linear_row(self, r: int) -> np.ndarray:
        """The linear part of every row's score in r's list (-inf where it may not be suggested)."""
        scores = self._products(self.left(self.right[r])[:, None])[0]
        return self.allowed(r, scores + self.settings.w_terms * self._term_scores(r))

    def linear_both(self, r: int, listing: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The linear part of every row's score in r's list, and of r's score in every row's list
        (the scores are not symmetric: what each seeks differs), from one pass over the index.
        `listing`: the only rows whose lists matter (in order), when they are few; r's score in
        the others' lists is then -inf, and each of theirs is read from its row alone."""
        terms = self._term_scores(r)
        weight = np.float32(self.settings.w_terms)  # as numpy multiplies a float32 array by the setting
        right = self.right[r]
        left, left_t = self.left(right), self.left_transposed(right)
        n = len(self.ids)
        cluster, active, finish = self.cluster_code[:n], self.active[:n], scores_finished()
        if listing is None:
            mine, theirs = self._products(np.stack([left, left_t], axis=1))
            finish(theirs, terms, weight, cluster, active, r)
        else:
            mine = self._products(left[:, None])[0]
            theirs = np.full(n, -np.inf, np.float32)
            listed = self._row_products(listing, left_t) + weight * terms[listing]
            listed[self._barred(r, listing)] = -np.inf
            theirs[listing] = listed
        finish(mine, terms, weight, cluster, active, r)
        return mine, theirs

    def allowed(self, r: int, scores: np.ndarray) -> np.ndarray:
        """`scores` of r's candidates, -inf for itself, its own cluster and inactive rows."""
        scores[self._barred(r)] = -np.inf
        return scores

    def _barred(self, r: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Which of `rows` (default: every row, in order) may not be in r's list, nor r in theirs:
        itself, its own cluster, inactive rows (the event path's compiled scores_finished applies
        the same rule)."""
        if rows is not None:
            return (self.cluster_code[rows] == self.cluster_code[r]) | ~self.active[rows] | (rows == r)
        n = len(self.ids)
        barred = self.cluster_code[:n] == self.cluster_code[r]
        barred |= ~self.active[:n]
        barred[r] = True
        return barred

    def both_ways_bonus(self, r: int, o: int) -> float:
        """The bonus of a pair where each offers what the other seeks: the weaker direction."""
        a, b = self.right[r], self.right[o]
        offers, seeks = self.features.block["offers"], self.features.block["seeks"]
        s1 = float(a[offers] @ b[seeks])  # A offers, B seeks
        s2 = float(b[offers] @ a[seeks])  # B offers, A seeks
        return self.settings.w_both_ways * min(s1, s2)

    def both_ways_bonuses(self, r: int, rows: list[int]) -> list[float]:
        """both_ways_bonus(r, o) for each o of `rows`. Where the offers and needs of the two do not
        meet both ways (no column where both have weight, one way or the other), one product adds
        only zeros and the bonus is 0 (the blocks have no negative weight); only the other rows
        are made dense, at once (compiled loops read the rows' entries)."""
        if not rows:  # an upsert whose score reaches no cached list
            return []
        a = self.right[r]
        offers, seeks = self.features.block["offers"], self.features.block["seeks"]
        a_offers, a_seeks, weight = a[offers], a[seeks], self.settings.w_both_ways
        asked = np.asarray(rows, np.int64)
        _, met = self._bonus_sums(a, asked)
        both = np.flatnonzero((met[:, 0] > 0) & (met[:, 1] > 0))
        bonuses = [0.0] * len(rows)
        # the needs and offers blocks of those rows only, dense: one per row of `both`
        dense: np.ndarray = np.zeros((len(both), 2, len(a_offers)), self.right.dtype)
        base, apart, at, slots = self._sources(asked[both])
        bonus_blocks()(*base, *apart, at, slots, seeks.start, offers.start, dense)
        dot = np.dot  # the products `@` makes of two vectors (the same BLAS dot), called with less work
        for i, (b_seeks, b_offers) in zip(both.tolist(), dense, strict=True):
            bonuses[i] = weight * min(float(dot(a_offers, b_seeks)), float(dot(b_offers, a_seeks)))
        return bonuses

    def both_ways_estimates(self, r: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """both_ways_bonus(r, o) for each o of `rows` as an estimate and how far the bonus may be
        from it at most, without a dot product per row: each direction's sum of the products of the
        entries both have, in float64 (a product of two float32 numbers is exact there); the
        float32 dot of the bonus adds the same products (the others are 0), rounded on the way, by
        at most BONUS_ROUNDING of their sum (they are not negative), and min() moves an error no
        further. For a weight of the bonus that is not negative."""
        sums, _ = self._bonus_sums(self.right[r], np.asarray(rows, np.int64))
        low = np.minimum(sums[:, 0], sums[:, 1])
        weight = self.settings.w_both_ways
        return weight * low, weight * BONUS_ROUNDING * np.maximum(sums[:, 0], sums[:, 1])

    def _bonus_sums(self, a: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each of `rows` (B) against the vector `a` (A's): the sums, in float64 entry by entry
        in B's order, of the products of B's needs with A's offers (column 0) and of B's offers
        with A's needs (column 1), and how many of B's entries meet a weight of A there."""
        offers, seeks = self.features.block["offers"], self.features.block["seeks"]
        mate = np.zeros(self.features.dim)  # per column of B, the weight of A it meets
        mate[seeks] = a[offers]  # B's needs against A's offers
        mate[offers] = a[seeks]  # B's offers against A's needs
        if self._bonus_side is None:  # 0: B's needs, 1: B's offers, 2: neither
            self._bonus_side = np.full(self.features.dim, 2, np.int64)
            self._bonus_side[seeks], self._bonus_side[offers] = 0, 1
        sums = np.zeros((len(rows), 3))
        met = np.zeros((len(rows), 3), np.int64)
        base, apart, at, slots = self._sources(rows)
        bonus_sums()(*base, *apart, at, slots, mate, self._bonus_side, sums, met)
        return sums, met

    def _sources(
        self, rows: np.ndarray
    ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
        """Where the compiled loops read each of `rows`' vectors: the base matrix's arrays, the
        changed rows' arrays, the rows, and per row the slot of its latest change (-1: in the base)."""
        right = self.right
        base, apart = right.base, right.apart
        slot = apart.slot
        slots = np.array([slot.get(o, -1) for o in rows.tolist()], np.int64) if slot else np.full(len(rows), -1)
        if len(rows) and int(rows[slots < 0].max(initial=-1)) >= base.shape[0]:
            raise IndexError("a row neither in the base nor changed")
        if len(rows) and int(rows.min()) < 0:
            raise IndexError("a negative row")
        return (base.indptr, base.indices, base.data), (apart.indptr, apart.indices, apart.data), rows, slots

    def _term_scores(self, r: int) -> np.ndarray:
        """Word likeness of row r with every row: from the columns of r's words in the word weights
        as merged last (column-major, so only those words' rows are read), plus products with the
        rows changed since (merged when they pile up)."""
        words = self.words
        if len(words.changed) > REBUILD_AFTER:
            words.merge()
        out = np.zeros((1, len(self.ids)), np.float32)
        columns, weights = words.get(r)
        if len(columns):
            self._by_term().add_products(columns.astype(np.int64), weights.astype(np.float32).reshape(-1, 1), out)
        if words.changed:
            mine = np.zeros((words.width, 1))
            mine[columns, 0] = weights
            words.apart.products(mine, out)
        return out[0]

    def _products(self, lefts: np.ndarray) -> np.ndarray:
        """Every row's vector times each column of `lefts`, one row of the result per column: from
        the vectors as merged last, held column-major, only the columns `lefts` use are read (most
        of a row's columns are zero, and a left vector names few of them); plus products with the
        rows changed since (merged when they pile up)."""
        right = self._merged_right()
        out = np.zeros((lefts.shape[1], len(self.ids)), np.float32)
        used = np.flatnonzero(np.any(lefts != 0, axis=1))
        self._by_column().add_products(used, np.ascontiguousarray(lefts[used], np.float32), out)
        if right.changed:
            right.apart.products(np.ascontiguousarray(lefts, np.float32), out)
        return out

    def _row_products(self, rows: np.ndarray, left: np.ndarray) -> np.ndarray:
        """Each of `rows`' vectors (rows: ascending) times `left`, as _products gives them (each row
        adds its entries in the order of its columns), reading only those rows: a changed one
        from its latest copy apart."""
        right = self._merged_right()
        out = np.zeros((1, len(rows)), np.float32)
        base = right.base
        at = np.flatnonzero(rows < base.shape[0])
        lefts = np.ascontiguousarray(left[:, None], np.float32)
        if len(at):
            scratch = np.zeros(1, np.float32)
            row_products()(base.indptr, base.indices, base.data, rows[at], at, lefts, scratch, out)
        if right.changed:
            right.apart.products_of(rows, lefts, out)
        return out[0]

    def _merged_right(self) -> SparseRows:
        right = self.right
        if len(right.changed) > REBUILD_AFTER:
            right.merge()
        return right

    def _by_column(self) -> ColumnBlocks:
        right = self.right
        if self._right_by_column is None or self._right_by_column[0] is not right.base:
            self._right_by_column = right.base, ColumnBlocks(right.base, ROWS_PER_BLOCK, DENSE_COLUMN_SHARE)
        return self._right_by_column[1]

    def _by_term(self) -> ColumnBlocks:
        words = self.words
        if self._words_by_term is None or self._words_by_term[0] is not words.base:
            self._words_by_term = words.base, ColumnBlocks(words.base)
        return self._words_by_term[1]

    def prepare_products(self) -> None:
        """Make the column-major copies the event path's products read now, not at the next event."""
        self._by_column()
        self._by_term()


class _Analyses(Sequence[Analysis]):
    """Each row's analysis, unpacked when asked for."""

    def __init__(self, index: Index) -> None:
        self._index = index  # not `index`: Sequence.index finds a value

    def __len__(self) -> int:
        return len(self._index.stored)

    def __getitem__(self, r):
        if isinstance(r, slice):
            return [self[i] for i in range(len(self))[r]]
        found = self._index.stored[r]
        return unpack(found) if isinstance(found, bytes) else found


class _Profiles(Sequence[OrgProfile]):
    """Each row's organisation as the index keeps it: its id, cluster and country (the texts are
    read once, into the analysis)."""

    def __init__(self, index: Index) -> None:
        self._index = index  # not `index`: Sequence.index finds a value

    def __len__(self) -> int:
        return len(self._index.ids)

    def __getitem__(self, r):
        index = self._index
        if isinstance(r, slice):
            return [self[i] for i in range(len(self))[r]]
        return OrgProfile(id=index.ids[r], cluster=index.cluster(r), country=index.country(r))


class _Terms(Sequence[dict[str, float]]):
    """Each row's word weights as a dictionary, made when asked for."""

    def __init__(self, index: Index) -> None:
        self._index = index  # not `index`: Sequence.index finds a value

    def __len__(self) -> int:
        return len(self._index.ids)

    def __getitem__(self, r):
        if isinstance(r, slice):
            return [self[i] for i in range(len(self))[r]]
        if not -len(self) <= r < len(self):
            raise IndexError(r)
        columns, weights = self._index.words.get(r % len(self))
        names = self._index.features.term_names()
        return dict(zip(map(names.__getitem__, columns.tolist()), weights.tolist(), strict=True))


def _code(codes: dict[str, int], names: list[str], name: str) -> int:
    code = codes.get(name)
    if code is None:
        code = codes[name] = len(names)
        names.append(name)
    return code


def _dot(a: dict[str, float], b: dict[str, float]) -> float:
    if len(b) < len(a):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())
