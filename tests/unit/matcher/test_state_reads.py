"""What a plan of the lists reads of the matcher's Redis, in one round trip each: the pending pairs
and decided ones with the sides of the pairs a plan may let go (snapshot), and an event run's
revisions with the lists waiting for its organisations. On a real redis-server."""

from __future__ import annotations

import pytest
import redis

from partnermatch import events
from services.matcher import domain
from services.matcher.adapters import redis_state
from services.matcher.adapters.redis_state import PairWrite, ProfileChange, ProfilesChange, RedisMatcherState

pytestmark = pytest.mark.integration


def _write(a: str, b: str, score: float, wanted_by: set[str]) -> PairWrite:
    return PairWrite(events.pair_id(a, b), a, b, "c-" + a, "c-" + b, score, [], frozenset(wanted_by), frozenset({a, b}))


def _round_trips(monkeypatch) -> list[bytes]:
    """What is sent to the server from now on, one entry per round trip."""
    sent: list[bytes] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def record(self, command, check_health=True):
        sent.append(b"".join(command) if isinstance(command, list) else command)
        return send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", record)
    return sent


def test_a_snapshot_gives_the_sides_of_the_pending_pairs_a_plan_may_let_go_in_the_same_round_trip(
    redis_client, monkeypatch
):
    state = RedisMatcherState(redis_client)
    redis_client.sadd(redis_state.PROFILES, "a", "b", "c", "d", "e")
    upserts = [_write("a", "b", 0.5, {"a"}), _write("a", "c", 0.4, {"a", "c"}), _write("d", "e", 0.3, {"d"})]
    assert state.apply(ProfileChange("a", 1, {"org_id": "a", "revision": 1}, upserts=upserts))
    legacy = {k: v for k, v in state.get_pair("a~c").items() if k != domain.WANTED_BY}
    redis_client.set(redis_state.PAIR + "a~c", redis_state._json(legacy))  # recorded before the sides were
    state.snapshot(["a"], [], sides_of=["a"])  # the script loaded, as after a matcher's first event
    sent = _round_trips(monkeypatch)

    snapshot = state.snapshot(["a", "b", "d", "x"], ["a~b", "a~x"], sides_of=["a", "x"])

    assert len(sent) == 1
    assert snapshot.pending == {"a": {"a~c": 0.4, "a~b": 0.5}, "b": {"a~b": 0.5}, "d": {"d~e": 0.3}, "x": {}}
    assert snapshot.decided == frozenset()
    # a~b is asked about (the plan wants it), d~e is not a pair of the lists planned
    assert snapshot.sides == {"a~c": frozenset({"a", "c"})}
    assert state.snapshot(["a"], []).sides == {}, "none asked for, none read"


def test_an_event_runs_revisions_the_lists_waiting_for_its_organisations_and_their_partners_are_one_round_trip(
    redis_client, monkeypatch
):
    state = RedisMatcherState(redis_client)
    redis_client.hset(redis_state.REVISIONS, mapping={"a": 3, "c": 1})
    redis_client.sadd(redis_state.AWAITING + "a", "p", "q")
    redis_client.sadd(redis_state.AWAITING + "b", "r")
    redis_client.zadd(redis_state.PENDING_BY_ORG + "a", {"a~x": 0.5, "a~y": 0.25})
    redis_client.zadd(redis_state.PENDING_BY_ORG + "c", {"b~c": 0.5})
    state.run_reads(["a"])  # the script loaded, as after a matcher's first event
    sent = _round_trips(monkeypatch)

    reads = state.run_reads(["a", "b", "c"])

    assert len(sent) == 1
    assert reads.revisions == {"a": 3, "c": 1}
    assert reads.waiting == {"a": {"p", "q"}, "b": {"r"}}
    assert reads.partners == {"a": {"x", "y"}, "c": {"b"}}
    empty = state.run_reads([])
    assert (empty.revisions, empty.waiting, empty.partners) == ({}, {}, {})


def test_a_run_applied_drops_the_lists_it_planned_from_awaiting_and_reads_those_left_in_its_transaction(
    redis_client, monkeypatch
):
    """The lists that waited for an organisation and were planned with its run wait no longer, and
    those that came to wait meanwhile are read, both in the run's MULTI/EXEC: the write is its read
    under WATCH and its EXEC, two round trips, none more for AWAITING."""
    state = RedisMatcherState(redis_client)
    redis_client.hset(redis_state.REVISIONS, "b", 2)
    redis_client.sadd(redis_state.AWAITING + "a", "x", "y", "z")
    redis_client.sadd(redis_state.AWAITING + "b", "w")
    run = ProfilesChange(
        {"a": (1, {"org_id": "a", "revision": 1}), "b": (2, {"org_id": "b", "revision": 2})},
        forget_waiting={"a": {"x", "y"}, "b": {"w"}},
    )
    sent = _round_trips(monkeypatch)

    done = state.apply_profiles(run)

    assert len(sent) == 2
    assert done.applied == {"a"}, "b's revision was applied before"
    assert done.waiting == {"a": {"z"}}, "z came to wait while the run was planned"
    assert redis_client.smembers(redis_state.AWAITING + "a") == {b"z"}
    assert redis_client.smembers(redis_state.AWAITING + "b") == {b"w"}, "a replayed organisation's are kept"
    again = state.apply_profiles(run)
    assert (again.applied, again.waiting) == (set(), {})
    assert redis_client.smembers(redis_state.AWAITING + "a") == {b"z"}
