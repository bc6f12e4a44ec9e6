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
