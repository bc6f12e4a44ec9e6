"""The matcher's writes of a profile event send their WATCH with their first read (one round trip):
a watched key changed before the MULTI/EXEC still makes them start again from the read, and a
connection lost on the way is dropped and the WATCH sent again on a new one. On a real redis-server."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from partnermatch import events
from services.matcher.adapters import redis_state
from services.matcher.adapters.redis_state import REVISIONS, PairWrite, ProfileChange, RedisMatcherState

pytestmark = pytest.mark.integration


def _pair(score: float) -> PairWrite:
    return PairWrite(events.pair_id("org_a", "org_b"), "org_a", "org_b", "c-a", "c-b", score, [])


def _change(revision: int, score: float) -> ProfileChange:
    return ProfileChange("org_a", revision, {"org_id": "org_a", "revision": revision}, upserts=[_pair(score)])


def test_a_watched_key_changed_after_the_read_makes_the_write_read_again(redis_client, monkeypatch):
    state = RedisMatcherState(redis_client)
    other = redis.Redis(connection_pool=redis_client.connection_pool)
    other.hset(REVISIONS, "org_b", 1)  # org_b's profile is applied: the pair is between known ones
    other.sadd(redis_state.PROFILES, "org_b")
    reads = []
    read = RedisMatcherState._read_watched

    def read_then_change(self, pipe, *args):
        found = read(self, pipe, *args)
        reads.append(found[0])
        if len(reads) == 1:  # another matcher applies org_a's revision 2 meanwhile
            other.hset(REVISIONS, "org_a", 2)
        return found

    monkeypatch.setattr(RedisMatcherState, "_read_watched", read_then_change)
    assert not state.apply(_change(1, 0.5)), "read again: revision 2 is applied, so revision 1 is not"
    assert reads == [[None], [b"2"]]
    assert state.get_pair(events.pair_id("org_a", "org_b")) is None
    assert state.apply(_change(3, 0.7))
    assert state.get_pair(events.pair_id("org_a", "org_b"))["score"] == 0.7
    assert state.applied_revision("org_a") == 3


def test_a_connection_lost_before_the_watch_is_read_is_sent_again_on_a_new_one(redis_client, monkeypatch):
    where = redis_client.connection_pool.connection_kwargs
    retrying = redis.Redis(host=where["host"], port=where["port"], retry=Retry(NoBackoff(), 2))  # as redis-py retries
    state = RedisMatcherState(retrying)
    sent = []
    send = redis.connection.AbstractConnection.send_packed_command

    def lose_the_first(self, command, check_health=True):
        if b"WATCH" in b"".join(command):
            sent.append(command)
            if len(sent) == 1:
                self.disconnect()
                raise redis.ConnectionError("lost")
        return send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", lose_the_first)
    assert state.apply(_change(1, 0.5))
    assert state.applied_revision("org_a") == 1
    assert len(sent) == 2  # the WATCH and its read, sent again


def test_a_connection_lost_without_retries_fails_the_write_and_the_next_one_is_written(redis_client, monkeypatch):
    state = RedisMatcherState(redis_client)  # no retries: the error is the caller's, as redis-py's own
    send = redis.connection.AbstractConnection.send_packed_command
    lost = []

    def lose_the_first(self, command, check_health=True):
        if not lost:
            lost.append(command)
            self.disconnect()
            raise redis.ConnectionError("lost")
        return send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", lose_the_first)
    with pytest.raises(redis.ConnectionError):
        state.apply(_change(1, 0.5))
    assert state.applied_revision("org_a") == 0
    assert state.apply(_change(1, 0.5))
    assert state.applied_revision("org_a") == 1


def test_a_command_refused_inside_the_transaction_is_raised_as_redis_py_raises_it(redis_client):
    state = RedisMatcherState(redis_client)
    redis_client.hset(REVISIONS, "org_b", 1)
    redis_client.sadd(redis_state.PROFILES, "org_b")
    redis_client.set(redis_state.PENDING_BY_ORG + "org_a", "not a sorted set")  # its ZADD fails in EXEC
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        state.apply(_change(1, 0.5))
    redis_client.delete(redis_state.PENDING_BY_ORG + "org_a")
    assert not state.apply(_change(1, 0.5)), "the other commands of the transaction were applied"
    assert state.apply(_change(2, 0.6))
    assert state.pending_of_org("org_a") == {events.pair_id("org_a", "org_b"): 0.6}


def test_a_transaction_with_nothing_new_writes_nothing_and_leaves_no_watch(redis_client):
    state = RedisMatcherState(redis_client)
    assert state.apply(_change(2, 0.5))
    assert not state.apply(_change(1, 0.9))  # an older revision
    assert state.get_pair(events.pair_id("org_a", "org_b"))["score"] == 0.5  # as revision 2 wrote it
    with redis_client.pipeline() as pipe:  # the pooled connection is not left watching anything
        pipe.watch(REVISIONS)
        pipe.multi()
        pipe.set("k", "v")
        assert pipe.execute() == [True]


def _known(client, *orgs):
    for org in orgs:
        client.hset(REVISIONS, org, 1)
        client.sadd(redis_state.PROFILES, org)


def test_a_decision_between_a_runs_read_and_its_write_makes_it_read_again_and_stays(redis_client, monkeypatch):
    state = RedisMatcherState(redis_client)
    _known(redis_client, "org_b")
    assert state.apply(_change(1, 0.5))
    pair_id = events.pair_id("org_a", "org_b")
    reads = []
    read = RedisMatcherState._read_watched

    def read_then_decide(self, pipe, *args):
        found = read(self, pipe, *args)
        reads.append(found[1].get(pair_id, {}).get("state"))
        if len(reads) == 1:  # a coordinator of c-b rejects the pair meanwhile
            RedisMatcherState(redis_client).decide(pair_id, "c-b", "marko", "reject", "not_relevant")
        return found

    monkeypatch.setattr(RedisMatcherState, "_read_watched", read_then_decide)
    assert state.apply(_change(2, 0.9))  # its new score would make the pair pending again
    assert reads == ["pending", "rejected"], "the run read the pair again after the decision"
    pair = state.get_pair(pair_id)
    assert pair["state"] == "rejected" and pair["score"] == 0.5
    assert state.pending_of_org("org_a") == {}


def test_a_run_watches_two_keys_however_many_pairs_it_writes(redis_client, monkeypatch):
    """redis-server 7.0's WATCH of n keys costs time quadratic in n (bench/redis_watch.py), every client
    waiting: a run of thousands of pairs must not name them all."""
    state = RedisMatcherState(redis_client)
    partners = [f"org_{i}" for i in range(300)]
    _known(redis_client, *partners)
    watched = []
    send = redis.connection.AbstractConnection.send_packed_command

    def record(self, command, check_health=True):
        packed = b"".join(command) if isinstance(command, list) else command
        if b"WATCH" in packed:
            watched.append(packed.split(b"\r\n"))
        return send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", record)
    upserts = [PairWrite(events.pair_id("org_x", p), "org_x", p, "c-x", "c-p", 0.5, []) for p in partners]
    assert state.apply(ProfileChange("org_x", 1, {"org_id": "org_x", "revision": 1}, upserts=upserts))
    assert len(state.pending_of_org("org_x")) == 300
    assert len(watched) == 1
    lines = watched[0]
    at = lines.index(b"WATCH")
    assert int(lines[at - 2][1:]) == 3, "WATCH and two keys"
    assert lines[at + 2 : at + 5 : 2] == [REVISIONS.encode(), redis_state.PAIRS_WRITTEN.encode()]


def test_every_write_of_a_pair_counts_in_pairs_written(redis_client):
    """What runs watch instead of each pair: a decision, a lesson and lists planned again each count."""
    state = RedisMatcherState(redis_client)
    _known(redis_client, "org_b")

    def written() -> int:
        return int(redis_client.get(redis_state.PAIRS_WRITTEN) or 0)

    assert state.apply(_change(1, 0.5)) and written() == 1
    pair_id = events.pair_id("org_a", "org_b")
    state.apply_pairs(redis_state.ListsPlan([_pair(0.6)], []))
    assert written() == 2 and state.get_pair(pair_id)["score"] == 0.6
    state.decide(pair_id, "c-a", "anna", "approve")
    assert written() == 3
    assert state.apply_lesson(pair_id, redis_state.ListsPlan([], []))
    assert written() == 4
    assert not state.apply(_change(1, 0.7)) and written() == 4, "nothing written, nothing counted"
