"""The compiled candidate product against a plain numpy computation of the same thing."""

import numpy as np
import pytest
import scipy.sparse as sp

from services.matcher.engine import topn


def _expected(
    left: np.ndarray,
    right: np.ndarray,
    rows: np.ndarray,
    cluster: np.ndarray,
    active: np.ndarray,
    rank: np.ndarray,
    want: int,
) -> list[list[tuple[int, float]]]:
    out = []
    scores = left.astype(np.float64) @ right.T.astype(np.float64)
    for i, r in enumerate(rows):
        ok = [
            c for c in range(right.shape[0]) if c != r and cluster[c] != cluster[r] and active[c] and scores[i, c] > 0
        ]
        ok.sort(key=lambda c: (-scores[i, c], rank[c]))  # equal scores: the lower rank first
        out.append([(c, scores[i, c]) for c in ok[:want]])
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("want", [1, 4, 60])
def test_best_candidates_equal_a_plain_computation(seed, want, monkeypatch):
    rng = np.random.default_rng(seed)
    n, features = 300, 40
    # small integer weights: many exactly equal scores, so ties at the cut are tested too
    right = (rng.random((n, features)) < 0.15) * rng.integers(1, 3, (n, features))
    right[:, :3] = (rng.random((n, 3)) < 0.6) * rng.integers(1, 3, (n, 3))  # columns most rows have
    right[::17] = 0  # rows with nothing: never a candidate
    right = right.astype(np.float32)
    cluster = rng.integers(0, 12, n)
    active = rng.random(n) > 0.1
    rows = np.flatnonzero(active)[::3]
    rows.flags.writeable = False  # as from a read-only file: accepted
    rank = rng.permutation(n)  # the order of the ids, unrelated to the rows'
    left = right[rows] * np.float32(0.5)
    monkeypatch.setattr(topn, "DENSE_SHARE", 0.3)  # some columns dense, most sparse
    product = topn.CandidateProduct(sp.csr_matrix(right), cluster, active, want, rank=rank)
    assert 0 < len(product.dense_cols) < features
    slot, cand, score = product.best(rows, sp.csr_matrix(left))
    got = [
        [(int(c), float(s)) for c, s in zip(cand[slot == i], score[slot == i], strict=True)] for i in range(len(rows))
    ]
    expected = _expected(left, right, rows, cluster, active, rank, want)
    assert [[c for c, _ in g] for g in got] == [[c for c, _ in e] for e in expected]
    assert [s for g in got for _, s in g] == pytest.approx([s for e in expected for _, s in e], rel=1e-6)
    assert any(len(e) < want for e in expected) or want == 1  # rows with fewer partners than asked


def test_all_dense_and_all_sparse_columns_give_the_same_candidates(monkeypatch):
    rng = np.random.default_rng(5)
    right = ((rng.random((200, 30)) < 0.3) * rng.random((200, 30))).astype(np.float32)
    cluster, active, rows = np.arange(200) % 7, np.ones(200, bool), np.arange(0, 200, 5)
    results = []
    for share in (-1.0, 2.0):  # every column dense, then none
        monkeypatch.setattr(topn, "DENSE_SHARE", share)
        product = topn.CandidateProduct(sp.csr_matrix(right), cluster, active, 10)
        results.append(product.best(rows, sp.csr_matrix(right[rows])))
    assert np.array_equal(results[0][0], results[1][0]) and np.array_equal(results[0][1], results[1][1])
    assert np.allclose(results[0][2], results[1][2], rtol=1e-6)


def test_asking_for_no_candidates_is_an_error():
    with pytest.raises(ValueError, match="at least 1"):
        topn.CandidateProduct(sp.csr_matrix(np.ones((3, 2), np.float32)), np.arange(3), np.ones(3, bool), 0)
