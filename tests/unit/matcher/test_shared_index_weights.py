"""The shared index's weights with a fake engine and state: due once a share changed, once the table
has been quiet, or once they are old, and never when nothing changed; a refresh learns them under
the index's lock only as the engine asks it to, then plans every list again, one at a time."""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager

from partnermatch import events
from partnermatch.messaging import Assignment, Record, key_partition
from services.matcher import table
from services.matcher.table import SharedIndex
from tests.unit.matcher.test_shared_index import FakeLive, _event, _record


class FakeEngine:
    def __init__(self) -> None:
        self.changes_since_learnt = 0
        self.due = False
        self.lock: threading.Lock | None = None

    def reweigh_due(self) -> bool:
        return self.due

    def reweigh(self, hold: AbstractContextManager[object] | None = None) -> None:
        assert hold is self.lock
        assert self.lock is not None and self.lock.acquire(timeout=1)
        self.lock.release()
        self.changes_since_learnt, self.due = 0, False

    def weights_digest(self) -> str:
        return "digest"


class LiveWithEngine(FakeLive):
    def __init__(self) -> None:
        super().__init__()
        self.engine = FakeEngine()

    def index(self, envelope):
        self.engine.changes_since_learnt += 1
        return super().index(envelope)


def _shared(**kwargs) -> SharedIndex:
    live = LiveWithEngine()
    shared = SharedIndex(live, **kwargs)  # type: ignore[arg-type]
    live.engine.lock = shared.lock
    return shared


def test_weights_are_due_after_a_share_changed_or_a_quiet_table_or_a_long_while_and_never_unchanged():
    shared = _shared(reweigh_quiet_s=60, reweigh_every_s=3600)
    engine = shared.live.engine
    assert not shared.weights_due()
    shared.index_record(_record(_event("org-1", 1)))
    assert not shared.weights_due()  # changed, but just now
    engine.due = True
    assert shared.weights_due()

    quiet = _shared(reweigh_quiet_s=0.05, reweigh_every_s=3600)
    quiet.index_record(_record(_event("org-1", 1)))
    time.sleep(0.1)
    assert quiet.weights_due()

    old = _shared(reweigh_quiet_s=60, reweigh_every_s=0.05)
    time.sleep(0.1)
    assert not old.weights_due()  # old, but nothing changed
    old.index_record(_record(_event("org-1", 1)))
    assert old.weights_due()


def test_a_refresh_for_a_changed_share_waits_ten_times_as_long_as_the_last_one_learnt_but_a_pause_does_not(
    monkeypatch,
):
    shared = _shared(reweigh_quiet_s=60, reweigh_every_s=3600)
    engine = shared.live.engine
    reweigh = engine.reweigh

    def learning_takes_a_while(hold=None):
        time.sleep(0.02)
        reweigh(hold)

    engine.reweigh = learning_takes_a_while
    shared.index_record(_record(_event("org-1", 1)))
    shared.refresh_weights()
    shared.index_record(_record(_event("org-2", 1)))
    engine.due = True
    assert not shared.weights_due(), "due by share, but the last refresh is not ten learnings behind"
    time.sleep(table.REWEIGH_SPACING * 0.03)
    assert shared.weights_due()

    shared.refresh_weights()
    shared.reweigh_quiet_s = 0.01
    shared.index_record(_record(_event("org-3", 1)))
    time.sleep(0.02)
    assert shared.weights_due(), "a pause is not held back"


def test_a_refresh_for_a_changed_share_also_waits_ten_times_as_long_as_planning_every_list_again_took():
    shared = _shared(reweigh_quiet_s=60, reweigh_every_s=3600)
    live = shared.live
    plan_lists = live.plan_lists

    def slow(orgs):
        time.sleep(0.01)  # the work of one list
        return plan_lists(orgs)

    live.plan_lists = slow
    for org in ("org-a", "org-b", "org-c"):
        shared.index_record(_record(_event(org, 1)))
    shared.refresh_weights()  # learns at once, then some 0.03 s of planning the three lists again
    shared.index_record(_record(_event("org-d", 1)))
    live.engine.due = True
    assert not shared.weights_due(), "due by share, but the last refresh is not ten times its work behind"
    time.sleep(table.REWEIGH_SPACING * 0.03 + 0.05)
    assert shared.weights_due()


def test_a_refresh_learns_the_weights_and_plans_every_list_again_one_at_a_time():
    shared = _shared()
    live = shared.live
    for org in ("org-b", "org-a", "org-c"):
        shared.index_record(_record(_event(org, 1)))
    shared.refresh_weights()
    assert live.engine.changes_since_learnt == 0
    assert live.replanned == [{"org-a"}, {"org-b"}, {"org-c"}]
    assert len(live.state.pair_writes) == 3
    assert not shared.weights_due()


def _assigned(*held: int, partitions: int = 3) -> Assignment:
    return Assignment({"profiles": frozenset(held), "match-decisions": frozenset()}, {"profiles": partitions})


def test_a_refresh_plans_again_only_the_lists_of_the_partitions_the_group_assigned_this_matcher():
    shared = _shared()
    live = shared.live
    # two read from the table's partitions 0 and 2; one loaded at start, never read from the table,
    # goes where the publishers' partitioner sends its key
    shared.index_record(Record("profiles", 0, 0, "org-a", events.encode(_event("org-a", 1))))
    shared.index_record(Record("profiles", 2, 0, "org-b", events.encode(_event("org-b", 1))))
    loaded = next(f"org-{i}" for i in range(100) if key_partition(f"org-{i}", 3) == 1)
    live.clusters[loaded] = "c-1"
    shared.note_assignment(_assigned(0, 1))
    shared.refresh_weights()
    assert live.replanned == [{org} for org in sorted(("org-a", loaded))]

    # another matcher stopped: its partition is taken over, and its lists planned again once
    live.replanned.clear()
    shared.note_assignment(_assigned(0, 1, 2))
    shared.keep_weights_fresh(_stop_after(shared, lambda: bool(live.replanned)), check_s=0.01)
    assert live.replanned == [{"org-b"}]


def test_partitions_held_before_the_first_refresh_are_not_planned_again_when_taken_over():
    shared = _shared()
    shared.index_record(Record("profiles", 2, 0, "org-b", events.encode(_event("org-b", 1))))
    shared.note_assignment(_assigned(0))
    shared.note_assignment(_assigned(0, 2))
    assert shared.owned_lists() == ["org-b"]
    assert not shared._gained, "no list was planned with learnt weights yet: nothing to catch up"


def _stop_after(shared: SharedIndex, done, timeout_s: float = 2.0) -> threading.Event:
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    return stop


def test_a_refresh_told_to_stop_plans_no_more_lists():
    shared = _shared()
    for org in ("org-a", "org-b"):
        shared.index_record(_record(_event(org, 1)))
    stop = threading.Event()
    stop.set()
    shared.refresh_weights(stop)
    assert shared.live.replanned == []


def test_the_refresher_learns_the_weights_once_the_table_is_quiet():
    shared = _shared(reweigh_quiet_s=0.05)
    shared.index_record(_record(_event("org-a", 1)))
    stop = threading.Event()
    thread = threading.Thread(target=shared.keep_weights_fresh, args=(stop, 0.01))
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while shared.live.replanned != [{"org-a"}] and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(5)
    assert shared.live.replanned == [{"org-a"}]
    assert shared.live.engine.changes_since_learnt == 0


def test_planning_the_lists_again_stops_when_a_fifth_of_the_index_changed_but_not_for_a_pause(monkeypatch):
    monkeypatch.setattr(table, "REPLAN_CHECK_EVERY", 2)
    shared = _shared(reweigh_quiet_s=0, reweigh_every_s=0)
    live = shared.live
    for org in ("org-a", "org-b", "org-c", "org-d"):
        shared.index_record(_record(_event(org, 1)))
    assert shared.weights_due()  # a pause, and old weights: the pass goes on all the same
    assert shared.replan_lists(["org-a", "org-b", "org-c", "org-d"]) == 4
    live.replanned.clear()
    plan_lists = live.plan_lists

    def then_due(orgs):
        live.engine.due = True  # a fifth of the index changed meanwhile
        return plan_lists(orgs)

    live.plan_lists = then_due
    # looks after the second list: the lists left wait for the next refresh
    assert shared.replan_lists(["org-a", "org-b", "org-c", "org-d"]) == 2
    assert live.replanned == [{"org-a"}, {"org-b"}]


def test_planning_the_lists_again_yields_to_profile_events_and_runs_at_full_speed_once_quiet(monkeypatch):
    shared = _shared(reweigh_quiet_s=60)
    live = shared.live
    for org in ("org-a", "org-b", "org-c"):
        shared.index_record(_record(_event(org, 1)))
    plan_lists = live.plan_lists

    def slow(orgs):
        done = time.monotonic() + 0.02  # the work of one list
        while time.monotonic() < done:
            pass
        return plan_lists(orgs)

    live.plan_lists = slow
    rests: list[float] = []
    monkeypatch.setattr(table.time, "sleep", rests.append)
    assert shared.replan_lists(["org-a", "org-b", "org-c"]) == 3
    # events flowing (one indexed just now): after each list it rests three times its work
    assert len(rests) == 3 and all(rest >= table.REPLAN_REST * 0.02 for rest in rests)

    rests.clear()
    shared._last_indexed -= 120  # the table has been quiet for two minutes ...
    shared.handle_owned(_event("org-a", 1))  # ... but the consumer is still planning its events
    assert shared.replan_lists(["org-a", "org-b", "org-c"]) == 3
    assert len(rests) == 3

    rests.clear()
    shared._last_owned -= 120  # both quiet
    assert shared.replan_lists(["org-a", "org-b", "org-c"]) == 3
    assert rests == []
