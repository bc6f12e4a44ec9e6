"""The index's memory: sparse rows that change one at a time (its vectors and word weights)
against a dense matrix changed the same way, and the words weighed in row blocks."""

from __future__ import annotations

from dataclasses import replace

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
        out = np.zeros((1, len(rows)), np.float32)
        rows.apart.products(x[:, None], out)  # the rows set since the base, each from its latest copy
        changed = sorted(rows.changed)
        assert np.array_equal(out[0, changed], sp.csr_matrix(dense[changed]) @ x)  # bit for bit scipy's
        assert np.array_equal(rows[r], vector) and rows.shape == (len(rows), 12)
        if step % 25 == 24:
            assert np.array_equal(rows.merge().toarray(), dense[: len(rows)])
            assert not rows.changed
    assert np.array_equal(rows[: len(rows)], dense[: len(rows)])
    assert np.array_equal(rows[[3, 1]], dense[[3, 1]])
    for step in range(400):  # the same few rows set again and again: their earlier copies dropped
        r = [2, 7, len(rows) - 1][step % 3]
        dense[r] = np.where(rng.random(12) < 0.5, rng.random(12), 0).astype(np.float32)
        rows.set_dense(r, dense[r])
        x = rng.random(12).astype(np.float32)
        out = np.zeros((1, len(rows)), np.float32)
        rows.apart.products(x[:, None], out)
        changed = sorted(rows.changed)
        assert np.array_equal(out[0, changed], sp.csr_matrix(dense[changed]) @ x)
    assert len(rows.apart.indptr) < 200  # room for fewer copies than the 400 steps made
    rows.widen(15)
    assert rows.merge().shape == (len(rows), 15)


def test_a_merge_keeps_each_row_s_entries_in_the_order_they_were_given():
    # a product over a row adds its entries in this order: the base's rows kept, the rows set
    # since (first, last, next to each other, appended) and the rows never set all keep it
    rng = np.random.default_rng(5)
    width, given = 9, {}
    rows = SparseRows(width, np.float64)
    base_rows = []
    for r in range(25):
        columns = rng.permutation(width)[: int(rng.integers(0, width + 1))]  # in no order
        given[r] = (columns, rng.random(len(columns)))
        base_rows.append(given[r])
    indptr = np.cumsum([0, *(len(c) for c, _ in base_rows)])
    rows.load(
        sp.csr_matrix(
            (np.concatenate([v for _, v in base_rows]), np.concatenate([c for c, _ in base_rows]), indptr),
            shape=(25, width),
        )
    )
    for r in (0, 1, 7, 8, 24, 25, 26, 12):
        columns = rng.permutation(width)[: int(rng.integers(0, width + 1))]
        given[r] = (columns, rng.random(len(columns)))
        rows.set(r, *given[r])
    merged = rows.merge()
    assert merged.shape == (27, width) and not rows.changed
    for r, (columns, values) in given.items():
        lo, hi = merged.indptr[r], merged.indptr[r + 1]
        assert merged.indices[lo:hi].tolist() == columns.tolist() and merged.data[lo:hi].tolist() == values.tolist()


def test_words_selected_in_row_blocks_weigh_as_when_selected_at_once(monkeypatch, mini_lexicon):
    # learn_weights picks the counted words out of every word met a block of rows at a time (a
    # million rows' copies at once would take gigabytes): the weights must not depend on it.
    from services.matcher.engine import EngineSettings, MatchEngine, features
    from tests.unit.matcher.test_engine import _orgs

    orgs = [replace(p, id=f"{p.id}-{i}", cluster=f"{p.cluster}-{i % 3}") for i, p in enumerate(_orgs() * 3)]
    settings = EngineSettings(max_term_df=0.9)  # the copies share every word
    at_once = MatchEngine(mini_lexicon, settings)
    at_once.fit(orgs)
    monkeypatch.setattr(features, "ROWS_PER_COUNT_BLOCK", 4)
    in_blocks = MatchEngine(mini_lexicon, settings)
    in_blocks.fit(orgs)
    assert at_once.term_idf and in_blocks.term_idf == at_once.term_idf
    assert (in_blocks.index.words.base != at_once.index.words.base).nnz == 0
    first = orgs[0].id
    assert [(s.id, s.score) for s in in_blocks.top(first, 5)] == [(s.id, s.score) for s in at_once.top(first, 5)]
