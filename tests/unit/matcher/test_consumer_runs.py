"""The consume loop's runs (partnermatch.messaging): a partition's events of the batch handler's types
go to it together, the others one by one, in the partition's order; the partitions of a poll that
hold only those types go as one run; what cannot be decoded goes to the dead-letter topic."""

from __future__ import annotations

import threading

from kafka import TopicPartition

from partnermatch import events
from partnermatch.messaging import BatchHandler, Record, _consume_partition, _consume_runs_together


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, topic: str, key: str, value: bytes, headers=()) -> None:
        self.sent.append((topic, value))


def _record(offset: int, envelope: events.Envelope | None) -> Record:
    value = events.encode(envelope) if envelope is not None else b"not json"
    return Record("profiles", 0, offset, "k", value)


def _profile(org_id: str) -> events.Envelope:
    return events.Envelope(events.PROFILE_DELETED, {"org_id": org_id, "revision": 1, "cluster_id": "c"}, "test")


def _match_rejected(pair_id: str) -> events.Envelope:
    payload = {"pair_id": pair_id, "org_a": "a", "org_b": "b", "cluster_a": "c1", "cluster_b": "c2", "score": 0.5}
    return events.new_event(events.MATCH_REJECTED, {**payload, "reasons": [], "decisions": []}, "test")


def test_runs_of_the_batch_types_go_together_and_the_other_events_between_them_in_order():
    handled: list[tuple[str, ...]] = []
    batch = BatchHandler(
        frozenset({events.PROFILE_DELETED}),
        lambda envelopes: handled.append(tuple(e.payload["org_id"] for e in envelopes)),
    )
    rejected = _match_rejected("a~b")
    handlers = {events.MATCH_REJECTED: lambda envelope: handled.append(("rejected", envelope.payload["pair_id"]))}
    records = [
        _record(0, _profile("a")),
        _record(1, None),
        _record(2, _profile("b")),
        _record(3, rejected),
        _record(4, _profile("c")),
    ]
    dead = DeadLetters()
    _consume_partition(
        records, handlers=handlers, batch=batch, publisher=dead, stop=threading.Event(), max_backoff_s=0.01
    )  # type: ignore[arg-type]
    assert handled == [("a", "b"), ("rejected", "a~b"), ("c",)]
    assert [topic for topic, _ in dead.sent] == ["profiles.dlq"]


def test_a_failing_run_is_retried_whole():
    attempts: list[int] = []

    def flaky(envelopes: list[events.Envelope]) -> None:
        attempts.append(len(envelopes))
        if len(attempts) == 1:
            raise RuntimeError("redis away")

    batch = BatchHandler(frozenset({events.PROFILE_DELETED}), flaky)
    _consume_partition(
        [_record(0, _profile("a")), _record(1, _profile("b"))],
        handlers={},
        batch=batch,
        publisher=DeadLetters(),  # type: ignore[arg-type]
        stop=threading.Event(),
        max_backoff_s=0.01,
    )
    assert attempts == [2, 2]


def test_the_partitions_of_a_poll_holding_only_the_batch_types_go_as_one_run_and_the_others_are_left():
    handled: list[tuple[str, ...]] = []
    batch = BatchHandler(
        frozenset({events.PROFILE_DELETED}),
        lambda envelopes: handled.append(tuple(e.payload["org_id"] for e in envelopes)),
    )
    first, second, mixed = (TopicPartition("profiles", p) for p in range(3))
    records = {
        first: [_record(0, _profile("a")), _record(1, None), _record(2, _profile("b"))],
        second: [_record(0, _profile("c"))],
        mixed: [_record(0, _profile("d")), _record(1, _match_rejected("a~b"))],
    }
    dead = DeadLetters()
    together = _consume_runs_together(records, batch, dead, threading.Event(), 0.01)  # type: ignore[arg-type]
    assert together == [first, second]
    assert handled == [("a", "b", "c")]  # each partition's in order
    assert [topic for topic, _ in dead.sent] == ["profiles.dlq"]
