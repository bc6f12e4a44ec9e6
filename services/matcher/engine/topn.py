"""The candidate product of the batch: for each organisation of a block, its linear score against
every other one and the best few of them, in one compiled loop (numba); and the event path's
loops (the product of one organisation's left vectors with the columns they use, held as
ColumnBlocks, and with the rows changed since, and the score its candidates must reach).

Scores are left · right over the feature columns. Columns that most organisations have (the
sectors, the commonest concepts) are held as dense rows and added with vector instructions; the
rest are added from a sparse matrix, one entry at a time. A heap keeps the `want` best scores of
eligible partners while the row is scanned, so the long tail is never sorted. Nothing here
depends on which block a row is computed in: a row's result is the same whatever the chunking or
the number of processes.

The loops are compiled on first use and cached on disk: in NUMBA_CACHE_DIR if set, else beside
this file, else (where that is read-only) in the user's cache folder. `partnermatch lemmas`
compiles it once per installation."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)
DENSE_SHARE = 0.1  # a column in more than this share of the rows is added densely
MAX_DENSE = 256  # at most this many dense columns (memory: 4 bytes per column and row)
ROWS_PER_COLUMN_BLOCK = 65536  # ColumnBlocks by default: the most a row's place in its block (16 bits) allows


@functools.cache
def kernel() -> Any:
    """The compiled loop (compiled, or loaded from numba's cache, on the first call)."""
    sig = (
        "void(float32[:, ::1], float32[:, ::1], int64[::1], int64[::1], float32[::1], int64[::1], "
        "int64[::1], float32[::1], int64[::1], int64[::1], boolean[::1], int64[::1], int64, float32[::1], "
        "int64[:, ::1], float32[:, ::1], int64[::1])"
    )
    return _compiled(_best_of_rows, sig, "candidate kernel")


@functools.cache
def block_products() -> Any:
    """The event path's product with the index (compiled, or loaded from numba's cache, on the first call)."""
    sig = (
        "void(int64[:, ::1], uint16[::1], float32[::1], int64, int64[::1], float32[:, ::1], int64[::1], "
        "float32[:, ::1], float32[:, ::1])"
    )
    return _compiled(_block_products, sig, "event path product")


@functools.cache
def row_products() -> Any:
    """The event path's product with rows held apart (compiled, or loaded from numba's cache, on the first call)."""
    sigs = [
        f"void({p}[::1], int32[::1], {t}[::1], int64[::1], int64[::1], {t}[:, ::1], {t}[::1], float32[:, ::1])"
        for p in ("int32", "int64")
        for t in ("float32", "float64")
    ]
    return _compiled(_row_products, sigs, "event path product of changed rows")


@functools.cache
def kth_largest() -> Any:
    """The event path's choice of candidates (compiled, or loaded from numba's cache, on the first call)."""
    return _compiled(_kth_largest, "float32(float32[::1], int64)", "event path choice")


@functools.cache
def scores_finished() -> Any:
    """The event path's last step of a list's linear scores (compiled, or loaded from numba's cache,
    on the first call)."""
    sig = "void(float32[::1], float32[::1], float32, int32[::1], boolean[::1], int64)"
    return _compiled(_scores_finished, sig, "event path scores")


@functools.cache
def bonus_sums() -> Any:
    """The event path's sums of the both-ways bonus's products (compiled, or loaded from numba's
    cache, on the first call)."""
    sigs = [
        f"void({p}[::1], int32[::1], float32[::1], int64[::1], int32[::1], float32[::1], int64[::1], int64[::1], "
        "float64[::1], int64[::1], float64[:, ::1], int64[:, ::1])"
        for p in ("int32", "int64")
    ]
    return _compiled(_bonus_sums, sigs, "event path bonus sums")


@functools.cache
def bonus_blocks() -> Any:
    """The event path's copy of rows' needs and offers blocks, dense (compiled, or loaded from
    numba's cache, on the first call)."""
    sigs = [
        f"void({p}[::1], int32[::1], float32[::1], int64[::1], int32[::1], float32[::1], int64[::1], int64[::1], "
        "int64, int64, float32[:, :, ::1])"
        for p in ("int32", "int64")
    ]
    return _compiled(_bonus_blocks, sigs, "event path bonus blocks")


@functools.cache
def column_entries() -> Any:
    """ColumnBlocks' copy of a matrix's sparse columns (compiled, or loaded from numba's cache, on
    the first call)."""
    sigs = [
        f"void(int64[::1], int32[::1], {t}[::1], int64, int64[::1], int64[:, ::1], uint16[::1], float32[::1])"
        for t in ("float32", "float64")
    ]
    return _compiled(_column_entries, sigs, "column copy")


def event_kernels() -> tuple[Any, ...]:
    """The loops of the event path (and of the column copies its products read), compiled (or loaded)."""
    return (
        block_products(),
        row_products(),
        kth_largest(),
        scores_finished(),
        bonus_sums(),
        bonus_blocks(),
        column_entries(),
    )


class ColumnBlocks:
    """A sparse matrix held column-major for the event path's product (block_products): its rows
    in blocks (`block_rows` of them, at most ROWS_PER_COLUMN_BLOCK), rows in order within a column.
    A column's entries are together, block after block (`starts[j, b]`: where column j's entries
    of block b begin; `starts[j, b + 1]`, where they end), so the product, which adds one block of
    rows at a time, reads each column it uses as one stream across the blocks: the memory reads
    ahead what the next block needs (a third less time than a block's columns one after another
    with the index cold). A product with a few columns reads only theirs, and one block of the
    result at a time stays in the cache; an entry takes 6 bytes (its row's place in the block in
    16 bits, a float32 value). With `dense_share`, the columns that more than that share of the
    rows have are held dense instead (4 bytes a row each), added with vector instructions."""

    def __init__(
        self, m: sp.csr_matrix, block_rows: int = ROWS_PER_COLUMN_BLOCK, dense_share: float | None = None
    ) -> None:
        n, width = m.shape
        self.block_rows = min(block_rows, ROWS_PER_COLUMN_BLOCK)
        blocks = range(0, n, self.block_rows)
        self.shape = (n, width)
        df = np.bincount(m.indices, minlength=width)
        dense_columns = np.flatnonzero(df > dense_share * n) if dense_share is not None else np.zeros(0, np.int64)
        self.dense_of = np.full(width, -1, np.int64)  # per column, its row in `dense` (-1: held sparse)
        self.dense_of[dense_columns] = np.arange(len(dense_columns))
        self.dense = np.ascontiguousarray(m[:, dense_columns].toarray().T, np.float32)  # one row per dense column
        # each block's entries per column (none for a dense one), then where each column's begin
        lengths = np.zeros((width, len(blocks)), np.int64)
        for b, first in enumerate(blocks):
            lo, hi = m.indptr[first], m.indptr[min(first + self.block_rows, n)]
            lengths[:, b] = np.bincount(m.indices[lo:hi], minlength=width)
        lengths[dense_columns] = 0
        self.starts = np.zeros((width, len(blocks) + 1), np.int64)
        np.cumsum(lengths, axis=1, out=self.starts[:, 1:])
        self.starts[1:] += np.cumsum(self.starts[:-1, -1])[:, None]
        kept = int(self.starts[-1, -1]) if width else 0
        self.offsets = np.empty(kept, np.uint16)
        self.data = np.empty(kept, np.float32)
        # each sparse column's entries of each block, in the order of the rows: one pass over the
        # rows (each block's column-major copy and the places of its entries took half a second
        # for the word weights of 100,000 rows, in the event whose merge made them)
        column_entries()(
            np.ascontiguousarray(m.indptr, np.int64),
            np.ascontiguousarray(m.indices, np.int32),
            np.ascontiguousarray(m.data, np.float64 if m.data.dtype == np.float64 else np.float32),
            self.block_rows,
            self.dense_of,
            self.starts[:, :-1].copy(),
            self.offsets,
            self.data,
        )

    def add_products(self, columns: np.ndarray, lefts: np.ndarray, out: np.ndarray) -> None:
        """out[w] += the matrix's columns `columns` times lefts[:, w] (lefts: one row per column
        named; out: one row per column of lefts, one entry per row of the matrix)."""
        block_products()(
            self.starts, self.offsets, self.data, self.block_rows, self.dense_of, self.dense, columns, lefts, out
        )


def _compiled(function: Any, sig: str | list[str], what: str) -> Any:
    import numba

    started = time.monotonic()
    try:
        compiled = numba.njit(sig, cache=True, nogil=True)(function)
    except (RuntimeError, OSError) as exc:  # no usable cache folder: compile for this process only
        logger.warning(f"numba cannot cache the {what}; compiling it for this run", extra={"error": str(exc)})
        compiled = numba.njit(sig, nogil=True)(function)
    seconds = round(time.monotonic() - started, 2)
    if seconds > 1.0:  # compiled, not read from the cache: say why this run paused
        logger.info(
            f"{what} compiled (once; `partnermatch lemmas` does it at installation)", extra={"seconds": seconds}
        )
    else:
        logger.debug(f"{what} ready", extra={"seconds": seconds})
    return compiled


def _block_products(starts, offsets, data, block_rows, dense_of, dense, columns, lefts, out):
    """out[w, i] += m[i, columns[c]] * lefts[c, w] for every c and w, for a matrix m held as
    ColumnBlocks: only the columns named are read, block of rows by block, in the order named, a
    sparse one adding its entries in row order, a dense one every row's (a row without the column
    adds 0, which changes no sum). So every row adds its columns in the order named, as scipy's
    product of those columns adds them: the sums are the same, bit for bit. Each block's part of
    `out` stays in the cache while its columns are added; it is read through one-dimensional
    views of the block (a third less time than indexing `out` by row and place)."""
    width, n = lefts.shape[1], out.shape[1]
    for b in range(starts.shape[1] - 1):
        first = b * block_rows
        last = min(first + block_rows, n)
        part0 = out[0, first:last]
        part1 = out[min(1, width - 1), first:last]  # the second product's, when there are two
        for c in range(columns.shape[0]):
            j = columns[c]
            d = dense_of[j]
            lo, hi = starts[j, b], starts[j, b + 1]
            if d >= 0:
                column = dense[d, first:last]
                for w in range(width):
                    part, weight = out[w, first:last], lefts[c, w]
                    for i in range(last - first):
                        part[i] += column[i] * weight
            elif width == 1:
                l0 = lefts[c, 0]
                for q in range(lo, hi):
                    part0[offsets[q]] += data[q] * l0
            elif width == 2:  # the upsert's two products: both left vectors read once
                l0, l1 = lefts[c, 0], lefts[c, 1]
                for q in range(lo, hi):
                    i = offsets[q]
                    v = data[q]
                    part0[i] += v * l0
                    part1[i] += v * l1
            else:
                for q in range(lo, hi):
                    i = first + offsets[q]
                    v = data[q]
                    for w in range(width):
                        out[w, i] += v * lefts[c, w]


def _column_entries(indptr, indices, data, block_rows, dense_of, next_at, offsets, out):
    """For each entry of the CSR matrix (indptr, indices, data) in a column not held dense
    (dense_of -1), in the order of the rows: its row's place in its block into offsets, its value
    (as float32) into out, at next_at[column, block], which then moves on by one."""
    for i in range(indptr.shape[0] - 1):
        b = i // block_rows
        place = i - b * block_rows
        for q in range(indptr[i], indptr[i + 1]):
            j = indices[q]
            if dense_of[j] < 0:
                at = next_at[j, b]
                offsets[at] = place
                out[at] = np.float32(data[q])
                next_at[j, b] = at + 1


def _scores_finished(scores, terms, weight, cluster, active, r):
    """scores[i] += weight * terms[i] (each in float32, as numpy adds a float32 product of a
    float32 array and its weight), or -inf where row i may not be in row r's list nor r in its:
    r itself, its own cluster, inactive rows. One pass where numpy made four."""
    own = cluster[r]
    for i in range(scores.shape[0]):
        if cluster[i] == own or not active[i]:
            scores[i] = -np.inf
        else:
            scores[i] += weight * terms[i]
    scores[r] = -np.inf


def _bonus_sums(indptr, indices, data, c_indptr, c_indices, c_data, rows, slots, mate, side, sums, met):
    """For each row t of `rows`, read from the CSR matrix (indptr, indices, data), or where slots[t]
    is not -1 from that row of the changed rows' (c_indptr, c_indices, c_data): sums[t, side[j]] +=
    mate[j] * value, in float64, entry by entry in the row's order (as numpy's bincount with these
    weights adds them), and met[t, side[j]] += 1 where mate[j] is not 0."""
    for t in range(rows.shape[0]):
        s = slots[t]
        if s < 0:
            r = rows[t]
            for q in range(indptr[r], indptr[r + 1]):
                j = indices[q]
                k = side[j]
                sums[t, k] += mate[j] * np.float64(data[q])
                if mate[j] != 0.0:
                    met[t, k] += 1
        else:
            for q in range(c_indptr[s], c_indptr[s + 1]):
                j = c_indices[q]
                k = side[j]
                sums[t, k] += mate[j] * np.float64(c_data[q])
                if mate[j] != 0.0:
                    met[t, k] += 1


def _bonus_blocks(indptr, indices, data, c_indptr, c_indices, c_data, rows, slots, seeks, offers, out):
    """out[t, 0] = row rows[t]'s values in the columns from `seeks` on, out[t, 1] those from
    `offers` on (out.shape[2] columns each; out zero), the row read as in _bonus_sums."""
    width = out.shape[2]
    for t in range(rows.shape[0]):
        s = slots[t]
        if s < 0:
            lo, hi = indptr[rows[t]], indptr[rows[t] + 1]
        else:
            lo, hi = c_indptr[s], c_indptr[s + 1]
        for q in range(lo, hi):
            j = indices[q] if s < 0 else c_indices[q]
            v = data[q] if s < 0 else c_data[q]
            if seeks <= j < seeks + width:
                out[t, 0, j - seeks] = v
            elif offers <= j < offers + width:
                out[t, 1, j - offers] = v


def _row_products(indptr, indices, data, slots, rows, lefts, scratch, out):
    """out[w, rows[t]] = (row slots[t] of the CSR matrix (indptr, indices, data)) · lefts[:, w]:
    each sum from zero in the row's order, in the matrix's type (`scratch`, one per column of
    `lefts`), as scipy's product of a CSR matrix with a dense one adds them. With one or two
    columns the sums are kept in registers (the same additions in the same order): a sum kept in
    `scratch` waited for its own store and load at every entry (the word weights of 1,100 changed
    rows, 74,000 entries: 0.26 ms, in registers 0.08 ms)."""
    width = lefts.shape[1]
    if width == 0:
        return
    scratch[:] = 0.0
    zero = scratch[0]  # 0 in the matrix's type: the sums below keep it
    for t in range(slots.shape[0]):
        s = slots[t]
        if width == 1:  # one product (the term scores): its sum in a register, not in `scratch`
            s0 = zero
            for q in range(indptr[s], indptr[s + 1]):
                s0 += data[q] * lefts[indices[q], 0]
            out[0, rows[t]] = s0
        elif width == 2:  # the upsert's two products: both sums in registers
            s0, s1 = zero, zero
            for q in range(indptr[s], indptr[s + 1]):
                v = data[q]
                j = indices[q]
                s0 += v * lefts[j, 0]
                s1 += v * lefts[j, 1]
            out[0, rows[t]] = s0
            out[1, rows[t]] = s1
        else:
            for w in range(width):
                scratch[w] = 0.0
            for q in range(indptr[s], indptr[s + 1]):
                v = data[q]
                j = indices[q]
                for w in range(width):
                    scratch[w] += v * lefts[j, w]
            for w in range(width):
                out[w, rows[t]] = scratch[w]


def _kth_largest(values, k):
    """The k-th largest finite value (equal values counted apart); -inf where fewer are finite.
    One pass with a min-heap of the k largest so far: once it holds k, most values are below its
    root, which stays in a register, and are passed over after one comparison."""
    heap = np.empty(k, np.float32)
    size = 0
    t = 0
    n = values.shape[0]
    while size < k and t < n:  # the first k finite values: push, sifting up while smaller than the parent
        v = values[t]
        t += 1
        if v == np.inf or v == -np.inf or v != v:
            continue
        j = size
        size += 1
        while j > 0:
            up = (j - 1) >> 1
            if heap[up] <= v:
                break
            heap[j] = heap[up]
            j = up
        heap[j] = v
    if size < k:
        return np.float32(-np.inf)
    root = heap[0]
    for i in range(t, n):
        v = values[i]
        if not v > root or v == np.inf:  # no larger than the root (or -inf, or NaN), or not finite
            continue
        j = 0  # replace the root: sift down while a child is smaller
        while True:
            lo = 2 * j + 1
            if lo >= size:
                break
            m = lo
            if lo + 1 < size and heap[lo + 1] < heap[lo]:
                m = lo + 1
            if v <= heap[m]:
                break
            heap[j] = heap[m]
            j = m
        heap[j] = v
        root = heap[0]
    return root


def _best_of_rows(
    left_dense,
    dense_t,
    l_ptr,
    l_idx,
    l_val,
    r_ptr,
    r_idx,
    r_val,
    rows,
    cluster,
    active,
    rank,
    want,
    acc,
    out_idx,
    out_val,
    counts,
):
    """For each left row i (organisation rows[i]): acc = its scores against every organisation;
    out_idx[i, :counts[i]] and out_val[i, :counts[i]] = the `want` best with a score above 0, best
    first, leaving out itself, its own cluster and inactive rows. Of equal scores, the lower
    `rank` (the order of the ids) comes first, so the result does not depend on the input order."""
    n = acc.shape[0]
    heap_v = np.empty(want, np.float32)  # a min-heap of the best so far: its root is the worst kept
    heap_i = np.empty(want, np.int64)
    heap_r = np.empty(want, np.int64)
    for i in range(left_dense.shape[0]):
        acc[:] = 0.0
        for d in range(left_dense.shape[1]):
            w = left_dense[i, d]
            if w != 0.0:
                col = dense_t[d]
                for c in range(n):
                    acc[c] += w * col[c]
        for p in range(l_ptr[i], l_ptr[i + 1]):
            w = l_val[p]
            f = l_idx[p]
            for q in range(r_ptr[f], r_ptr[f + 1]):
                acc[r_idx[q]] += w * r_val[q]
        me, own = rows[i], cluster[rows[i]]
        size = 0
        for c in range(n):
            v = acc[c]
            if v <= 0.0 or c == me or cluster[c] == own or not active[c]:
                continue
            r = rank[c]
            if size == want and (v < heap_v[0] or (v == heap_v[0] and r > heap_r[0])):
                continue  # no better than the worst kept
            if size < want:  # push: sift up while it is worse than its parent
                j = size
                size += 1
                while j > 0:
                    up = (j - 1) >> 1
                    if not (v < heap_v[up] or (v == heap_v[up] and r > heap_r[up])):
                        break
                    heap_v[j], heap_i[j], heap_r[j] = heap_v[up], heap_i[up], heap_r[up]
                    j = up
            else:  # replace the worst kept: sift down while a child is worse
                j = 0
                while True:
                    lo = 2 * j + 1
                    if lo >= size:
                        break
                    m = lo
                    if lo + 1 < size and (
                        heap_v[lo + 1] < heap_v[lo] or (heap_v[lo + 1] == heap_v[lo] and heap_r[lo + 1] > heap_r[lo])
                    ):
                        m = lo + 1
                    if v < heap_v[m] or (v == heap_v[m] and r > heap_r[m]):
                        break
                    heap_v[j], heap_i[j], heap_r[j] = heap_v[m], heap_i[m], heap_r[m]
                    j = m
            heap_v[j], heap_i[j], heap_r[j] = v, c, r
        by_rank = np.argsort(heap_r[:size])  # best first, equal scores by rank: a stable sort of those
        order = by_rank[np.argsort(-heap_v[:size][by_rank], kind="mergesort")]
        for t in range(size):
            out_idx[i, t] = heap_i[order[t]]
            out_val[i, t] = heap_v[order[t]]
        counts[i] = size


class CandidateProduct:
    """left · right for blocks of organisations against all of them (right: one row per
    organisation, its feature columns), keeping each row's `want` best eligible partners; equal
    scores in the order of `rank` (by default the rows')."""

    def __init__(
        self, right: sp.csr_matrix, cluster: np.ndarray, active: np.ndarray, want: int, rank: np.ndarray | None = None
    ) -> None:
        if want < 1:
            raise ValueError(f"want must be at least 1, got {want}")
        n, features = right.shape
        df = np.bincount(right.indices, minlength=features)
        by_df = np.argsort(-df, kind="stable")[:MAX_DENSE]
        self.dense_cols = np.sort(by_df[df[by_df] > DENSE_SHARE * n])
        is_dense = np.zeros(features, bool)
        is_dense[self.dense_cols] = True
        self.sparse_cols = np.flatnonzero(~is_dense)
        self.dense_t = np.ascontiguousarray(right[:, self.dense_cols].toarray().T, np.float32)
        self.sparse_t = _int64(right[:, self.sparse_cols].T.tocsr().astype(np.float32))
        # copies: the kernel's signature takes writable arrays, and they must not change under it
        self.cluster = np.array(cluster[:n], np.int64)
        self.active = np.array(active[:n], np.bool_)
        self.rank = np.arange(n, dtype=np.int64) if rank is None else np.array(rank[:n], np.int64)
        self.want = int(want)

    def best(self, rows: np.ndarray, left: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the organisations `rows` with left vectors `left` (one row each): (i, candidate,
        score) of their best partners, where rows[i] is the owner: by i, best first."""
        rows = np.array(rows, np.int64)
        left = left.tocsr()
        dense = np.ascontiguousarray(left[:, self.dense_cols].toarray(), np.float32)
        sparse = _int64(left[:, self.sparse_cols].tocsr().astype(np.float32))
        out_idx = np.zeros((len(rows), self.want), np.int64)
        out_val = np.zeros((len(rows), self.want), np.float32)
        counts = np.zeros(len(rows), np.int64)
        acc = np.zeros(len(self.cluster), np.float32)  # per call: calls from two threads do not share it
        kernel()(
            dense,
            self.dense_t,
            sparse.indptr,
            sparse.indices,
            sparse.data,
            self.sparse_t.indptr,
            self.sparse_t.indices,
            self.sparse_t.data,
            rows,
            self.cluster,
            self.active,
            self.rank,
            self.want,
            acc,
            out_idx,
            out_val,
            counts,
        )
        kept = np.arange(self.want) < counts[:, None]
        return np.repeat(np.arange(len(rows)), counts), out_idx[kept], out_val[kept]


def _int64(m: sp.csr_matrix) -> sp.csr_matrix:
    m.indptr = np.ascontiguousarray(m.indptr, np.int64)
    m.indices = np.ascontiguousarray(m.indices, np.int64)
    m.data = np.ascontiguousarray(m.data, np.float32)
    return m
