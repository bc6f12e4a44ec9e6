"""The event path's products, held column-major in blocks of rows (the commonest columns dense) with
the changed rows apart, give the numbers scipy gives for the same rows, bit for bit; and an upsert that scores the new
organisation only in the cached lists (each read from its row) changes the lists as one that
scores it in every row does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from services.matcher.engine import EngineSettings, MatchEngine, topk, topn
from services.matcher.engine.rows import SparseRows

DEVSET = Path(__file__).resolve().parents[3] / "tests" / "data" / "devset"


def _profiles():
    from services.matcher.batch import read_organisations

    return [p for path in sorted(DEVSET.glob("*.jsonl")) for p in read_organisations(path.open(encoding="utf-8"))]


def _rows(rows: SparseRows, dtype: type) -> sp.csr_matrix:
    """Every row as it is now (the base's, or its latest change), one CSR matrix."""
    got = [rows.get(r) for r in range(len(rows))]
    indptr = np.cumsum([0, *(len(c) for c, _ in got)])
    return sp.csr_matrix(
        (np.concatenate([v for _, v in got]).astype(dtype), np.concatenate([c for c, _ in got]), indptr),
        shape=(len(rows), rows.width),
    )


def _scenario(engine: MatchEngine, profiles: list, check_products: bool) -> list:
    """Fit most of the dev set, cache some lists, then upsert the rest, replace a few and remove
    one: every update, list, score and reason seen."""
    engine.fit(profiles[:250])
    seen: list = []
    for p in profiles[:40]:
        engine.top(p.id, 5)
    changes = [*profiles[250:], *profiles[5:12], *profiles[260:264]]  # new ones, then replacements
    rng = np.random.default_rng(1)
    for p in changes:
        update = engine.upsert(p)
        seen.append((p.id, sorted(update.entered), sorted(update.left)))
        touched = sorted({update.org_id, *update.entered, *update.left})
        seen.extend([(s.id, s.score, s.reasons) for s in engine.top(who, 5)] for who in touched)
        if check_products:
            index = engine.index
            r = index.row[p.id]
            lefts = np.stack([index.left(index.right[r]), rng.random(index.features.dim).astype(np.float32)], axis=1)
            assert np.array_equal(index._products(lefts), (_rows(index.right, np.float32) @ lefts).T)
            assert len(index._by_column().dense)  # the sectors most rows have, held dense
            # the word likeness: the merged rows in float32 adding r's words in r's order (scipy's
            # product of those columns), the changed ones in float64 in their own order, as before
            columns, weights = index.words.get(r)
            by_column = _rows(index.words, np.float32).tocsc()[:, columns]
            expected = by_column @ weights.astype(np.float32)
            mine = np.zeros(index.words.width)
            mine[columns] = weights
            changed = sorted(index.words.changed)
            expected[changed] = _rows(index.words, np.float64)[changed] @ mine
            assert np.array_equal(index._term_scores(r), expected)
    update = engine.remove(profiles[3].id)
    seen.append((sorted(update.entered), sorted(update.left)))
    seen.extend([(s.id, s.score, s.reasons) for s in engine.top(p.id, 5)] for p in profiles[:40] if p != profiles[3])
    return seen


def test_lists_read_apart_and_products_in_small_blocks_change_nothing(monkeypatch):
    profiles = _profiles()
    monkeypatch.setattr(topn, "ROWS_PER_COLUMN_BLOCK", 64)  # several blocks of rows
    monkeypatch.setattr(topk, "LISTS_READ_APART", 1.0)  # the cached lists always read row by row
    apart = _scenario(MatchEngine(), profiles, check_products=True)
    monkeypatch.undo()
    monkeypatch.setattr(topk, "LISTS_READ_APART", -1.0)  # every row's list at once, one block
    every_row = _scenario(MatchEngine(), profiles, check_products=False)
    assert apart == every_row
    assert any(entered for entered in (s[1] for s in apart if isinstance(s, tuple) and len(s) == 3))


def test_candidates_too_far_behind_for_their_bonus_to_matter_are_left_out_of_the_ranking(monkeypatch):
    # _rank makes the both-ways bonus only of the candidates that could reach the k best with the
    # largest bonus there is, and have something in common, and of those only of the ones whose
    # score's bounds (the bonus estimated) may reach the k-th; with a bonus large enough to reorder
    # them, every list is the one ranking all candidates gives.
    engine = MatchEngine(settings=EngineSettings(w_both_ways=0.8))
    engine.fit(_profiles())
    asked = []
    bonuses = engine.index.both_ways_bonuses
    monkeypatch.setattr(engine.index, "both_ways_bonuses", lambda r, rows: asked.append(len(rows)) or bonuses(r, rows))
    cache = engine.top_lists
    pruned = {(p, k): cache.best_rows(engine.row[p], k) for p in engine.ids for k in (1, 10)}
    monkeypatch.setattr(topk.TopKCache, "_may_rank", lambda self, base, k: np.ones(len(base), bool))  # all ranked
    monkeypatch.setattr(topk.TopKCache, "_near_enough", lambda self, r, rows, base, k: np.ones(len(base), bool))
    whole = {(p, k): cache.best_rows(engine.row[p], k) for p in engine.ids for k in (1, 10)}
    assert pruned == whole
    assert sum(asked[: len(pruned)]) < sum(asked[len(pruned) :])  # fewer bonuses made


def test_the_bonus_estimates_hold_the_bonus_within_their_error():
    engine = MatchEngine(settings=EngineSettings(w_both_ways=0.8))
    profiles = _profiles()
    engine.fit(profiles[:-5])
    for p in profiles[-5:]:  # rows changed since the merge are read too
        engine.upsert(p)
    index, rows = engine.index, np.arange(len(engine.ids))
    met = 0
    for r in range(len(engine.ids)):
        exact = np.array(index.both_ways_bonuses(r, rows.tolist()))
        estimate, error = index.both_ways_estimates(r, rows)
        assert np.all(np.abs(exact - estimate) <= error)
        assert np.all(error <= 1e-4 * np.maximum(exact, 1.0))
        met += int(np.count_nonzero(exact))
    assert met > len(engine.ids)  # bonuses were there to estimate


def test_the_bonuses_and_their_estimates_read_from_compiled_loops_are_those_of_each_pair_alone():
    # both_ways_bonuses equals both_ways_bonus pair by pair, and the estimates are the float64 sums
    # of the products one after another in the row's order (as numpy's bincount added them), bit
    # for bit, for rows in the base and changed since
    engine = MatchEngine(settings=EngineSettings(w_both_ways=0.8))
    profiles = _profiles()
    engine.fit(profiles[:-5])
    for p in [*profiles[-5:], *profiles[:3]]:  # new rows and replaced ones
        engine.upsert(p)
    index, n = engine.index, len(engine.ids)
    offers, seeks = index.features.block["offers"], index.features.block["seeks"]
    dense = np.stack([index.right[o] for o in range(n)]).astype(np.float64)
    rows = np.random.default_rng(3).permutation(n)  # in no order, as candidates come
    for r in range(0, n, 7):
        assert index.both_ways_bonuses(r, rows.tolist()) == [index.both_ways_bonus(r, o) for o in rows.tolist()]
        a = dense[r]
        sums = np.array(
            [[_in_order(dense[o, seeks] * a[offers]), _in_order(dense[o, offers] * a[seeks])] for o in rows]
        )
        estimate, error = index.both_ways_estimates(r, rows)
        assert np.array_equal(estimate, 0.8 * np.minimum(sums[:, 0], sums[:, 1]))
        assert np.array_equal(error, 0.8 * 1e-4 * np.maximum(sums[:, 0], sums[:, 1]))
    assert index.both_ways_bonuses(0, []) == []


def _in_order(values: np.ndarray) -> float:
    total = 0.0
    for v in values.tolist():
        total += v
    return total


def test_prepare_events_makes_the_column_copies_before_the_first_event_and_changes_no_list():
    profiles = _profiles()
    prepared, lazy = MatchEngine(), MatchEngine()
    prepared.fit(profiles[:250])
    lazy.fit(profiles[:250])
    assert prepared.index._right_by_column is None  # a fit leaves them to the first event
    prepared.prepare_events()
    assert prepared.index._right_by_column is not None and prepared.index._words_by_term is not None
    for p in profiles[250:270]:
        assert sorted(prepared.upsert(p).entered) == sorted(lazy.upsert(p).entered)
        assert [(s.id, s.score) for s in prepared.top(p.id, 5)] == [(s.id, s.score) for s in lazy.top(p.id, 5)]


def test_prepare_events_on_an_empty_index():
    engine = MatchEngine()
    engine.fit([])
    engine.prepare_events()
