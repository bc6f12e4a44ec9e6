"""The event path's compiled products against scipy's, bit for bit: a sum in another order, or
in another type, would move a score in its last bits and could reorder ties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from services.matcher.engine.topn import ColumnBlocks, row_products


def _random_rows(rng: np.random.Generator, count: int, width: int, dtype: type) -> sp.csr_matrix:
    """Rows of 0 to 80 entries each, their columns in no order (a row adds in the order given)."""
    indptr, indices, data = [0], [], []
    for _ in range(count):
        columns = rng.permutation(width)[: int(rng.integers(0, 81))]
        indices.append(columns)
        data.append(rng.random(len(columns)) * 10.0 ** rng.integers(-3, 3, len(columns)))
        indptr.append(indptr[-1] + len(columns))
    return sp.csr_matrix(
        (np.concatenate(data).astype(dtype), np.concatenate(indices).astype(np.int32), np.array(indptr)),
        shape=(count, width),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 2, 3])
@pytest.mark.parametrize("pointer", [np.int32, np.int64])
def test_products_of_chosen_rows_add_as_scipy_s_product_does(dtype, width, pointer):
    rng = np.random.default_rng(width * 10 + (dtype == np.float64))
    m = _random_rows(rng, 300, 200, dtype)
    lefts = (rng.random((200, width)) * 10.0 ** rng.integers(-3, 3, (200, 1))).astype(dtype)
    lefts[rng.random(200) < 0.5] = 0  # as a left vector: most columns unused
    expected = (m @ lefts).T  # one row per column of lefts, each sum from zero in the row's order
    assert expected.dtype == dtype
    slots = np.sort(rng.choice(300, 120, replace=False)).astype(np.int64)
    places = rng.permutation(120).astype(np.int64)  # where each row's sums go in `out`
    out = np.full((width, 120), np.nan, np.float32)
    scratch = np.zeros(width, dtype)
    indptr, lefts = m.indptr.astype(pointer), np.ascontiguousarray(lefts)
    row_products()(indptr, m.indices, m.data, slots, places, lefts, scratch, out)
    assert np.array_equal(out[:, places], expected[:, slots].astype(np.float32))


@pytest.mark.parametrize("dense_share", [None, 0.3])
@pytest.mark.parametrize("width", [1, 2])
def test_column_products_add_each_named_column_in_turn_as_numpy_does(dense_share, width):
    # the upsert's two products read each column once for both, dense columns and sparse ones; a
    # column only one of them uses (the other's weight 0) must leave the other's sums as they are
    rng = np.random.default_rng(7 + width)
    full = _random_rows(rng, 700, 60, np.float32).toarray()
    full[:, 5] = rng.random(700).astype(np.float32)  # a column every row has: dense with a share
    m = sp.csr_matrix(full)
    columns = rng.permutation(60)[:40].astype(np.int64)  # named in no order
    lefts = rng.random((40, width)).astype(np.float32)
    if width == 2:
        lefts[:12, 0] = 0  # used by the second product only
        lefts[12:24, 1] = 0  # by the first only
    expected = np.zeros((width, 700), np.float32)
    for c, j in enumerate(columns.tolist()):  # each column in turn, in float32, as the rows add them
        for w in range(width):
            expected[w] += full[:, j] * lefts[c, w]
    blocks = ColumnBlocks(m, 256, dense_share)
    assert (blocks.dense_of >= 0).any() == (dense_share is not None)
    out = np.zeros((width, 700), np.float32)
    blocks.add_products(columns, lefts, out)
    assert np.array_equal(out, expected)
