"""The rejections and the snapshot a profile event's plan reads, in one round trip on a real
redis-server: what dislikes_of and snapshot answer one after the other, also when the server has
lost its scripts (SCRIPT FLUSH) or a list is empty."""

from __future__ import annotations

import random

import orjson
import pytest
import redis

from partnermatch import events
from services.matcher import domain
from services.matcher.adapters.redis_state import (
    PAIR,
    PROFILE,
    REVISIONS,
    P,
    PairWrite,
    ProfileChange,
    RedisMatcherState,
)
from services.matcher.engine import MatchEngine, load_lexicon
from services.matcher.live import LiveMatcher

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


class TwoReadsState(RedisMatcherState):
    """The store as it was before its reads were folded: a plan reads the rejections, then the
    snapshot, and the write reads the pairs under its WATCH, each a round trip."""

    dislikes_and_snapshot = None
    apply_planned = None


def _stored(client):
    """Every pair as stored and every event in the outbox (times and ids left out), the revisions
    and the profiles applied."""
    pairs = {}
    for key in client.scan_iter(PAIR + "*"):
        record = orjson.loads(client.get(key))
        for decision in record["decisions"].values():
            decision.pop("decided_at")
        pairs[key] = {k: v for k, v in record.items() if not k.endswith("_ms")}
    outbox = []
    for _, fields in client.xrange(P + "outbox"):
        event = orjson.loads(fields[b"value"])
        for decision in event["payload"].get("decisions", []):
            decision.pop("decided_at")
        outbox.append((event["event_type"], event["payload"]))
    profiles = {k: orjson.loads(client.get(k)) for k in client.scan_iter(PROFILE + "*")}
    for profile in profiles.values():
        profile.pop("updated_at")  # each run made its events anew
    return pairs, outbox, client.hgetall(REVISIONS), profiles


def _world(state):
    """test_folded_reads' events through a live matcher on `state`: profiles, rejections taught,
    every profile changed again, two deleted."""
    from tests.unit.matcher.test_folded_reads import _profiles

    live = LiveMatcher(state, MatchEngine(load_lexicon()), top_k=5, min_score=0.0, max_pending_per_org=4)
    profiles = _profiles()
    for envelope in profiles:
        assert live.handle(envelope)
    for pair_id in sorted(state.pending_of_org("seeker-0"))[:2]:
        record = state.decide(pair_id, "c-seekers", "anna", "reject", "not_relevant")
        assert live.handle_decision(events.new_event(events.MATCH_REJECTED, domain.decision_event(record).payload, "t"))
    rng = random.Random(3)
    for envelope in rng.sample(profiles, len(profiles)):
        envelope.payload["revision"] = 2
        envelope.payload["capabilities"] += " Also exporting."
        assert live.handle(envelope)
        assert not live.handle(envelope), "a replay changes nothing"
    for org, cluster in (("fam0-03", "c-0"), ("seeker-2", "c-seekers")):
        payload = {"org_id": org, "revision": 3, "cluster_id": cluster}
        deleted = events.new_event(events.PROFILE_DELETED, payload, "t")
        assert live.handle(deleted)


def test_a_profile_events_folded_reads_write_what_the_reads_apart_wrote(redis_server):
    stored = []
    for db, kind in ((1, TwoReadsState), (2, RedisMatcherState)):
        client = redis.Redis.from_url(redis_server.url, db=db)
        client.flushdb()
        _world(kind(client))
        stored.append(_stored(client))
        client.flushdb()
        client.close()
    apart, folded = stored
    assert folded[0] == apart[0] and any(p["state"] == "rejected" for p in folded[0].values())
    assert folded[1] == apart[1]
    assert folded[2:] == apart[2:]


class CountingState(RedisMatcherState):
    """The store, counting the events written through apply_planned (one transaction, its reads
    in one round trip)."""

    planned = 0

    def apply_planned(self, *args, **kwargs):
        done = super().apply_planned(*args, **kwargs)
        self.planned += done is not None
        return done


def test_most_profile_events_are_planned_and_written_with_one_read(redis_client):
    state = CountingState(redis_client)
    _world(state)
    # of two rounds of profile events and two deletions; those whose lists the rejections bear on
    # (seeker-0's and its partners') are planned again apart
    assert state.planned > (2 * len(_profiles_of_world()) + 2) / 2


def _profiles_of_world():
    from tests.unit.matcher.test_folded_reads import _profiles

    return _profiles()


def test_a_pair_written_between_the_read_and_the_write_plans_the_event_again(matcher_state, redis_client):
    other = RedisMatcherState(redis_client)
    _suggest(other, "a1", "b1", 0.5)
    snapshots = []

    def plan(dislikes, snapshot):
        snapshots.append(snapshot)
        if len(snapshots) == 1:  # another writer, after this read and before this write
            _suggest(other, "a1", "b2", 0.4, revision=2)
        write = PairWrite("a1~b3", "a1", "b3", "c-a", "c-b", 0.3, [], frozenset({"a1"}), frozenset({"a1"}))
        return ProfileChange("a1", 3, {"org_id": "a1"}, upserts=[write])

    change, applied = matcher_state.apply_planned("a1", ["a1"], ["a1"], ["a1~b3"], ["a1"], plan)
    assert applied and len(snapshots) == 2
    assert snapshots[0].pending["a1"] == {"a1~b1": 0.5}
    assert snapshots[1].pending["a1"] == {"a1~b2": 0.4, "a1~b1": 0.5}
    assert matcher_state.pending_of_org("a1") == {"a1~b3": 0.3, "a1~b2": 0.4, "a1~b1": 0.5}
    assert matcher_state.applied_revision("a1") == 3
    # the same revision again: nothing written, the change answered as not applied
    size = matcher_state.outbox.size()
    assert matcher_state.apply_planned("a1", [], ["a1"], [], [], plan) == (change, False)
    assert matcher_state.outbox.size() == size


def test_a_plan_that_rejections_bear_on_writes_nothing(matcher_state):
    pair_id = _suggest(matcher_state, "a1", "b1", 0.5)
    matcher_state.decide(pair_id, "c-b", "marko", "reject", "not_relevant")
    seen = []

    def plan(dislikes, snapshot):
        seen.append(dislikes)
        return

    size = matcher_state.outbox.size()
    assert matcher_state.apply_planned("a9", ["a1", "b1"], ["a1"], [], ["a1"], plan) is None
    assert seen == [{"b1": ["a1"]}] and matcher_state.outbox.size() == size
    assert matcher_state.applied_revision("a9") == 0
