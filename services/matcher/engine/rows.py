"""Rows of a sparse matrix that change one at a time: most rows in one CSR matrix built at once
(`base`), the rows set since held apart (`changed`, and one after another in `apart` for the
event path's product) until they are merged in. A row is its
columns and values in the order they were given, so a product over one row adds in that order.
Memory: 4 bytes per column index plus the value's size, per non-zero. Pure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from services.matcher.engine.topn import row_products

Row = tuple[np.ndarray, np.ndarray]  # (columns, values)


class SparseRows:
    def __init__(self, width: int, dtype: type) -> None:
        self.width, self.dtype = width, dtype
        self.load(sp.csr_matrix((0, width), dtype=dtype))

    def load(self, matrix: sp.csr_matrix) -> None:
        """Every row anew, from one matrix (kept as it is, with 32-bit column indices)."""
        self.base = _compact(matrix, self.dtype)
        self.changed: dict[int, Row] = {}
        self.count = matrix.shape[0]
        self.apart = ChangedRows(self.dtype)

    def __len__(self) -> int:
        return self.count

    @property
    def shape(self) -> tuple[int, int]:
        return self.count, self.width

    def widen(self, width: int) -> None:
        """Room for more columns (the rows are unchanged)."""
        self.width = width
        self.base = sp.csr_matrix(
            (self.base.data, self.base.indices, self.base.indptr), shape=(self.base.shape[0], width)
        )

    def set(self, r: int, columns: np.ndarray, values: np.ndarray) -> None:
        """Set row r (r == len(self) appends one)."""
        if r > self.count:
            raise IndexError(r)
        self.count = max(self.count, r + 1)
        row = self.changed[r] = (np.asarray(columns, np.int32), np.asarray(values, self.dtype))
        self.apart.set(r, *row)

    def set_dense(self, r: int, vector: np.ndarray) -> None:
        columns = np.flatnonzero(vector)
        self.set(r, columns, vector[columns])

    def get(self, r: int) -> Row:
        found = self.changed.get(r)
        if found is not None:
            return found
        if not 0 <= r < self.base.shape[0]:
            raise IndexError(r)
        lo, hi = self.base.indptr[r], self.base.indptr[r + 1]
        return self.base.indices[lo:hi], self.base.data[lo:hi]

    def dense(self, r: int) -> np.ndarray:
        out: np.ndarray = np.zeros(self.width, self.dtype)
        columns, values = self.get(r)
        out[columns] = values
        return out

    def __getitem__(self, key: int | slice | np.ndarray | tuple) -> np.ndarray:
        """Dense rows, as a dense matrix's indexing gives them: m[r], m[a:b], m[rows], m[rows, cols]."""
        if isinstance(key, tuple):
            rows, columns = key
            return self[rows][..., columns]
        if isinstance(key, (int, np.integer)):
            return self.dense(int(key))
        rows = range(self.count)[key] if isinstance(key, slice) else np.asarray(key, np.int64).tolist()
        out: np.ndarray = np.zeros((len(rows), self.width), self.dtype)
        places, columns, values = self.entries(rows)
        out[places, columns] = values
        return out

    def entries(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every entry of these rows: (its row's place in `rows`, its column, its value); the base's
        rows are read at once, without a Python step each."""
        base, changed = self.base, self.changed
        asked = np.asarray(rows, np.int64)
        from_base = (asked >= 0) & (asked < base.shape[0])
        if changed and len(asked) > len(changed):  # many rows: test them against the changed ones at once
            from_base &= ~np.isin(asked, np.fromiter(changed, np.int64, len(changed)))
        elif changed:
            from_base &= np.array([r not in changed for r in asked.tolist()], bool)
        at = np.flatnonzero(from_base)
        picked = asked[at]
        starts = base.indptr[picked].astype(np.int64)
        lengths = base.indptr[picked + 1] - starts
        at_entry = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths - starts, lengths)
        places, columns, values = [np.repeat(at, lengths)], [base.indices[at_entry]], [base.data[at_entry]]
        for i in np.flatnonzero(~from_base).tolist():
            row_columns, row_values = self.get(rows[i])
            places.append(np.full(len(row_columns), i, np.int64))
            columns.append(row_columns)
            values.append(row_values)
        return np.concatenate(places), np.concatenate(columns), np.concatenate(values)

    def merge(self) -> sp.csr_matrix:
        """Every row in one matrix again (the base); returns it."""
        if not self.changed and self.base.shape[0] == self.count:
            return self.base
        base = self.base
        lengths = np.zeros(self.count, np.int64)
        lengths[: base.shape[0]] = np.diff(base.indptr)
        changed = np.array(sorted(self.changed), np.int64)
        old_rows = changed[changed < base.shape[0]]
        lengths[changed] = [len(self.changed[r][0]) for r in changed.tolist()]
        indptr = np.zeros(self.count + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        indices = np.empty(indptr[-1], np.int32)
        data = np.empty(indptr[-1], self.dtype)
        # the base's rows kept come in runs between the changed ones: each run's entries are together
        # in the base and stay together, moved as one slice (an index array per entry took 1.0 s
        # for the words of 100,000 rows, most of the event that merged them)
        for first, end in zip([0, *(old_rows + 1).tolist()], [*old_rows.tolist(), base.shape[0]], strict=True):
            if first < end:
                lo, hi, to = int(base.indptr[first]), int(base.indptr[end]), int(indptr[first])
                indices[to : to + hi - lo], data[to : to + hi - lo] = base.indices[lo:hi], base.data[lo:hi]
        for r in changed.tolist():
            columns, values = self.changed[r]
            indices[indptr[r] : indptr[r + 1]], data[indptr[r] : indptr[r + 1]] = columns, values
        self.load(sp.csr_matrix((data, indices, indptr), shape=(self.count, self.width)))
        return self.base


class ChangedRows:
    """The rows set since the base was built, one after another in growing arrays (CSR's indptr,
    indices and data), so setting one copies only that row. A row set again is appended and its
    earlier copy left unread (`slot`: where each row's latest copy is) until the earlier copies
    are as many as the rows, when the latest ones are copied together again."""

    def __init__(self, dtype: type) -> None:
        self.indptr = np.zeros(1, np.int64)
        self.indices = np.zeros(0, np.int32)
        self.data: np.ndarray = np.zeros(0, dtype)
        self.slot: dict[int, int] = {}
        self._row_of = np.zeros(0, np.int64)  # per copy, its row
        self._latest = np.zeros(0, bool)  # per copy, whether it is its row's latest
        self._copies = 0  # rows appended, their earlier copies included

    def set(self, r: int, columns: np.ndarray, values: np.ndarray) -> None:
        earlier = self.slot.get(r)
        if earlier is not None:
            self._latest[earlier] = False
            if self._copies >= 2 * len(self.slot) + 16:
                self._copy_latest()
        at, copies = int(self.indptr[self._copies]), self._copies
        end = at + len(columns)
        if copies + 1 > len(self._row_of):
            self._row_of, self._latest = _grown(self._row_of, copies + 1), _grown(self._latest, copies + 1)
            self.indptr = _grown(self.indptr, len(self._row_of) + 1)
        if end > len(self.indices):
            self.indices, self.data = _grown(self.indices, end), _grown(self.data, end)
        self.indices[at:end], self.data[at:end] = columns, values
        self.indptr[copies + 1] = end
        self._row_of[copies], self._latest[copies] = r, True
        self.slot[r] = copies
        self._copies += 1

    def _copy_latest(self) -> None:
        """Only each row's latest copy kept, in the order they were set."""
        kept = np.flatnonzero(self._latest[: self._copies])
        lengths = self.indptr[kept + 1] - self.indptr[kept]
        spans = [np.arange(self.indptr[s], self.indptr[s + 1]) for s in kept.tolist()]
        entries = np.concatenate(spans) if spans else np.zeros(0, np.int64)
        self.indices[: len(entries)], self.data[: len(entries)] = self.indices[entries], self.data[entries]
        self.indptr[1 : len(kept) + 1] = np.cumsum(lengths)
        self._row_of[: len(kept)], self._latest[: len(kept)] = self._row_of[kept], True
        self._latest[len(kept) : self._copies] = False
        self._copies = len(kept)
        self.slot = {r: s for s, r in enumerate(self._row_of[: len(kept)].tolist())}

    def products(self, lefts: np.ndarray, out: np.ndarray) -> None:
        """out[w, r] = row r · lefts[:, w] for every row r set here (lefts: one row per column, of
        this type): each sum from zero in the row's order, as scipy's product of these rows adds."""
        slots = np.flatnonzero(self._latest[: self._copies])
        scratch = np.zeros(lefts.shape[1], self.data.dtype)
        row_products()(self.indptr, self.indices, self.data, slots, self._row_of[slots], lefts, scratch, out)

    def products_of(self, rows: np.ndarray, lefts: np.ndarray, out: np.ndarray) -> None:
        """products() of those of `rows` (ascending) set here only: out[w, i] = rows[i] · lefts[:, w]."""
        slots = np.flatnonzero(self._latest[: self._copies])
        set_rows = self._row_of[slots]
        at = np.searchsorted(rows, set_rows).clip(max=max(len(rows) - 1, 0))
        asked = rows[at] == set_rows if len(rows) else np.zeros(len(slots), bool)
        scratch = np.zeros(lefts.shape[1], self.data.dtype)
        row_products()(self.indptr, self.indices, self.data, slots[asked], at[asked], lefts, scratch, out)


def _grown(a: np.ndarray, size: int) -> np.ndarray:
    """`a` with room for at least `size` entries (twice as many), the first ones kept (the rest zero)."""
    grown = np.zeros(max(size, 2 * len(a)), a.dtype)
    grown[: len(a)] = a
    return grown


def _compact(m: sp.csr_matrix, dtype: type) -> sp.csr_matrix:
    m = m.tocsr()
    if m.dtype != dtype:
        m = m.astype(dtype)
    if len(m.indices) < 2**31:
        m.indices, m.indptr = m.indices.astype(np.int32, copy=False), m.indptr.astype(np.int32, copy=False)
    return m
