"""SharedIndex with a fake matcher and state: the table indexes each revision once and remembers
whose lists it changed; the owner plans an event only once the index holds it, with those lists,
and writes nothing for a replay or for an event a later revision has overtaken."""

from __future__ import annotations

import threading

import pytest

from partnermatch import events
from partnermatch.messaging import Record
from services.matcher.adapters.redis_state import ProfileChange, ProfilesChange
from services.matcher.domain import ListsPlan, RunApplied, RunReads
from services.matcher.table import SharedIndex, TableBehind


class FakeState:
    def __init__(self) -> None:
        self.revisions: dict[str, int] = {}
        self.waiting: dict[str, set[str]] = {}
        self.pair_writes: list[ListsPlan] = []

    def applied_revision(self, org_id: str) -> int:
        return self.revisions.get(org_id, 0)

    def applied_revisions(self, org_ids=None) -> dict[str, int]:
        ids = self.revisions if org_ids is None else org_ids
        return {o: self.revisions[o] for o in ids if o in self.revisions}

    def applied_position(self) -> int:
        return 0  # no applied log: a fake's writes are not checked against one (see the real store's)

    def awaiting(self, org_ids) -> dict[str, set[str]]:
        return {org: set(self.waiting[org]) for org in org_ids if self.waiting.get(org)}

    def run_reads(self, org_ids) -> RunReads:
        ids = list(org_ids)
        return RunReads(self.applied_revisions(ids), self.awaiting(ids), {})

    def forget_awaiting(self, org_id: str, orgs) -> None:
        self.waiting.get(org_id, set()).difference_update(orgs)

    def apply_pairs(self, plan: ListsPlan) -> None:
        self.pair_writes.append(plan)


class FakeLive:
    """Indexing an event reports its organisation's list and those in `changes` as changed."""

    def __init__(self) -> None:
        self.state = FakeState()
        self.changes: dict[tuple[str, int], tuple[str, ...]] = {}
        self.clusters: dict[str, str] = {}
        self.planned: list[tuple[str, int, set[str]]] = []
        self.replanned: list[set[str]] = []

    def load(self) -> int:
        return 0

    def index(self, envelope: events.Envelope) -> set[str]:
        org_id = envelope.payload["org_id"]
        changed = self.changes.get((org_id, envelope.payload["revision"]), ())
        self.clusters[org_id] = envelope.payload["cluster_id"]
        for other in changed:
            self.clusters.setdefault(other, "c-other")
        return {org_id, *changed}

    def plan(self, envelope: events.Envelope, affected: set[str]) -> ProfileChange:
        org_id, revision = envelope.payload["org_id"], envelope.payload["revision"]
        self.planned.append((org_id, revision, affected))
        return ProfileChange(org_id, revision, dict(envelope.payload))

    def apply(self, change: ProfileChange) -> bool:
        return bool(self.apply_profiles(ProfilesChange.of(change)).applied)

    def plan_profiles(self, envelopes: list[events.Envelope], affected: set[str]) -> ProfilesChange:
        self.planned.extend((e.payload["org_id"], e.payload["revision"], affected) for e in envelopes)
        return ProfilesChange({e.payload["org_id"]: (e.payload["revision"], dict(e.payload)) for e in envelopes})

    def apply_profiles(self, change: ProfilesChange) -> RunApplied:
        """As the repository's: the lists the change planned wait no longer, and those still
        waiting for the organisations applied are read in the same step."""
        applied = set()
        for org_id, (revision, _) in change.profiles.items():
            if revision > self.state.revisions.get(org_id, 0):
                self.state.revisions[org_id] = revision
                applied.add(org_id)
        for org_id in applied:
            self.state.forget_awaiting(org_id, change.forget_waiting.get(org_id, ()))
        return RunApplied(applied, self.state.awaiting(sorted(applied)))

    def plan_lists(self, orgs: set[str]):
        self.replanned.append(set(orgs))
        return ListsPlan([], [])

    # The shared index reads what a plan needs of the index under its lock (read_*), and finishes
    # the plan with the stored pairs without it (plan_*_read): this fake plans in the second step.

    def read_profiles(self, envelopes: list[events.Envelope], affected: set[str], rejections_later=False):
        return list(envelopes), set(affected)

    def plan_profiles_read(self, read, relist=None) -> ProfilesChange:
        return self.plan_profiles(*read)

    def read_lists_of(self, orgs: set[str], rejections_later=False):
        return set(orgs)

    def plan_read(self, read, relist=None):
        return self.plan_lists(read)


def _event(org_id: str, revision: int) -> events.Envelope:
    return events.new_event(
        events.PROFILE_UPSERTED,
        {
            "org_id": org_id,
            "revision": revision,
            "cluster_id": "c-1",
            "name": org_id,
            "country": "PL",
            "language": "pl",
            "capabilities": "x",
            "goals": "y",
            "sectors": [],
            "website": None,
            "updated_at": "2026-01-01T00:00:00+00:00",
        },
        "test",
    )


def _record(envelope: events.Envelope) -> Record:
    return Record("profiles", 0, 0, envelope.payload["org_id"], events.encode(envelope))


@pytest.fixture
def shared() -> SharedIndex:
    return SharedIndex(FakeLive(), wait_s=0.2)


def test_the_owner_plans_the_lists_the_table_found_changed_and_a_replay_plans_nothing(shared):
    event = _event("a", 1)
    shared.live.changes[("a", 1)] = ("b", "c")
    shared.index_record(_record(event))
    assert shared.handle_owned(event) is True
    assert shared.live.planned == [("a", 1, {"a", "b", "c"})]
    assert shared.unplanned == {}
    assert shared.handle_owned(event) is False
    assert len(shared.live.planned) == 1


def test_the_table_indexes_a_revision_once(shared):
    shared.live.changes.update({("a", 2): ("b",), ("a", 1): ("c",)})
    shared.index_record(_record(_event("a", 2)))
    shared.index_record(_record(_event("a", 1)))
    shared.index_record(_record(_event("a", 2)))
    assert shared.revisions == {"a": 2}
    assert shared.unplanned == {"a": (2, {"a", "b"})}


def test_an_event_overtaken_in_the_index_waits_for_the_later_one_which_plans_both_events_lists(shared):
    first, second = _event("a", 1), _event("a", 2)
    shared.live.changes.update({("a", 1): ("b",), ("a", 2): ("c",)})
    shared.index_record(_record(first))
    shared.index_record(_record(second))
    assert shared.handle_owned(first) is False
    assert shared.live.planned == []
    assert shared.handle_owned(second) is True
    assert shared.live.planned == [("a", 2, {"a", "b", "c"})]


def test_an_owned_event_waits_for_the_table_and_gives_up_for_a_retry(shared):
    event = _event("a", 1)
    with pytest.raises(TableBehind):
        shared.handle_owned(event)
    later = threading.Timer(0.05, shared.index_record, args=(_record(event),))
    later.start()
    assert shared.handle_owned(event) is True
    later.join()


def test_lists_that_waited_for_an_organisation_are_planned_once_it_is_applied_even_by_a_takeover(shared):
    shared.live.state.waiting["a"] = {"x", "y"}
    event = _event("a", 1)
    shared.index_record(_record(event))
    assert shared.handle_owned(event) is True
    assert shared.live.replanned == [{"x", "y"}] and shared.live.state.waiting["a"] == set()

    shared.live.state.waiting["a"] = {"z"}  # left by a matcher that stopped after applying
    assert shared.handle_owned(event) is False
    assert shared.live.replanned[-1] == {"z"}


def test_the_consumers_table_sends_profile_events_to_the_owner_and_runs_the_others_under_the_lock(shared):
    seen: list[tuple[str, bool]] = []

    def decision(envelope: events.Envelope) -> bool:
        seen.append((envelope.event_type, shared.lock.locked()))
        return True

    table = shared.handlers({events.MATCH_REJECTED: decision})
    assert set(table) == {events.PROFILE_UPSERTED, events.PROFILE_DELETED, events.MATCH_REJECTED}
    event = _event("a", 1)
    shared.index_record(_record(event))
    assert table[events.PROFILE_UPSERTED](event) is True and shared.live.state.revisions["a"] == 1
    rejected = events.Envelope(events.MATCH_REJECTED, {}, "test")
    assert table[events.MATCH_REJECTED](rejected) is True
    assert seen == [(events.MATCH_REJECTED, True)] and not shared.lock.locked()


def test_a_run_of_owned_events_is_planned_once_for_the_lists_of_all_with_each_organisations_latest(shared):
    shared.live.changes.update({("a", 1): ("x",), ("a", 2): ("y",), ("b", 1): ("x", "z"), ("c", 1): ()})
    run = [_event("a", 1), _event("b", 1), _event("a", 2), _event("c", 1)]
    for event in run:
        shared.index_record(_record(event))
    shared.live.state.revisions["c"] = 1  # applied before: a replay inside the run
    assert shared.handle_owned_run(run) == {"a", "b"}
    lists = {"a", "b", "x", "y", "z"}
    assert shared.live.planned == [("a", 2, lists), ("b", 1, lists)]  # one plan of both events
    assert shared.live.state.revisions == {"a": 2, "b": 1, "c": 1}
    assert shared.unplanned == {}
    assert shared.handle_owned_run(run) == set()  # the whole run again: a replay
    assert len(shared.live.planned) == 2


def test_a_run_waits_for_the_table_to_hold_every_event_of_it(shared):
    first, second = _event("a", 1), _event("b", 1)
    shared.index_record(_record(first))
    with pytest.raises(TableBehind, match="b"):
        shared.handle_owned_run([first, second])
    assert shared.live.planned == [] and shared.live.state.revisions == {}
