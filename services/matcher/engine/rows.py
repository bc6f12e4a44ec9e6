"""Rows of a sparse matrix that change one at a time: most rows in one CSR matrix built at once
(`base`), the rows set since held apart (`changed`) until they are merged in. A row is its
columns and values in the order they were given, so a product over one row adds in that order.
Memory: 4 bytes per column index plus the value's size, per non-zero. Pure."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

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
        self._changed_matrix: tuple[list[int], sp.csr_matrix] | None = None
        self._appended: list[int] = []  # rows set for the first time since _changed_matrix was made

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
        self._changed_matrix, self._appended = None, []

    def set(self, r: int, columns: np.ndarray, values: np.ndarray) -> None:
        """Set row r (r == len(self) appends one)."""
        if r > self.count:
            raise IndexError(r)
        self.count = max(self.count, r + 1)
        if r in self.changed:
            self._changed_matrix, self._appended = None, []
        elif self._changed_matrix is not None:
            self._appended.append(r)
        self.changed[r] = (np.asarray(columns, np.int32), np.asarray(values, self.dtype))

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
        for i, r in enumerate(rows):
            columns, values = self.get(r)
            out[i, columns] = values
        return out

    def changed_matrix(self) -> tuple[list[int], sp.csr_matrix]:
        """The rows set since the base was built and those rows as one matrix (kept, and extended
        by the rows set for the first time since)."""
        if self._changed_matrix is None:
            self._changed_matrix, self._appended = self._stack(sorted(self.changed), None), []
        elif self._appended:
            self._changed_matrix, self._appended = self._stack(self._appended, self._changed_matrix), []
        return self._changed_matrix

    def _stack(
        self, rows: list[int], before: tuple[list[int], sp.csr_matrix] | None
    ) -> tuple[list[int], sp.csr_matrix]:
        parts = [self.changed[r] for r in rows]
        if before is not None:
            rows = before[0] + rows
            parts.insert(0, (before[1].indices, before[1].data))
        lengths = [len(c) for c, _ in parts]
        if before is not None:
            lengths[:1] = np.diff(before[1].indptr).tolist()
        indptr = np.zeros(len(rows) + 1, np.int64)
        indptr[1:] = np.cumsum(lengths)
        columns = np.concatenate([c for c, _ in parts]) if parts else np.zeros(0, np.int32)
        values = np.concatenate([v for _, v in parts]) if parts else np.zeros(0, self.dtype)
        return rows, sp.csr_matrix((values, columns, indptr), shape=(len(rows), self.width))

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
        kept = np.ones(base.shape[0], bool)
        kept[old_rows] = False
        kept_rows = np.flatnonzero(kept)
        base_lengths = np.diff(base.indptr)[kept_rows]
        # every kept entry's place: its row's new start plus its offset in the row
        offset = np.arange(base_lengths.sum()) - np.repeat(np.cumsum(base_lengths) - base_lengths, base_lengths)
        source = np.repeat(base.indptr[kept_rows], base_lengths) + offset
        target = np.repeat(indptr[kept_rows], base_lengths) + offset
        indices[target], data[target] = base.indices[source], base.data[source]
        for r in changed.tolist():
            columns, values = self.changed[r]
            indices[indptr[r] : indptr[r + 1]], data[indptr[r] : indptr[r + 1]] = columns, values
        self.load(sp.csr_matrix((data, indices, indptr), shape=(self.count, self.width)))
        return self.base


def _compact(m: sp.csr_matrix, dtype: type) -> sp.csr_matrix:
    m = m.tocsr()
    if m.dtype != dtype:
        m = m.astype(dtype)
    if len(m.indices) < 2**31:
        m.indices, m.indptr = m.indices.astype(np.int32, copy=False), m.indptr.astype(np.int32, copy=False)
    return m
