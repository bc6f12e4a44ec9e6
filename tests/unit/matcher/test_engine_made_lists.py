"""The lists made with their reasons that the top-K cache keeps, packed beyond the latest ones:
a list read back, or made again after an upsert entered or left it, from what was kept is the
list its reasons would be found for anew, while rows change under it."""

from __future__ import annotations

import gc

import pytest

from services.matcher.engine import topk
from tests.unit.matcher.test_engine_gc import _profiles, _tracked_inside


@pytest.mark.parametrize("packed_kept", [0, 7, 10_000])
def test_lists_kept_packed_are_the_lists_made_anew_as_rows_change(engine, monkeypatch, packed_kept):
    # a few lists kept as made, the rest packed (all, a few, or none of them): most are read back
    # from packed ones, and the partners' reasons of lists an upsert entered come from there too
    monkeypatch.setattr(topk, "LISTS_MADE_KEPT", 3)
    monkeypatch.setattr(topk, "LISTS_PACKED_KEPT", packed_kept)
    profiles = _profiles()
    engine.fit(profiles[:250])
    finder, index, cache = engine.reason_finder, engine.index, engine.top_lists
    for p in profiles[:60]:
        engine.top(p.id, 5)
    assert len(cache._packed) == min(packed_kept, 57)
    changed = [*profiles[250:290], *profiles[5:15], *profiles[30:34]]  # new ones, and listed ones replaced
    for step, p in enumerate(changed):
        update = engine.upsert(p)
        for who in sorted({update.org_id, *update.entered, *update.left}):
            engine.top(who, 5)
        if step % 9 == 8:  # every cached list, read from what is kept, against its reasons found anew
            for who in sorted(cache.lists):
                listed = engine.top(who, 5)
                r = index.row[who]
                assert listed == [finder.suggestion(r, index.row[s.id], s.score) for s in listed]
    assert len(cache._packed) <= packed_kept
    gc.collect()
    assert _tracked_inside(cache._packed) == []  # bytes: nothing for the collector to walk
