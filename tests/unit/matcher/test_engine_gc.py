"""What the live engine keeps per row (the lists made with their reasons, who is listed where, the
rows' evidence) is made of what CPython's cyclic garbage collector stops tracking once it has seen
it, so that its collections during the event path do not walk thousands of kept objects again; and
the lists read from what is kept are the lists made (Reason values, same scores and order); and what
a reweigh replaces is freed without the collector, which never sees what the live matcher froze."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from services.matcher.engine import MatchEngine
from services.matcher.engine.reasons import Evidence
from services.matcher.engine.values import Reason, Suggestion

DEVSET = Path(__file__).resolve().parents[3] / "tests" / "data" / "devset"


def _profiles() -> list:
    from services.matcher.batch import read_organisations

    return [p for path in sorted(DEVSET.glob("*.jsonl")) for p in read_organisations(path.open(encoding="utf-8"))]


def _tracked_inside(root: object) -> list[object]:
    """The objects the collector tracks among those `root` refers to, directly or not (root excluded)."""
    found, seen, stack = [], {id(root)}, list(gc.get_referents(root))
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if gc.is_tracked(x):
            found.append(x)
            stack.extend(gc.get_referents(x))
    return found


def _events(engine: MatchEngine, profiles: list) -> None:
    engine.fit(profiles[:250])
    for p in profiles[:40]:
        engine.top(p.id, 5)
    for p in [*profiles[250:], *profiles[5:12], *profiles[260:264]]:
        update = engine.upsert(p)
        for who in sorted({update.org_id, *update.entered, *update.left}):
            engine.top(who, 5)


def test_the_kept_lists_reasons_and_evidence_are_left_alone_by_the_collector(engine):
    _events(engine, _profiles())
    cache = engine.top_lists
    assert cache._made and cache.listed_in and engine.reason_finder._evidence
    # a collection untracks a tuple when it finds nothing in it tracked: at worst one level of
    # nesting a collection (a kept list is 5 deep)
    for _ in range(6):
        gc.collect()
    for kept in (cache._made, cache._reusable, cache.listed_in):
        assert _tracked_inside(kept) == []
    # an Evidence (a slotted object) is tracked itself; what it holds is not, but for its finder
    # (and its class)
    finder = engine.reason_finder
    for e in finder._evidence.values():
        assert [x for x in gc.get_referents(e) if gc.is_tracked(x) and x is not finder and x is not Evidence] == []


def test_a_list_read_again_is_the_list_made(engine):
    profiles = _profiles()
    _events(engine, profiles)
    finder, index = engine.reason_finder, engine.index
    for p in profiles[250:270]:
        first, again = engine.top(p.id, 5), engine.top(p.id, 3)
        r = index.row[p.id]
        fresh = [finder.suggestion(r, index.row[s.id], s.score) for s in first]
        assert first == fresh and again == fresh[:3]
        for listed in (first, again):
            assert all(type(s) is Suggestion for s in listed)
            assert all(type(why) is Reason for s in listed for why in s.reasons)


def test_a_reweigh_lets_go_of_the_parts_it_replaced_without_the_cyclic_collector(engine):
    # The live matcher freezes what its start made (LiveMatcher.load: gc.freeze), so the collector
    # never frees a reference cycle among those objects: the index, reason finder, top-K cache and
    # feature space a reweigh replaces must be freed by reference counting alone (the index's views
    # and the finder's evidence referred back to them: 178 MB of the index's arrays stayed at 100,000)
    _events(engine, _profiles())
    replaced = [weakref.ref(part) for part in (engine.index, engine.reason_finder, engine.top_lists, engine.features)]
    gc.collect()
    gc.freeze()
    try:
        engine.reweigh()
        gc.collect()
        assert [part() for part in replaced] == [None, None, None, None]
    finally:
        gc.unfreeze()
    assert engine.top(_profiles()[0].id, 5)  # the engine answers from its new parts
