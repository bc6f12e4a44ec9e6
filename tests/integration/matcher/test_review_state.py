"""The matcher's review state on a real redis-server: atomic decisions, one event per outcome,
decided pairs never suggested again, replays change nothing."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from partnermatch import events
from services.matcher import domain
from services.matcher.adapters.redis_state import (
    PAIR,
    WITHDRAWN_DROPPED,
    WITHDRAWN_LOCK,
    DecisionRefused,
    ListsPlan,
    PairWrite,
    ProfileChange,
    ProfilesChange,
    RedisMatcherState,
)
from services.matcher.live import LiveMatcher
from tests.unit.matcher.fakes import FakeEngine

pytestmark = pytest.mark.integration


@pytest.fixture
def state(store_client):
    """On one redis-server and on a three-node Redis Cluster."""
    return RedisMatcherState(store_client)


def _pair(score=0.5, org_a="org_a", org_b="org_b", cluster_a="pl-silesia-ict") -> PairWrite:
    return PairWrite(
        events.pair_id(org_a, org_b),
        org_a,
        org_b,
        cluster_a,
        "rs-vojvodina-ict",
        score,
        [
            {
                "concept": "ict.software",
                "kind": "activity",
                "direction": "a_offers_b_seeks",
                "weight": 0.3,
                "terms_a": ["oprogramowanie"],
                "terms_b": ["softver"],
            }
        ],
    )


def _outbox_events(state):
    return [events.decode(e.value) for e in state.outbox.head(1000)]


def _suggest(state, revision=1, **kw):
    return state.apply(
        ProfileChange("org_a", revision, {"org_id": "org_a", "revision": revision}, upserts=[_pair(**kw)])
    )


def test_applying_the_same_revision_twice_writes_nothing_the_second_time(state):
    assert _suggest(state) is True
    assert _suggest(state) is False
    assert [e.event_type for e in _outbox_events(state)] == [events.MATCH_SUGGESTED]
    assert state.pending_ids_of_cluster("pl-silesia-ict") == ["org_a~org_b"]


def test_both_clusters_approving_approves_the_pair_with_one_event(state):
    _suggest(state)
    pair = state.decide("org_a~org_b", "pl-silesia-ict", "anna", "approve")
    assert pair["state"] == "pending"
    pair = state.decide("org_a~org_b", "rs-vojvodina-ict", "marko", "approve")
    assert pair["state"] == "approved"
    decided = [e for e in _outbox_events(state) if e.event_type.startswith("match.") and "decisions" in e.payload]
    assert [e.event_type for e in decided] == [events.MATCH_APPROVED]
    assert {d["coordinator"] for d in decided[0].payload["decisions"]} == {"anna", "marko"}
    assert state.pending_ids_of_cluster("pl-silesia-ict") == []
    assert state.history_ids_of_cluster("rs-vojvodina-ict") == ["org_a~org_b"]


def test_one_rejection_rejects_the_pair(state):
    _suggest(state)
    pair = state.decide("org_a~org_b", "rs-vojvodina-ict", "marko", "reject", "not_relevant", "Druga tržišta")
    assert pair["state"] == "rejected"
    with pytest.raises(DecisionRefused) as refused:
        state.decide("org_a~org_b", "pl-silesia-ict", "anna", "approve")
    assert refused.value.reason == "not_pending"


def test_a_cluster_cannot_decide_twice_nor_decide_for_a_pair_outside_it(state):
    _suggest(state)
    state.decide("org_a~org_b", "pl-silesia-ict", "anna", "approve")
    with pytest.raises(DecisionRefused) as twice:
        state.decide("org_a~org_b", "pl-silesia-ict", "anna", "reject")
    assert twice.value.reason == "already_decided"
    with pytest.raises(DecisionRefused) as foreign:
        state.decide("org_a~org_b", "al-tirana-creative", "besa", "approve")
    assert foreign.value.reason == "not_found"


def test_an_approval_survives_a_new_score_of_the_pending_pair(state):
    """Found by the fault suite: a profile event re-scored a pair between the two approvals, the
    first was dropped, and the pair stayed pending although both coordinators were told 'recorded'."""
    _suggest(state)
    assert state.decide("org_a~org_b", "pl-silesia-ict", "anna", "approve")["state"] == "pending"
    assert _suggest(state, revision=2, score=0.7) is True
    assert state.get_pair("org_a~org_b")["score"] == 0.7
    assert state.decide("org_a~org_b", "rs-vojvodina-ict", "marko", "approve")["state"] == "approved"
    decided = [e for e in _outbox_events(state) if e.event_type == events.MATCH_APPROVED]
    assert len(decided) == 1 and {d["coordinator"] for d in decided[0].payload["decisions"]} == {"anna", "marko"}


def test_a_new_score_keeps_no_decision_of_a_cluster_the_pair_left(state):
    """An organisation moved to another cluster: the old cluster's approval is not the new one's."""
    _suggest(state)
    state.decide("org_a~org_b", "pl-silesia-ict", "anna", "approve")
    _suggest(state, revision=2, cluster_a="pl-krakow-ict")
    pair = state.get_pair("org_a~org_b")
    assert pair["state"] == "pending" and pair["decisions"] == {} and pair["cluster_a"] == "pl-krakow-ict"
    assert state.pending_ids_of_cluster("pl-silesia-ict") == []
    assert state.pending_ids_of_cluster("pl-krakow-ict") == ["org_a~org_b"]


def test_a_decided_pair_is_never_suggested_again_even_after_profile_edits(state):
    _suggest(state)
    state.decide("org_a~org_b", "rs-vojvodina-ict", "marko", "reject")
    assert _suggest(state, revision=2, score=0.9) is True
    assert state.get_pair("org_a~org_b")["state"] == "rejected"
    assert state.pending_ids_of_cluster("pl-silesia-ict") == []
    assert [e.event_type for e in _outbox_events(state)].count(events.MATCH_SUGGESTED) == 1


def test_fifty_concurrent_decisions_on_one_pair_give_one_outcome_and_one_event(state):
    _suggest(state)
    barrier = threading.Barrier(50)
    outcomes: list[str] = []

    def decide(i: int) -> None:
        cluster = "pl-silesia-ict" if i % 2 else "rs-vojvodina-ict"
        choice = "reject" if i % 7 == 0 else "approve"
        barrier.wait()
        try:
            outcomes.append(state.decide("org_a~org_b", cluster, f"coord{i}", choice)["state"])
        except DecisionRefused as refused:
            outcomes.append(refused.reason)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = state.get_pair("org_a~org_b")["state"]
    assert final in ("approved", "rejected")
    decided = [e for e in _outbox_events(state) if e.event_type in (events.MATCH_APPROVED, events.MATCH_REJECTED)]
    assert len(decided) == 1 and decided[0].event_type == f"match.{final}"
    assert outcomes.count(final) == 1
    assert sum(o in ("pending",) for o in outcomes) <= 1


def test_withdrawing_a_pending_pair_publishes_match_withdrawn(state):
    _suggest(state)
    state.apply(ProfileChange("org_a", 2, None, withdrawals=[("org_a~org_b", "organisation_deleted")]))
    withdrawn = _outbox_events(state)[-1]
    assert withdrawn.event_type == events.MATCH_WITHDRAWN
    assert withdrawn.payload["pair_id"] == "org_a~org_b" and withdrawn.payload["reason"] == "organisation_deleted"
    assert state.get_pair("org_a~org_b") is None, "no record is kept of a withdrawn pair: its event says why"
    assert state.pending_ids_of_cluster("pl-silesia-ict") == []
    assert state.get_profile("org_a") is None


def _sides(state, *orgs):
    """The sides whose lists held each pending pair of these organisations when last planned, as a
    plan's snapshot reads them."""
    return state.snapshot(orgs, [], sides_of=orgs).sides


def test_a_pending_pair_stays_while_one_sides_list_holds_it_and_goes_with_the_last(state):
    both = _pair()
    both.planned = both.wanted_by = frozenset({"org_a", "org_b"})
    state.apply(ProfileChange("org_a", 1, {"org_id": "org_a", "revision": 1}, upserts=[both]))
    state.apply(ProfileChange("org_b", 1, {"org_id": "org_b", "revision": 1}))
    assert _sides(state, "org_a", "org_x") == {"org_a~org_b": frozenset({"org_a", "org_b"})}
    count = len(_outbox_events(state))

    state.apply_pairs(ListsPlan([], [], [("org_a~org_b", "org_a")]))  # a's list let it go; b's holds it
    assert state.get_pair("org_a~org_b")["state"] == "pending"
    assert _sides(state, "org_a") == {"org_a~org_b": frozenset({"org_b"})}
    assert len(_outbox_events(state)) == count, "kept quietly: no event"
    state.apply_pairs(ListsPlan([], [], [("org_a~org_b", "org_a")]))  # a replay changes nothing
    assert state.get_pair("org_a~org_b")["wanted_by"] == ["org_b"]

    state.apply_pairs(ListsPlan([], [], [("org_a~org_b", "org_b")]))
    assert state.get_pair("org_a~org_b") is None, "withdrawn: its record is not kept"
    assert state.pending_of_org("org_a") == {} and state.pending_ids_of_cluster("pl-silesia-ict") == []
    assert _outbox_events(state)[-1].event_type == events.MATCH_WITHDRAWN
    assert _outbox_events(state)[-1].payload["reason"] == "no_longer_matching"


def test_every_decision_is_queued_again_for_a_broker_that_lost_its_topics(state):
    _suggest(state)
    state.apply(
        ProfileChange("org_c", 1, {"org_id": "org_c", "revision": 1}, upserts=[_pair(org_a="org_c", org_b="org_d")])
    )
    state.decide("org_a~org_b", "pl-silesia-ict", "anna", "approve")
    state.decide("org_a~org_b", "rs-vojvodina-ict", "marko", "approve")
    state.decide("org_c~org_d", "pl-silesia-ict", "anna", "reject", "not_relevant")
    first = [e for e in _outbox_events(state) if e.event_type in (events.MATCH_APPROVED, events.MATCH_REJECTED)]
    state.outbox.mark_published([e.entry_id for e in state.outbox.head(1000)], {})

    assert state.requeue_decisions() == 2

    again = sorted(_outbox_events(state), key=lambda e: e.payload["pair_id"])
    assert [(e.event_type, e.payload["pair_id"]) for e in again] == [
        (events.MATCH_APPROVED, "org_a~org_b"),
        (events.MATCH_REJECTED, "org_c~org_d"),
    ]
    first.sort(key=lambda e: e.payload["pair_id"])
    assert [e.payload for e in again] == [e.payload for e in first], "the same decisions, both clusters' words"
    assert {e.event_id for e in again}.isdisjoint(e.event_id for e in first)


def test_a_run_of_profile_events_applies_each_new_revision_once_with_the_pairs_planned_for_all(state):
    assert state.apply(ProfileChange("org_b", 2, {"org_id": "org_b", "revision": 2}))
    run = ProfilesChange(
        {"org_a": (1, {"org_id": "org_a", "revision": 1}), "org_b": (2, {"org_id": "org_b", "revision": 2})},
        upserts=[_pair()],
    )
    assert state.apply_profiles(run).applied == {"org_a"}  # org_b's revision was applied before
    assert state.applied_revisions(["org_a", "org_b"]) == {"org_a": 1, "org_b": 2}
    assert state.get_profile("org_a") == {"org_id": "org_a", "revision": 1}
    assert [e.event_type for e in _outbox_events(state)] == [events.MATCH_SUGGESTED]
    assert state.apply_profiles(run).applied == set(), "a replay of the whole run writes nothing"
    assert len(_outbox_events(state)) == 1

    gone = ProfilesChange({"org_a": (2, None)}, withdrawals=[("org_a~org_b", "organisation_deleted")])
    assert state.apply_profiles(gone).applied == {"org_a"}
    assert state.get_profile("org_a") is None and state.get_pair("org_a~org_b") is None  # withdrawn: not kept


def test_a_pair_withdrawn_then_suggested_again_starts_afresh_with_one_event_each(state):
    _suggest(state)
    state.apply(ProfileChange("org_b", 1, {"org_id": "org_b", "revision": 1}))
    first = state.decide("org_a~org_b", "pl-silesia-ict", "anna", "approve")  # one side's approval
    assert first["decisions"] and first["state"] == "pending"
    time.sleep(0.002)
    # withdrawn for the one reason a pending approval does not keep a pair (an organisation deleted)
    state.apply_pairs(ListsPlan([], [("org_a~org_b", "organisation_deleted")]))
    assert state.get_pair("org_a~org_b") is None
    state.apply_pairs(ListsPlan([], [("org_a~org_b", "organisation_deleted")]))  # a replay: nothing to withdraw
    with pytest.raises(DecisionRefused):  # withdrawn: nothing to decide
        state.decide("org_a~org_b", "rs-vojvodina-ict", "marko", "approve")
    assert _suggest(state, revision=2, score=0.7)
    again = state.get_pair("org_a~org_b")
    assert again["state"] == "pending" and again["score"] == 0.7
    assert again["decisions"] == {}, "the approval given before the withdrawal does not come back"
    assert again["created_ms"] > first["created_ms"]
    assert state.pending_ids_of_cluster("pl-silesia-ict") == ["org_a~org_b"]
    assert [e.event_type for e in _outbox_events(state)] == [
        events.MATCH_SUGGESTED,
        events.MATCH_WITHDRAWN,
        events.MATCH_SUGGESTED,
    ]


def test_the_records_earlier_versions_kept_of_withdrawn_pairs_are_deleted_once(state):
    def record(pair_id, pair_state):
        return {"pair_id": pair_id, "org_a": "a", "org_b": pair_id, "state": pair_state, "score": 0.5}

    said = {**record("a~s", "pending"), "reasons": [{"terms_a": ["withdrawn"]}]}  # names the word, pending
    legacy = {
        "a~w1": json.dumps(record("a~w1", "withdrawn")),  # json.dumps' spaces, as the oldest versions wrote
        "a~w2": json.dumps(record("a~w2", "withdrawn"), separators=(",", ":")),
        "a~p": json.dumps(record("a~p", "pending")),
        "a~s": json.dumps(said),
        "a~d": json.dumps(record("a~d", "approved")),
        "a~x": "not json withdrawn",
    }
    for many in range(1200):  # beyond one batch of the scan
        legacy[f"b~w{many}"] = json.dumps(record(f"b~w{many}", "withdrawn"))
    for pair_id, raw in legacy.items():
        state.r.set(PAIR + pair_id, raw)
    state.r.hset(PAIR + "not-a-record", "state", "withdrawn")  # not a string: not read (no WRONGTYPE)
    assert state.drop_withdrawn_pairs(batch=500) == 1202
    assert {pair_id for pair_id in legacy if state.r.exists(PAIR + pair_id)} == {"a~p", "a~s", "a~d", "a~x"}
    assert state.get_pair("a~p")["state"] == "pending" and state.get_pair("a~d")["state"] == "approved"
    assert state.r.exists(PAIR + "not-a-record") and not state.r.exists(WITHDRAWN_LOCK)
    state.r.set(PAIR + "a~w1", legacy["a~w1"])
    assert state.drop_withdrawn_pairs() == 0, "done once: not scanned again"


def test_one_matcher_deletes_the_old_withdrawn_records_and_a_failure_leaves_it_to_the_next_start(state, caplog):
    state.r.set(PAIR + "a~w", json.dumps({"pair_id": "a~w", "state": "withdrawn"}))
    state.r.set(WITHDRAWN_LOCK, 1, ex=60)  # another matcher is at it
    assert state.drop_withdrawn_pairs() == 0 and state.r.exists(PAIR + "a~w")
    state.r.delete(WITHDRAWN_LOCK)

    def lost(*_args, **_kwargs):
        raise redis.ConnectionError("gone")

    working, state._drop_withdrawn = state._drop_withdrawn, lost
    assert state.drop_withdrawn_pairs() == 0, "a failure is logged, the start goes on"
    assert "the next start tries again" in caplog.text
    assert not state.r.exists(WITHDRAWN_DROPPED) and not state.r.exists(WITHDRAWN_LOCK)
    state._drop_withdrawn = working
    LiveMatcher(state, FakeEngine(), top_k=3, min_score=0.1).load()  # a start does it
    assert not state.r.exists(PAIR + "a~w") and state.r.exists(WITHDRAWN_DROPPED)


def test_a_pair_one_cluster_approved_stays_pending_and_plans_see_it_approved(state):
    """QA: an approval vanished when the pair was displaced by a better match or let go by the
    lists while it waited for the other cluster. It stays, plans read it as approved (it keeps its
    place under the limit), and it goes once the approval is taken back and no list holds it."""
    both = _pair()
    both.planned = both.wanted_by = frozenset({"org_a", "org_b"})
    state.apply(ProfileChange("org_a", 1, {"org_id": "org_a", "revision": 1}, upserts=[both]))
    state.apply(ProfileChange("org_b", 1, {"org_id": "org_b", "revision": 1}))
    assert state.snapshot(["org_a"], []).approved == frozenset()
    state.decide("org_a~org_b", "pl-silesia-ict", "anna", "approve")
    assert state.snapshot(["org_a", "org_b"], []).approved == {"org_a~org_b"}

    state.apply_pairs(ListsPlan([], [("org_a~org_b", "displaced_by_better_match")]))
    state.apply_pairs(ListsPlan([], [], [("org_a~org_b", "org_a"), ("org_a~org_b", "org_b")]))
    pair = state.get_pair("org_a~org_b")
    assert pair["state"] == "pending" and pair["wanted_by"] == [] and "pl-silesia-ict" in pair["decisions"]
    assert state.pending_ids_of_cluster("rs-vojvodina-ict") == ["org_a~org_b"]
    assert not [e for e in _outbox_events(state) if e.event_type == events.MATCH_WITHDRAWN]

    for held in state.pair_for_update("org_a~org_b"):  # as the review's use case takes it back
        with held:
            held.save(domain.withdraw_approval(held.pair, "pl-silesia-ict", int(time.time() * 1000)))
    assert state.get_pair("org_a~org_b") is None, "no approval and no list holds it: withdrawn at once"
    assert state.snapshot(["org_a"], []).approved == frozenset()
    assert state.pending_ids_of_cluster("rs-vojvodina-ict") == []


def test_approvals_recorded_before_the_set_of_them_are_marked_once_or_found_at_a_write(state, store_client):
    from services.matcher.adapters.redis_state import APPROVED_MARKED, APPROVED_PENDING

    both = _pair()
    both.planned = both.wanted_by = frozenset({"org_a", "org_b"})
    state.apply(ProfileChange("org_a", 1, {"org_id": "org_a", "revision": 1}, upserts=[both]))
    state.apply(ProfileChange("org_b", 1, {"org_id": "org_b", "revision": 1}))
    state.decide("org_a~org_b", "pl-silesia-ict", "anna", "approve")
    store_client.srem(APPROVED_PENDING, "org_a~org_b")  # as an earlier version left it
    store_client.delete(APPROVED_MARKED)
    assert state.snapshot(["org_a"], []).approved == frozenset()
    state.mark_approved_pending()
    assert state.snapshot(["org_a"], []).approved == {"org_a~org_b"}

    store_client.srem(APPROVED_PENDING, "org_a~org_b")  # missed (an older matcher recorded it)
    newcomer = _pair(org_b="org_c")
    state.apply_pairs(ListsPlan([newcomer], [("org_a~org_b", "displaced_by_better_match")]))
    assert state.get_pair("org_a~org_b")["state"] == "pending"
    assert state.get_pair("org_a~org_c") is None, "org_a's place stays the approved pair's"
    assert state.snapshot(["org_a"], []).approved == {"org_a~org_b"}, "marked again by the write"
