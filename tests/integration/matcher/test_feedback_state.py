"""What rejections teach, as the matcher's Redis state keeps it: a "not relevant" rejection records,
with the decision, that the rejecting cluster's organisation does not want the partner (other
reasons record nothing); decisions made before this was kept are indexed once on start; the lists
planned again after a rejection are applied once."""

from __future__ import annotations

import pytest

from services.matcher.adapters.redis_state import DISLIKES, DISLIKES_BUILT, PairWrite, ProfileChange
from services.matcher.domain import ListsPlan

pytestmark = pytest.mark.integration


def _suggest(state, org_a, org_b, revision=1):
    pair_id = f"{org_a}~{org_b}"
    state.apply(
        ProfileChange(
            org_a, revision, {"org_id": org_a}, upserts=[PairWrite(pair_id, org_a, org_b, "c-a", "c-b", 0.5, [])]
        )
    )
    return pair_id


def test_a_not_relevant_rejection_records_what_the_rejecting_side_does_not_want(matcher_state):
    not_relevant = _suggest(matcher_state, "a1", "b1")
    partners = _suggest(matcher_state, "a2", "b2")
    matcher_state.decide(not_relevant, "c-b", "marko", "reject", "not_relevant")
    matcher_state.decide(partners, "c-a", "anna", "reject", "already_partners")
    assert matcher_state.dislikes_of(["a1", "b1", "a2", "b2"]) == {"b1": ["a1"]}


def test_rejections_decided_before_are_indexed_once_on_start(matcher_state, redis_client):
    pair_id = _suggest(matcher_state, "a1", "b1")
    matcher_state.decide(pair_id, "c-a", "anna", "reject", "not_relevant")
    redis_client.delete(DISLIKES + "a1", DISLIKES_BUILT)  # as a pair decided before the index existed
    matcher_state.build_dislikes()
    assert matcher_state.dislikes_of(["a1"]) == {"a1": ["b1"]}
    redis_client.delete(DISLIKES + "a1")
    matcher_state.build_dislikes()  # built already: not scanned again
    assert matcher_state.dislikes_of(["a1"]) == {}


def test_the_lists_planned_after_a_rejection_are_applied_once(matcher_state):
    rejected = _suggest(matcher_state, "a1", "b1")
    lowered = _suggest(matcher_state, "a1", "b2", revision=2)
    matcher_state.decide(rejected, "c-a", "anna", "reject", "not_relevant")
    fresh = PairWrite("a1~b3", "a1", "b3", "c-a", "c-b", 0.4, [])
    assert matcher_state.apply_lesson(rejected, ListsPlan([fresh], [(lowered, "no_longer_matching")]))
    assert matcher_state.get_pair(lowered) is None, "withdrawn: its record is not kept"
    assert matcher_state.pending_of_org("a1") == {"a1~b3": 0.4}
    size = matcher_state.outbox.size()
    assert matcher_state.lesson_applied(rejected)
    assert not matcher_state.apply_lesson(
        rejected, ListsPlan([PairWrite("a1~b4", "a1", "b4", "c-a", "c-b", 0.3, [])], [])
    )
    assert matcher_state.outbox.size() == size and matcher_state.get_pair("a1~b4") is None
