"""The matcher's use cases over fakes (tests/unit/matcher/fakes.py): a profile event planned from one
snapshot of the pairs and saved with its events; the coordinators' decisions answered once, from
one read of the pair, and decided again on the pair as another writer left it."""

from __future__ import annotations

import gc

import pytest

from partnermatch import events
from services.matcher import domain
from services.matcher.domain import DecisionRefused
from services.matcher.live import LiveMatcher
from services.matcher.review import ReviewService
from tests.unit.matcher.fakes import FakeEngine, FakeMatcherRepository

CLUSTERS = {"a": "c-1", "b": "c-2", "c": "c-2", "d": "c-3", "e": "c-3"}


def _upsert(org_id: str, revision: int = 1) -> events.Envelope:
    payload = {
        "org_id": org_id,
        "revision": revision,
        "cluster_id": CLUSTERS[org_id],
        "name": org_id.upper(),
        "country": "PL",
        "language": "pl",
        "capabilities": "x",
        "goals": "y",
        "sectors": [],
        "website": None,
        "updated_at": "2026-12-05T00:00:00+00:00",
    }
    return events.new_event(events.PROFILE_UPSERTED, payload, "test")


def _deleted(org_id: str, revision: int) -> events.Envelope:
    payload = {"org_id": org_id, "revision": revision, "cluster_id": CLUSTERS[org_id]}
    return events.new_event(events.PROFILE_DELETED, payload, "test")


@pytest.fixture
def world():
    repository, engine = FakeMatcherRepository(), FakeEngine()
    live = LiveMatcher(repository, engine, top_k=3, min_score=0.1, max_pending_per_org=8, feedback_strength=0.0)
    for org in CLUSTERS:
        assert live.handle(_upsert(org))
    return repository, engine, live


def _pending(repository: FakeMatcherRepository) -> dict[str, float]:
    return {p["pair_id"]: p["score"] for p in repository.pairs.values() if p["state"] == "pending"}


def test_a_profile_event_suggests_its_lists_pairs_reading_the_pairs_once(world):
    repository, engine, live = world
    engine.lists.update({"a": [("b", 0.6), ("c", 0.5), ("d", 0.05)], "b": [("a", 0.6)], "c": [("a", 0.5)]})
    repository.reads.clear()
    assert live.handle(_upsert("a", 2))
    assert _pending(repository) == {"a~b": 0.6, "a~c": 0.5}  # d is under the least score
    assert [e.event_type for e in repository.events] == [events.MATCH_SUGGESTED] * 2
    assert repository.reads == ["snapshot"]  # not one read per organisation whose list changed
    assert not live.handle(_upsert("a", 2)), "a replay changes nothing"
    assert len(repository.events) == 2


def test_what_a_written_event_leaves_behind_is_out_of_the_cyclic_collectors_reach(world):
    # the lists the engine keeps after an event are thousands of new tuples and dictionaries; frozen
    # once the change is written (as load() freezes the index), no collection walks them again
    repository, engine, live = world
    engine.lists.update({"a": [("b", 0.6)], "b": [("a", 0.6)]})
    kept = [("b", 0.6)]  # made before the write and kept, as the engine's lists are (a list is tracked)
    try:
        assert live.handle(_upsert("a", 2))
        assert gc.is_tracked(kept) and not any(o is kept for o in gc.get_objects())  # frozen: no generation has it
        assert not live.handle(_upsert("a", 2))  # a replay writes nothing
    finally:
        gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())


def test_a_reference_cycle_frozen_with_an_event_is_collected_within_the_period(world, monkeypatch):
    # a cycle that becomes garbage only after a freeze (a Kafka client's, say) would stay for good:
    # everything frozen is collected once in full every FROZEN_COLLECTED_EVERY_S
    import weakref

    from services.matcher import live as live_module

    _, engine, live = world
    engine.lists.update({"a": [("b", 0.6)], "b": [("a", 0.6)]})

    class Node:
        pass

    node = Node()
    node.self = node  # a reference cycle, alive while the event is written
    gone = weakref.ref(node)
    try:
        assert live.handle(_upsert("a", 2))
        del node  # garbage now, but frozen: no collection reaches it
        gc.collect()
        assert gone() is not None
        monkeypatch.setattr(live_module, "FROZEN_COLLECTED_EVERY_S", 0.0)
        assert live.handle(_upsert("a", 3))  # the period has passed: collected in full, then frozen again
        assert gone() is None
    finally:
        gc.unfreeze()


def test_a_pair_is_withdrawn_once_neither_list_holds_it_each_list_saying_so_when_planned(world):
    repository, engine, live = world
    engine.lists.update({"a": [("b", 0.6), ("d", 0.4)], "d": [("a", 0.4)]})
    assert live.handle(_upsert("a", 2))  # d's list names a: planned too
    assert repository.pairs["a~d"]["wanted_by"] == ["a", "d"]
    engine.lists.update({"a": [("b", 0.6)], "d": [("e", 0.3)]})
    engine.calls.clear()
    repository.reads.clear()
    assert live.handle(_upsert("a", 3))
    assert repository.pairs["a~d"]["state"] == "pending", "d's list held it when last planned"
    assert repository.pairs["a~d"]["wanted_by"] == ["d"]
    assert engine.calls == ["a"], "no partner's list is read"
    assert repository.reads == ["snapshot"], "the sides of the pairs let go are read with the snapshot"
    assert live.handle(_upsert("d", 2))  # d's own list planned: it lets a go too
    assert "a~d" not in repository.pairs, "withdrawn: its record is not kept"
    assert repository.events[-1].event_type == events.MATCH_WITHDRAWN
    assert repository.events[-1].payload["reason"] == domain.NO_LONGER_MATCHING


def test_deleting_an_organisation_withdraws_its_pending_pairs(world):
    repository, engine, live = world
    engine.lists.update({"a": [("b", 0.6), ("d", 0.4)], "b": [("a", 0.6)]})
    assert live.handle(_upsert("a", 2))
    assert live.handle(_deleted("a", 3))
    assert repository.pairs == {}, "withdrawn: no record is kept"
    withdrawn = [e for e in repository.events if e.event_type == events.MATCH_WITHDRAWN]
    assert {e.payload["pair_id"]: e.payload["reason"] for e in withdrawn} == {
        "a~b": domain.ORGANISATION_DELETED,
        "a~d": domain.ORGANISATION_DELETED,
    }
    assert "a" not in repository.profiles


def test_a_decided_pair_is_not_suggested_again_when_the_lists_change(world):
    repository, engine, live = world
    engine.lists.update({"a": [("b", 0.6)]})
    assert live.handle(_upsert("a", 2))
    review = ReviewService(repository, render=lambda reason, lang: "")
    review.decide("c-2", "marko", "a~b", "reject", "already_partners")
    engine.lists.update({"a": [("b", 0.9)]})
    assert live.handle(_upsert("a", 3))
    assert repository.pairs["a~b"]["state"] == "rejected"
    assert [e.event_type for e in repository.events].count(events.MATCH_SUGGESTED) == 1


@pytest.fixture
def pending_pair(world):
    repository, engine, live = world
    engine.lists.update({"a": [("b", 0.6)]})
    assert live.handle(_upsert("a", 2))
    repository.reads.clear()
    return repository, ReviewService(repository, render=lambda reason, lang: "")


def test_a_decision_given_twice_is_recorded_once_and_answered_both_times(pending_pair):
    repository, review = pending_pair
    first = review.decide("c-1", "anna", "a~b", "approve")
    again = review.decide("c-1", "anna", "a~b", "approve")
    assert first["decisions"] == again["decisions"] and again["state"] == "pending"
    assert repository.reads == ["pair", "pair"]  # one read each: no read before, none after
    assert review.decide("c-2", "marko", "a~b", "approve")["state"] == "approved"
    assert review.decide("c-1", "anna", "a~b", "approve")["state"] == "approved"
    decided = [e for e in repository.events if e.event_type in (events.MATCH_APPROVED, events.MATCH_REJECTED)]
    assert [e.event_type for e in decided] == [events.MATCH_APPROVED]


def test_a_different_decision_is_refused_with_the_pair(pending_pair):
    _, review = pending_pair
    review.decide("c-1", "anna", "a~b", "approve")
    with pytest.raises(DecisionRefused) as refused:
        review.decide("c-1", "anna", "a~b", "reject", "not_relevant")
    assert refused.value.reason == "already_decided" and refused.value.pair is not None
    with pytest.raises(DecisionRefused) as foreign:
        review.decide("c-3", "besa", "a~b", "approve")
    assert foreign.value.reason == "not_found"


def test_a_decision_that_lost_a_race_is_decided_again_on_the_pair_as_the_other_left_it(pending_pair):
    repository, review = pending_pair

    def the_other_cluster_rejects(store: FakeMatcherRepository) -> None:
        for held in store.pair_for_update("a~b"):
            with held:
                held.save(domain.decide(held.pair, domain.Ballot("c-2", "marko", "reject", "no_capacity"), 50).saved)

    repository.meanwhile.append(the_other_cluster_rejects)
    with pytest.raises(DecisionRefused) as refused:
        review.decide("c-1", "anna", "a~b", "approve")
    assert refused.value.reason == "not_pending" and refused.value.pair["state"] == "rejected"
    decided = [e for e in repository.events if e.event_type in (events.MATCH_APPROVED, events.MATCH_REJECTED)]
    assert [e.event_type for e in decided] == [events.MATCH_REJECTED]
    assert "c-1" not in repository.pairs["a~b"]["decisions"]


def test_an_approval_taken_back_lets_the_cluster_decide_again(pending_pair):
    repository, review = pending_pair
    review.decide("c-1", "anna", "a~b", "approve")
    assert review.withdraw_approval("c-1", "anna", "a~b")["decisions"] == {}
    with pytest.raises(DecisionRefused) as nothing:
        review.withdraw_approval("c-1", "anna", "a~b")
    assert nothing.value.reason == "nothing_to_withdraw"
    assert review.decide("c-1", "anna", "a~b", "reject", "not_relevant")["state"] == "rejected"
    assert repository.dislikes == {"a": {"b"}}
