"""A run of owned profile events (SharedIndex.handle_owned_run) on a real redis-server, its plan's
snapshot read under the write's WATCH in the round trip of the write's own reads
(RedisMatcherState.plan_and_apply_profiles): the same runs write the same pairs, events, revisions
and profiles as when the snapshot was read apart, and a pair written between the read and the write
makes the run planned again from fresh reads."""

from __future__ import annotations

import random

import orjson
import pytest
import redis

from partnermatch import events
from partnermatch.messaging import Record
from services.matcher.adapters.redis_state import AWAITING, PAIR, PROFILE, REVISIONS, P, RedisMatcherState
from services.matcher.engine import MatchEngine, load_lexicon
from services.matcher.live import LiveMatcher
from services.matcher.table import SharedIndex
from tests.unit.matcher.test_folded_reads import _profiles

pytestmark = pytest.mark.integration


class UnfoldedState(RedisMatcherState):
    """The store as before the fold: the plan reads the snapshot, then the write reads under its WATCH."""

    plan_and_apply_profiles = None


class CountingState(RedisMatcherState):
    """The store, counting the runs written by plan_and_apply_profiles and the plans made there;
    `meanwhile` (if set) runs once, after the first plan's reads and before its write."""

    folded = 0
    plans = 0
    meanwhile = None

    def plan_and_apply_profiles(self, profiles, org_ids, pair_ids, sides_of, partners, plan):
        def counted(snapshot):
            self.plans += 1
            change = plan(snapshot)
            if self.meanwhile is not None:
                meanwhile, self.meanwhile = self.meanwhile, None
                meanwhile()
            return change

        done = super().plan_and_apply_profiles(profiles, org_ids, pair_ids, sides_of, partners, counted)
        self.folded += done is not None
        return done


def _stored(client):
    """Every pair as stored and every event in the outbox (times and ids left out), the revisions,
    the profiles applied and the lists waiting for a partner."""
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
    awaiting = {k: client.smembers(k) for k in client.scan_iter(AWAITING + "*")}
    return pairs, outbox, client.hgetall(REVISIONS), profiles, awaiting


def _shared(state) -> SharedIndex:
    live = LiveMatcher(state, MatchEngine(load_lexicon()), top_k=5, min_score=0.0, max_pending_per_org=4)
    return SharedIndex(live, wait_s=5)


def _index(shared: SharedIndex, envelopes) -> None:
    for offset, envelope in enumerate(envelopes):
        shared.index_record(Record("profiles", 0, offset, envelope.payload["org_id"], events.encode(envelope)))


def _world(state, before_second_round=None):
    """test_folded_reads' profiles indexed all at once, then applied in runs of three (so lists want
    partners not applied yet, which wait in AWAITING); two pending pairs rejected; every profile
    changed again and applied one run at a time (`before_second_round` called first); two deleted."""
    shared = _shared(state)
    profiles = _profiles()
    _index(shared, profiles)
    for start in range(0, len(profiles), 3):
        shared.handle_owned_run(profiles[start : start + 3])
    for pair_id in sorted(state.pending_of_org("seeker-0"))[:2]:
        state.decide(pair_id, "c-seekers", "anna", "reject", "different_markets")
    if before_second_round is not None:
        before_second_round(shared)
    rng = random.Random(3)
    again = rng.sample(profiles, len(profiles))
    for envelope in again:
        envelope.payload["revision"] = 2
        envelope.payload["capabilities"] += " Also exporting."
    for start in range(0, len(again), 2):
        run = again[start : start + 2]
        _index(shared, run)
        assert shared.handle_owned_run(run) == {e.payload["org_id"] for e in run}
        assert shared.handle_owned_run(run) == set(), "a replay changes nothing"
    gone = [
        events.new_event(events.PROFILE_DELETED, {"org_id": org, "revision": 3, "cluster_id": cluster}, "t")
        for org, cluster in (("fam0-03", "c-0"), ("seeker-2", "c-seekers"))
    ]
    _index(shared, gone)
    assert shared.handle_owned_run(gone) == {"fam0-03", "seeker-2"}


def _stored_after(redis_server, db, kind, **world):
    client = redis.Redis.from_url(redis_server.url, db=db)
    client.flushdb()
    state = kind(client)
    _world(state, **world)
    stored = _stored(client)
    client.flushdb()
    client.close()
    return state, stored


def test_runs_with_the_snapshot_read_under_the_write_write_what_the_reads_apart_wrote(redis_server):
    _, apart = _stored_after(redis_server, 1, UnfoldedState)
    state, folded = _stored_after(redis_server, 2, CountingState)
    assert state.folded > 0 and state.plans == state.folded, "every run went the folded way, each planned once"
    assert folded[0] == apart[0]
    assert any(p["state"] == "rejected" for p in folded[0].values())
    assert any(p["state"] == "pending" for p in folded[0].values())
    assert folded[1] == apart[1]
    assert folded[2:] == apart[2:]


def test_a_pair_written_between_the_read_and_the_write_plans_the_run_again(redis_server):
    """A coordinator rejects one of seeker-1's pending pairs after the first run of the second round
    read the pairs, before it is written: EXEC fails, and the run is planned again from fresh reads,
    so it writes what a run planned after the rejection writes."""
    rejected = {}

    def reject(state):
        pair_id = sorted(state.pending_of_org("seeker-1"))[0]
        rejected["id"] = pair_id
        state.decide(pair_id, "c-seekers", "bo", "reject", "already_partners")

    def reject_before(shared):
        reject(shared.live.state)

    _, before = _stored_after(redis_server, 1, UnfoldedState, before_second_round=reject_before)
    client = redis.Redis.from_url(redis_server.url, db=2)
    client.flushdb()
    state = CountingState(client)
    other = RedisMatcherState(redis.Redis.from_url(redis_server.url, db=2))

    def arm(shared):
        state.meanwhile = lambda: reject(other)

    _world(state, before_second_round=arm)
    raced = _stored(client)
    client.flushdb()
    client.close()
    other.r.close()
    assert state.plans == state.folded + 1, "the raced run was planned twice, every other once"
    assert raced[0][(PAIR + rejected["id"]).encode()]["state"] == "rejected"
    assert raced[0] == before[0]
    assert raced[1] == before[1]
    assert raced[2:] == before[2:]
