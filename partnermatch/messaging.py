"""The Kafka adapter: the only module that imports `kafka`. Producers move bytes (callers encode).

Producers are created lazily (after gunicorn forks, never at import). Consumers follow one
loop: poll → decode (once, here) → the handler the consumer's table has for the event type
(retried with backoff, never swallowed) → commit; a message that cannot be decoded goes to
`<topic>.dlq` with its origin and the consumer moves on.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from partnermatch import events
from partnermatch.topics import dlq

if TYPE_CHECKING:
    from partnermatch.broker import BrokerWatch

logger = logging.getLogger(__name__)

# A consumer's table: event type -> what to do with a decoded event of that type.
EventHandlers = Mapping[str, Callable[[events.Envelope], object]]


@dataclass(frozen=True)
class BatchHandler:
    """What a consumer does with runs of events of these types, instead of one at a time: each run is
    the consecutive events of one partition in one poll, in order, handed over together (and
    retried together: the handler must be idempotent, as every handler is). The partitions of a poll
    that hold nothing else go as one run (each partition's events in order, one after another): a
    consumer that is behind works on all it polled at once."""

    event_types: frozenset[str]
    handle: Callable[[list[events.Envelope]], object]


SESSION_TIMEOUT_MS = 6000  # the broker minimum on real Kafka; a join takes half of it on Tansu
HEARTBEAT_INTERVAL_MS = 1000


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Assignment:
    """The partitions a group's member holds, by topic, and how many partitions each topic has."""

    held: Mapping[str, frozenset[int]]
    partitions: Mapping[str, int]


def key_partition(key: str, partitions: int) -> int:
    """The partition our publishers send a record with this key to (the client's default
    partitioner: murmur2 of the key, as Java's)."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class Delivered:
    topic: str
    partition: int
    offset: int


# A producer batch (one partition's records, sent together) may hold this much: a relay's batch of
# profiles (200 entries of 2-4 KB over 3 partitions) goes as one batch a partition. With
# kafka-python's 16 KiB one filled every few profiles, and each full one woke the sender and went
# as a request of its own: 90 CPU us a profile in the relay, 32 now. Within the 1 MiB a broker
# takes as one record batch by default (message.max.bytes); a request stays within
# max_request_size (1 MiB), as the producer drains batches up to it.
PRODUCE_BATCH_BYTES = 512 * 1024


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class KafkaPublisher:
    """Idempotent, acks=all producer; `publish*` return only once the broker has the records."""

    def __init__(self, bootstrap: str, client_id: str, send_timeout_s: float = 30.0) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._timeout = send_timeout_s
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self._bootstrap.split(","),
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=True,
                    retries=5,
                    max_in_flight_requests_per_connection=5,
                    linger_ms=5,
                    batch_size=PRODUCE_BATCH_BYTES,
                    request_timeout_ms=int(self._timeout * 1000),
                    max_block_ms=int(self._timeout * 1000),
                )
            return self._producer

    def publish(self, topic: str, key: str, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> Delivered:
        return self.publish_batch([Outgoing(topic, key, value, tuple(headers))])[0]

    def publish_batch(self, messages: Sequence[Outgoing]) -> list[Delivered]:
        """Send all, then wait for every acknowledgement; raises if any one failed."""
        producer = self._get()
        futures = [
            producer.send(m.topic, key=m.key.encode("utf-8"), value=m.value, headers=list(m.headers)) for m in messages
        ]
        producer.flush(timeout=self._timeout)
        delivered = []
        for future in futures:
            meta = future.get(timeout=self._timeout)
            delivered.append(Delivered(meta.topic, meta.partition, meta.offset))
        return delivered

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None

    def reset(self) -> None:
        """Drop a producer that failed, so the next publish starts a clean session."""
        with self._lock:
            if self._producer is not None:
                try:
                    self._producer.close(timeout=1)
                except Exception:  # noqa: BLE001 - it is being thrown away
                    logger.debug("closing a failed producer raised", exc_info=True)
                self._producer = None


def _record(msg) -> Record:
    return Record(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key.decode("utf-8", "replace") if msg.key is not None else None,
        value=msg.value,
        headers=tuple((k, v) for k, v in (msg.headers or [])),
    )


def read_partitions(
    bootstrap: str,
    topic: str,
    start: dict[int, int] | None = None,
    idle_timeout_s: float = 1.0,
    follow: bool = False,
    stop: threading.Event | None = None,
) -> Iterator[Record]:
    """Read a topic without a group: every partition from `start` (default: the beginning).

    Ends after `idle_timeout_s` without new records, unless `follow`. Offsets are only ever
    sought explicitly: some brokers (Tansu) answer "latest" wrongly.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=int(idle_timeout_s * 1000),
    )
    try:
        tps = _topic_partitions(consumer, topic, timeout_s=10)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, (start or {}).get(tp.partition, 0))
        while True:
            got_any = False
            for msg in consumer:
                got_any = True
                yield _record(msg)
                if stop is not None and stop.is_set():
                    return
            if not follow or (stop is not None and stop.is_set()):
                return
            if not got_any:
                continue
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group_id: str, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """Where consumer group `group_id` has committed on each partition of `topic` (partitions with
    no commit are left out). Joins no group."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=group_id,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout_s * 1000) + 1000,
    )
    try:
        offsets = {}
        for tp in _topic_partitions(consumer, topic, timeout_s):
            committed = consumer.committed(tp)
            if committed is not None and committed >= 0:
                offsets[tp.partition] = committed
        return offsets
    finally:
        consumer.close(autocommit=False)


def _topic_partitions(consumer: KafkaConsumer, topic: str, timeout_s: float) -> list[TopicPartition]:
    partitions = consumer.partitions_for_topic(topic) or set()
    deadline = time.monotonic() + timeout_s
    while not partitions and time.monotonic() < deadline:
        time.sleep(0.2)
        partitions = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(partitions)]


# How long a fetch may wait at the broker for records (kafka-python's fetch_max_wait_ms, 500 by
# default). Tansu answers a fetch of a partition with no new record only once this wait is over, even
# when records arrive meanwhile, so it is also how late a consumer may see a record on a quiet topic:
# measured on loopback, a record produced every 0.14 s reached a polling consumer p50 115 / max 235 ms
# later at 500, 23 / 53 at 100 and 6 / 9 at 10. Lower costs idle fetches: one consumer of 6 quiet
# partitions took 0.7 % of a core (and the broker 0.3 %) at 500, 3.3 % (2.0 %) at 50, 6.6 % (3.0 %)
# at 20. Consumers on a path someone waits on pass less (the matcher: MATCHER_FETCH_WAIT_MS).
FETCH_WAIT_MS = 500


class TableReader:
    """Reads a whole topic as a table, the way Kafka Streams keeps a global table: every partition,
    no group, from `start` (partition -> offset, default the beginning), following it until told
    to stop. `apply(record)` runs for each record in partition order and must be idempotent; an
    error in it is retried with backoff, as run_consumer retries a handler.

    With a `watch`, a broker that lost its state makes the reader start again from the beginning
    of the refilled topic, as run_consumer does (reading twice is safe; skipping is not)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        apply: Callable[[Record], None],
        *,
        client_id: str,
        start: dict[int, int] | None = None,
        watch: BrokerWatch | None = None,
        max_backoff_s: float = 30.0,
        poll_timeout_ms: int = 200,
        fetch_wait_ms: int = FETCH_WAIT_MS,
    ) -> None:
        self.bootstrap, self.topic, self.apply, self.client_id = bootstrap, topic, apply, client_id
        self.fetch_wait_ms = fetch_wait_ms
        self.start = dict(start or {})
        self.watch = watch
        self.max_backoff_s = max_backoff_s
        self.poll_timeout_ms = poll_timeout_ms

    def run(self, stop: threading.Event) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap.split(","),
            client_id=self.client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
            fetch_max_wait_ms=self.fetch_wait_ms,
        )
        try:
            tps = _topic_partitions(consumer, self.topic, timeout_s=30.0)
            if not tps:
                raise KafkaError(f"topic {self.topic} has no partitions")
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, self.start.get(tp.partition, 0))
            epoch = _current_epoch(self.watch)
            start = ",".join(f"{p}:{o}" for p, o in sorted(self.start.items()))
            logger.info("table reader started", extra={"topic": self.topic, "partitions": len(tps), "from": start})
            while not stop.is_set():
                batch = consumer.poll(timeout_ms=self.poll_timeout_ms)
                current = _current_epoch(self.watch)
                if current is not None and epoch is not None and current != epoch:
                    logger.error(
                        "the broker lost its state under this table reader: reading the refilled "
                        "topic from the beginning",
                        extra={"topic": self.topic, "epoch": current},
                    )
                    consumer.seek_to_beginning(*tps)
                    epoch = current
                    continue
                epoch = current or epoch
                for messages in batch.values():
                    for msg in messages:
                        record = _record(msg)
                        _handle_with_retry(functools.partial(self.apply, record), record, stop, self.max_backoff_s)
                        if stop.is_set():
                            return
        finally:
            consumer.close(autocommit=False)
            logger.info("table reader stopped", extra={"topic": self.topic})


class HandlerFailed(Exception):
    """Raised by the consumer loop only when told to stop while a handler kept failing."""


def run_consumer(
    *,
    bootstrap: str,
    topics: Sequence[str],
    group_id: str,
    client_id: str,
    handlers: EventHandlers,
    publisher: KafkaPublisher,
    stop: threading.Event,
    max_backoff_s: float = 30.0,
    poll_timeout_ms: int = 500,
    on_idle: Callable[[], None] | None = None,
    watch: BrokerWatch | None = None,
    on_assignment: Callable[[Assignment], None] | None = None,
    batch: BatchHandler | None = None,
    max_poll_records: int = 200,
    fetch_wait_ms: int = FETCH_WAIT_MS,
) -> None:
    """The consume loop every service uses; `on_assignment` is told the partitions this member
    holds whenever they change (a rebalance); the events of `batch`'s types go to it in runs (a
    consumer that is behind works on many at once, up to `max_poll_records`), the others to
    `handlers` one by one, in the order of their partition.

    Each record is decoded once (`events.decode`); one that can never be processed goes to the
    DLQ. The decoded envelope goes to `handlers[event_type]`, which runs until it succeeds, with
    exponential backoff and jitter between attempts; an event type the table lacks is skipped
    (and committed). Offsets are committed only after the handler returned, that is after its
    effect is durable.

    With a `watch`, a broker that lost its state is noticed (see `partnermatch.broker`): the
    batch in hand is dropped and the consumer reads its partitions again from the beginning of
    the refilled topics (handlers are idempotent, so reading twice is safe; skipping is not).
    The member stays in its group: a new member could wait out a former one the broker still
    counts on.
    """
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap.split(","),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        max_poll_records=max_poll_records,
        fetch_max_wait_ms=fetch_wait_ms,
    )
    consume = functools.partial(
        _consume_partition, handlers=handlers, batch=batch, publisher=publisher, stop=stop, max_backoff_s=max_backoff_s
    )
    epoch = _current_epoch(watch)
    logger.info("consumer started", extra={"group": group_id, "topics": ",".join(topics), "epoch": epoch})
    held: set[TopicPartition] | None = None
    try:
        while not stop.is_set():
            polled = consumer.poll(timeout_ms=poll_timeout_ms)
            if on_assignment is not None and consumer.assignment() != held:
                held = consumer.assignment()
                on_assignment(_assignment(consumer, topics, held))
            current = _current_epoch(watch)
            if current is not None and epoch is not None and current != epoch:
                assigned = list(consumer.assignment())
                logger.error(
                    "the broker lost its state under this consumer: reading its partitions again "
                    "from the beginning of the refilled topics",
                    extra={
                        "group": group_id,
                        "epoch": current,
                        "last_epoch": epoch,
                        "partitions": len(assigned),
                        "dropped": sum(len(m) for m in polled.values()),
                    },
                )
                if assigned:
                    consumer.seek_to_beginning(*assigned)
                publisher.reset()  # its metadata describes topics that are gone
                epoch = current
                continue
            epoch = current or epoch
            if not polled:
                if on_idle is not None:
                    on_idle()
                continue
            records = {tp: [_record(msg) for msg in messages] for tp, messages in polled.items()}
            together = _consume_runs_together(records, batch, publisher, stop, max_backoff_s) if batch else []
            if stop.is_set():
                break
            for tp in [*together, *(tp for tp in records if tp not in together)]:
                if tp not in together:
                    consume(records[tp])
                    if stop.is_set():
                        break
                # commit what this partition has fully processed
                if not _commit(consumer, tp, records[tp][-1].offset + 1) and watch is not None:
                    watch.invalidate()
    finally:
        consumer.close(autocommit=False)
        logger.info("consumer stopped", extra={"group": group_id})


def _assignment(consumer: KafkaConsumer, topics: Sequence[str], held: set[TopicPartition]) -> Assignment:
    return Assignment(
        {topic: frozenset(tp.partition for tp in held if tp.topic == topic) for topic in topics},
        {topic: len(consumer.partitions_for_topic(topic) or ()) for topic in topics},
    )


def _current_epoch(watch: BrokerWatch | None) -> str | None:
    """The broker's epoch, or None when there is no watch or the broker cannot tell right now."""
    if watch is None:
        return None
    try:
        return watch.epoch()
    except Exception:  # noqa: BLE001 - the broker is away (the watch logs it); asked again later
        return None


def _commit(consumer: KafkaConsumer, tp: TopicPartition, next_offset: int) -> bool:
    """Commit; False when the group refused it (a rebalance, or a broker that restarted and knows
    this member no more): the records are then read again, which idempotent handlers allow."""
    from kafka.structs import OffsetAndMetadata

    try:
        consumer.commit({tp: OffsetAndMetadata(next_offset, "", -1)})
        return True
    except KafkaError as exc:
        logger.warning(
            "commit refused; these records will be read again",
            extra={"topic": tp.topic, "partition": tp.partition, "offset": next_offset, "error": repr(exc)},
        )
        return False


def _consume_runs_together(
    records: Mapping[TopicPartition, list[Record]],
    batch: BatchHandler,
    publisher: KafkaPublisher,
    stop: threading.Event,
    max_backoff_s: float,
) -> list[TopicPartition]:
    """The partitions of a poll whose records are all of `batch`'s types (or cannot be decoded): their
    events handed over as one run, each partition's in order, and the undecodable sent to the DLQ.
    Returns those partitions; the others are left to `_consume_partition`."""
    runs: dict[TopicPartition, list[tuple[Record, events.Envelope]]] = {}
    dead: list[tuple[Record, str]] = []
    for tp, polled in records.items():
        run: list[tuple[Record, events.Envelope]] = []
        undecodable: list[tuple[Record, str]] = []
        for record in polled:
            try:
                envelope = events.decode(record.value)
            except events.UndecodableEvent as exc:
                undecodable.append((record, str(exc)))
                continue
            if envelope.event_type not in batch.event_types:
                break
            run.append((record, envelope))
        else:
            runs[tp] = run
            dead.extend(undecodable)
    for record, error in dead:
        _dead_letter(publisher, record, error)
    handed = [pair for run in runs.values() for pair in run]
    if handed:
        envelopes = [envelope for _, envelope in handed]
        _handle_with_retry(functools.partial(batch.handle, envelopes), handed[-1][0], stop, max_backoff_s)
    return list(runs)


def _consume_partition(
    records: list[Record],
    *,
    handlers: EventHandlers,
    batch: BatchHandler | None,
    publisher: KafkaPublisher,
    stop: threading.Event,
    max_backoff_s: float,
) -> None:
    """One partition's records of a poll, in order: runs of `batch`'s event types to it, the others
    one by one (`_consume_event`). Returns early when told to stop."""
    run: list[tuple[Record, events.Envelope]] = []

    def hand_over() -> None:
        if run and batch is not None:
            envelopes = [envelope for _, envelope in run]
            _handle_with_retry(functools.partial(batch.handle, envelopes), run[-1][0], stop, max_backoff_s)
            run.clear()

    for record in records:
        try:
            envelope = events.decode(record.value)
        except events.UndecodableEvent as exc:
            _dead_letter(publisher, record, str(exc))
            continue
        if batch is not None and envelope.event_type in batch.event_types:
            run.append((record, envelope))
            continue
        hand_over()
        if stop.is_set():
            return
        _consume_event(record, envelope, handlers=handlers, stop=stop, max_backoff_s=max_backoff_s)
        if stop.is_set():
            return
    hand_over()


def _consume_event(
    record: Record, envelope: events.Envelope, *, handlers: EventHandlers, stop: threading.Event, max_backoff_s: float
) -> None:
    handler = handlers.get(envelope.event_type)
    if handler is None:
        logger.info(
            "event of no interest to this consumer",
            extra={"topic": record.topic, "offset": record.offset, "event_type": envelope.event_type},
        )
        return
    _handle_with_retry(functools.partial(handler, envelope), record, stop, max_backoff_s)


def _handle_with_retry(
    handle: Callable[[], object], record: Record, stop: threading.Event, max_backoff_s: float
) -> None:
    """Run `handle` (the work on `record`) until it succeeds, or raise HandlerFailed when stopped."""
    attempt = 0
    while True:
        try:
            handle()
            return
        except Exception as exc:
            attempt += 1
            delay = min(max_backoff_s, 0.2 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0)
            logger.exception(
                "handler failed; will retry",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "attempt": attempt,
                    "retry_in_s": round(delay, 2),
                },
            )
            if stop.wait(delay):
                raise HandlerFailed(
                    f"stopped while retrying {record.topic}/{record.partition}@{record.offset}"
                ) from exc


def _dead_letter(publisher: KafkaPublisher, record: Record, error: str) -> None:
    headers = (
        ("origin-topic", record.topic.encode()),
        ("origin-partition", str(record.partition).encode()),
        ("origin-offset", str(record.offset).encode()),
        ("error", error[:1000].encode("utf-8", "replace")),
    )
    while True:
        try:
            publisher.publish(dlq(record.topic), record.key or "", record.value or b"", headers)
            break
        except KafkaError:
            logger.exception("could not write to the DLQ; retrying")
            publisher.reset()
            time.sleep(1)
    logger.warning(
        "message sent to DLQ",
        extra={"topic": record.topic, "partition": record.partition, "offset": record.offset, "error": error},
    )
