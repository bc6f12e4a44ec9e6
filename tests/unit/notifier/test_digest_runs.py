"""The notifier's consumer notes suggestions and withdrawals for the coordinators' digests in runs
(DecisionRecorder.handle_run, one round trip to the ledger a run): the ledger must end as it ends
when each event is handled alone, whatever the order of suggestions, withdrawals and decisions, and
also on a server that lost its scripts. A real redis-server (the `redis_client` fixture)."""

from __future__ import annotations

import random

from partnermatch import events
from services.notifier.adapters.redis_ledger import RedisDeliveryLedger
from services.notifier.entrypoints.consumer import Notifier
from services.notifier.services import DecisionRecorder

CLUSTERS = ["pl-silesia-ict", "rs-vojvodina-ict", "al-tirana-creative"]
ORGS = {"a": CLUSTERS[0], "b": CLUSTERS[1], "c": CLUSTERS[2], "d": CLUSTERS[1]}


def _event(rng: random.Random) -> events.Envelope:
    org_a, org_b = sorted(rng.sample(sorted(ORGS), 2))
    payload = {
        "pair_id": events.pair_id(org_a, org_b),
        "org_a": org_a,
        "org_b": org_b,
        "cluster_a": ORGS[org_a],
        "cluster_b": ORGS[org_b],
    }
    kind = rng.choices(["suggested", "withdrawn", "approved", "rejected"], weights=[6, 3, 1, 1])[0]
    if kind == "suggested":
        event_type = events.MATCH_SUGGESTED
        payload |= {"score": round(rng.random(), 3), "reasons": []}
    elif kind == "withdrawn":
        event_type = events.MATCH_WITHDRAWN
        payload["reason"] = "no_longer_matching"
    else:
        event_type = events.MATCH_APPROVED if kind == "approved" else events.MATCH_REJECTED
        decision = "approve" if kind == "approved" else "reject"
        payload |= {
            "score": 0.5,
            "reasons": [],
            "decisions": [
                {
                    "cluster_id": payload[side],
                    "coordinator": "x",
                    "decision": decision,
                    "decided_at": "2026-12-06T10:00:00+00:00",
                }
                for side in ("cluster_a", "cluster_b")
            ],
        }
    return events.decode(events.encode(events.new_event(event_type, payload, "test")))


def _state(client, prefix: str) -> dict:
    """Every key of the ledger's digests, by its name without the prefix, with its value."""
    found = {}
    for key in sorted(client.scan_iter(match=prefix + "digest:*")):
        name = key.decode()[len(prefix) :]
        kind = client.type(key).decode()
        found[name] = {"hash": client.hgetall, "set": client.smembers}[kind](key)
    return found


def _runs(envelopes: list[events.Envelope]) -> list[list[events.Envelope]]:
    """The events as the consumer hands them over: runs of suggestions and withdrawals, the others alone."""
    runs: list[list[events.Envelope]] = []
    for envelope in envelopes:
        if (
            envelope.event_type in DecisionRecorder.RUN_TYPES
            and runs
            and runs[-1][0].event_type in DecisionRecorder.RUN_TYPES
        ):
            runs[-1].append(envelope)
        else:
            runs.append([envelope])
    return runs


def test_runs_leave_the_digests_as_events_one_by_one_do(redis_client):
    for seed in range(12):
        rng = random.Random(seed)
        envelopes = [_event(rng) for _ in range(60)]
        alone = RedisDeliveryLedger(redis_client, prefix=f"{{alone{seed}}}:")
        together = RedisDeliveryLedger(redis_client, prefix=f"{{runs{seed}}}:")
        one_by_one, in_runs = (
            DecisionRecorder(alone, clock=lambda: 1000.0),
            DecisionRecorder(together, clock=lambda: 1000.0),
        )
        for envelope in envelopes:
            one_by_one.handle(envelope)
        sent = []
        together._direct.round_trip = _counting(together._direct.round_trip, sent)
        runs, runs_sent = _runs(envelopes), []
        for run in runs:
            if run[0].event_type in DecisionRecorder.RUN_TYPES:
                before = len(sent)
                in_runs.handle_run(run)
                runs_sent.append(len(sent) - before)
            else:
                in_runs.handle(run[0])
        assert _state(redis_client, f"{{runs{seed}}}:") == _state(redis_client, f"{{alone{seed}}}:")
        if together._direct._pool is not None:  # a single server (a cluster client: one by one)
            assert runs_sent and set(runs_sent) == {1}, "one round trip a run"
        assert in_runs.counts["suggested"] == one_by_one.counts["suggested"] > 0
        assert in_runs.counts["withdrawn"] == one_by_one.counts["withdrawn"] > 0


def _counting(round_trip, sent: list):
    def counted(commands):
        sent.append(len(commands))
        return round_trip(commands)

    return counted


def test_a_server_that_lost_the_scripts_has_them_loaded_and_the_run_noted(redis_client):
    rng = random.Random(99)
    envelopes = [e for e in (_event(rng) for _ in range(200)) if e.event_type in DecisionRecorder.RUN_TYPES][:40]
    alone = RedisDeliveryLedger(redis_client, prefix="{alone}:")
    one_by_one = DecisionRecorder(alone, clock=lambda: 5.0)
    for envelope in envelopes:
        one_by_one.handle(envelope)
    redis_client.script_flush()
    together = RedisDeliveryLedger(redis_client, prefix="{runs}:")
    sent: list[int] = []
    together._direct.round_trip = _counting(together._direct.round_trip, sent)
    DecisionRecorder(together, clock=lambda: 5.0).handle_run(envelopes)
    assert _state(redis_client, "{runs}:") == _state(redis_client, "{alone}:")
    if together._direct._pool is not None:  # a single server: refused for want of the scripts, then sent again
        assert sent == [len(envelopes), len(envelopes)]
    new = _state(redis_client, "{runs}:")
    assert any(name.startswith("digest:new:") for name in new), "some pairs wait for a digest"


def test_the_notifier_hands_its_consumer_the_suggestions_and_withdrawals_in_runs():
    batch = Notifier.batch.fget(type("N", (), {"recorder": DecisionRecorder(None)})())  # type: ignore[union-attr]
    assert batch.event_types == {events.MATCH_SUGGESTED, events.MATCH_WITHDRAWN}
    assert batch.handle.__func__ is DecisionRecorder.handle_run
