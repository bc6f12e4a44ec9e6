"""The rejections and the snapshot a profile event's plan reads, in one round trip on a real
redis-server: what dislikes_of and snapshot answer one after the other, also when the server has
lost its scripts (SCRIPT FLUSH) or a list is empty."""

from __future__ import annotations

import pytest

from services.matcher.adapters.redis_state import PairWrite, ProfileChange

pytestmark = pytest.mark.integration


def _suggest(state, org_a, org_b, score, revision=1):
    pair_id = f"{org_a}~{org_b}"
    write = PairWrite(pair_id, org_a, org_b, "c-a", "c-b", score, [])
    state.apply(ProfileChange(org_a, revision, {"org_id": org_a}, upserts=[write]))
    return pair_id


@pytest.mark.parametrize("flushed", [False, True])
def test_rejections_and_snapshot_read_together_are_what_two_reads_answer(matcher_state, redis_client, flushed):
    _suggest(matcher_state, "a1", "b1", 0.5)
    _suggest(matcher_state, "a1", "b2", 0.4, revision=2)
    _suggest(matcher_state, "a2", "b1", 0.3)
    decided = _suggest(matcher_state, "a2", "b2", 0.2, revision=2)
    matcher_state.decide(decided, "c-b", "marko", "reject", "not_relevant")
    asked = (["a1", "a2", "b1", "b2", "x"], ["a1", "b1", "b2", "x"], ["a1~b1", decided, "a1~x"], ["a1"])
    apart = matcher_state.dislikes_of(asked[0]), matcher_state.snapshot(*asked[1:3], sides_of=asked[3])
    assert apart[0] == {"b2": ["a2"]} and apart[1].sides == {"a1~b2": frozenset({"a1", "b2"})}
    if flushed:
        redis_client.script_flush()
    assert matcher_state.dislikes_and_snapshot(*asked[:3], sides_of=asked[3]) == apart
    assert matcher_state.dislikes_and_snapshot([], [], []) == ({}, matcher_state.snapshot([], []))
