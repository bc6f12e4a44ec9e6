"""Sparse rows that change one at a time (the index's vectors and word weights) against a dense
matrix changed the same way."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from services.matcher.engine.rows import SparseRows


def test_rows_set_replaced_merged_and_multiplied_as_a_dense_matrix_would_be():
    rng = np.random.default_rng(3)
    dense = np.where(rng.random((40, 12)) < 0.3, rng.random((40, 12)), 0).astype(np.float32)
    rows = SparseRows(12, np.float32)
    rows.load(sp.csr_matrix(dense[:30]))
    for step in range(60):
        r = int(rng.integers(0, len(rows) + 1)) if len(rows) < 40 else int(rng.integers(0, 40))
        vector = np.where(rng.random(12) < 0.3, rng.random(12), 0).astype(np.float32)
        dense[r] = vector
        rows.set_dense(r, vector)
        x = rng.random(12).astype(np.float32)
        changed, matrix = rows.changed_matrix()  # kept between steps, extended or made again
        assert np.allclose(matrix @ x, dense[changed] @ x)
        assert np.array_equal(rows[r], vector) and rows.shape == (len(rows), 12)
        if step % 25 == 24:
            assert np.array_equal(rows.merge().toarray(), dense[: len(rows)])
            assert not rows.changed
    assert np.array_equal(rows[: len(rows)], dense[: len(rows)])
    assert np.array_equal(rows[[3, 1]], dense[[3, 1]])
    rows.widen(15)
    assert rows.merge().shape == (len(rows), 15)
