"""The broker's readiness, its topics and its epoch: the declared topics created (and checked) with
their partition counts, the epoch marker, and a watch that tells a process when the broker it talks
to lost its state. The admin side of the Kafka adapter; does I/O (Kafka).

The epoch is the first record of the one-partition topic `partnermatch.epoch`, a random id
written once the declared topics exist with their partition counts. A broker that lost its
topics (the local broker keeps them in memory) has no marker: the first process to notice
recreates the topics, writes a new marker, and every service sees an epoch it has not filled yet
and re-publishes its state from Redis. Topics the broker created by itself meanwhile, when a
client asked for them (Tansu does so whatever the client says, with 4 partitions), are deleted
by id and created again with the declared count; they only held what is re-published anyway.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from partnermatch.topics import ALL_TOPICS, EPOCH, TOPIC_CONFIGS

logger = logging.getLogger(__name__)

_REPAIR_ROUNDS = 10


class BrokerError(RuntimeError):
    """The broker cannot be reached or refused a topic operation; the message says which."""


class TopicMismatch(BrokerError):
    """A declared topic exists with another partition count."""


def _admin(bootstrap: str, timeout: float, client_id: str) -> KafkaAdminClient:
    ms = int(timeout * 1000)
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap.split(","),
            client_id=client_id,
            request_timeout_ms=ms,
            bootstrap_timeout_ms=ms,
        )
    except KafkaError as exc:
        raise BrokerError(f"kafka at {bootstrap} is not reachable: {exc!r}") from None


def kafka_ready(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a Kafka client can fetch cluster metadata from `bootstrap`."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    socket.create_connection((host, int(port)), timeout=timeout).close()  # fast "not yet"
    admin = _admin(bootstrap, timeout, "partnermatch-ready")
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


def partition_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, tuple[int, str]]:
    """(partition count, topic id) of each of `names` that exists."""
    existing = set(admin.list_topics())  # asking for all topics creates none
    wanted = [n for n in names if n in existing]
    if not wanted:
        return {}
    return {
        t["name"]: (len(t["partitions"]), str(t["topic_id"]))
        for t in admin.describe_topics(wanted)
        if not t["error_code"]
    }


def _create(admin: KafkaAdminClient, topics: Mapping[str, int], ms: int, bootstrap: str) -> None:
    # replication_factor -1: the broker's default (1 on Tansu, the cluster's on real Kafka).
    request = {
        name: {"num_partitions": n, "replication_factor": -1, "configs": TOPIC_CONFIGS.get(name, {})}
        for name, n in topics.items()
    }
    result = admin.create_topics(request, timeout_ms=ms, raise_errors=False)
    for topic in result["topics"]:
        error = for_code(topic["error_code"])
        if topic["error_code"] and error is not TopicAlreadyExistsError:
            raise BrokerError(
                f"kafka at {bootstrap}: could not create topic {topic['name']}: "
                f"{topic.get('error_message') or error.__name__}"
            )


def ensure_topics(
    bootstrap: str, topics: Mapping[str, int], timeout: float = 15.0, *, repair: bool = False
) -> dict[str, int]:
    """Create the missing topics with their declared partition counts and return the counts the
    broker reports. Idempotent: topics that exist, or that another process creates at the same
    time, are fine. A topic with another count raises TopicMismatch naming every such topic,
    unless `repair`: then it is deleted (by id, so never a topic someone recreated meanwhile) and
    created again. Only recovery from a lost broker repairs (see the module docstring)."""
    ms = int(timeout * 1000)
    admin = _admin(bootstrap, timeout, "partnermatch-topics")
    try:
        for _ in range(_REPAIR_ROUNDS):
            have = partition_counts(admin, list(topics))
            missing = {n: p for n, p in topics.items() if n not in have}
            if missing:
                _create(admin, missing, ms, bootstrap)
                try:
                    admin.wait_for_topics(list(missing), timeout_ms=ms)
                except KafkaError:
                    if not repair:
                        raise
                have = partition_counts(admin, list(topics))
            wrong = {n: have[n] for n in topics if n in have and have[n][0] != topics[n]}
            if not wrong:
                absent = [n for n in topics if n not in have]
                if not absent:
                    return {n: have[n][0] for n in topics}
                if not repair:
                    raise BrokerError(f"kafka at {bootstrap}: topics not visible after creation: {absent}")
                continue  # another process repairing at the same time deleted what ours collided with
            if not repair:
                raise TopicMismatch(
                    f"kafka at {bootstrap}: partition counts differ from the declared ones: "
                    + ", ".join(f"{n} has {c}, declared {topics[n]}" for n, (c, _) in wrong.items())
                    + ". A topic cannot lose partitions and keyed order depends on the count: "
                    "recreate the topic (its records are lost) or change the declaration"
                )
            for name, (count, _) in wrong.items():
                logger.error(
                    "topic has the wrong partition count after the broker lost its state; "
                    "deleting it to create it as declared (its records are re-published)",
                    extra={"topic": name, "partitions": count, "declared": topics[name]},
                )
            admin.delete_topics(
                [uuid.UUID(topic_id) for _, topic_id in wrong.values()],
                timeout_ms=ms,
                raise_errors=False,
            )
        raise BrokerError(f"kafka at {bootstrap}: topics kept coming back with other partition counts")
    except KafkaError as exc:
        raise BrokerError(f"kafka at {bootstrap}: could not create topics: {exc!r}") from None
    finally:
        admin.close()


# ---- the epoch ---------------------------------------------------------------------------------


def read_epoch(bootstrap: str, timeout: float = 5.0) -> str | None:
    """The broker's epoch marker, or None when it has none (a fresh broker, or one that lost its
    state). Does not create the marker topic by asking for it."""
    admin = _admin(bootstrap, timeout, "partnermatch-epoch")
    try:
        if EPOCH not in set(admin.list_topics()):
            return None
    finally:
        admin.close()
    return _first_record(bootstrap, timeout)


def _first_record(bootstrap: str, timeout: float) -> str | None:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        client_id="partnermatch-epoch",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        request_timeout_ms=max(int(timeout * 1000), 1000),
    )
    try:
        tp = TopicPartition(EPOCH, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        started = time.monotonic()
        deadline = started + min(timeout, 1.5)
        while True:
            while time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        return (record.value or b"").decode("utf-8", "replace") or None
            # Nothing read yet. Only an empty marker topic means the state was lost: a slow read of
            # one that holds the marker (a busy broker, another process repairing) must not set off
            # a repair, which may delete topics. Such a read gets the whole timeout, then fails.
            if consumer.end_offsets([tp]).get(tp, 0) == 0:
                return None
            if deadline >= started + timeout:
                raise BrokerError(f"kafka at {bootstrap}: the epoch marker exists but was not read in time")
            deadline = started + timeout
    finally:
        consumer.close()


def write_epoch(bootstrap: str, timeout: float = 10.0) -> str:
    """Append a new marker and return the epoch: the first record (when several processes write at
    once, every one of them returns the same one)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        client_id="partnermatch-epoch",
        acks="all",
        enable_idempotence=True,
        max_block_ms=int(timeout * 1000),
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        producer.send(EPOCH, value=uuid.uuid4().hex.encode(), partition=0).get(timeout=timeout)
    finally:
        producer.close(timeout=2)
    epoch = _first_record(bootstrap, timeout)
    if epoch is None:
        raise BrokerError(f"kafka at {bootstrap}: the epoch marker just written cannot be read")
    return epoch


def prepare(
    bootstrap: str, topics: Mapping[str, int] = ALL_TOPICS, timeout: float = 15.0, *, repair: bool = False
) -> tuple[dict[str, int], str]:
    """The declared topics (see `ensure_topics`), then the epoch marker if there is none yet:
    (partition counts, epoch)."""
    counts = ensure_topics(bootstrap, {**topics, EPOCH: 1}, timeout, repair=repair)
    epoch = read_epoch(bootstrap, timeout)
    if epoch is None:
        epoch = write_epoch(bootstrap, timeout)
    return counts, epoch


class BrokerWatch:
    """The epoch of the broker, as one process sees it, checked at most every `every_s`.

    A broker without a marker lost its state: the watch says so loudly, recreates the declared
    topics (repairing auto-created ones) and writes a new marker. Callers compare the epoch with
    the one their state was last published to or read from. Thread-safe.
    """

    def __init__(
        self,
        bootstrap: str,
        name: str,
        topics: Mapping[str, int] = ALL_TOPICS,
        every_s: float = 2.0,
        timeout: float = 5.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.name = name
        self.topics = dict(topics)
        self.every_s = every_s
        self.timeout = timeout
        self._lock = threading.Lock()
        self._epoch: str | None = None
        self._checked_at = float("-inf")
        self._failing = False

    def invalidate(self) -> None:
        """Check again at the next call (after a failure that may mean the broker restarted)."""
        with self._lock:
            self._checked_at = float("-inf")

    def epoch(self) -> str:
        """The current epoch. While the broker cannot be asked, the last one known (checked again
        every `every_s`); raises BrokerError when none is known yet."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at < self.every_s and self._epoch is not None:
                return self._epoch
            self._checked_at = now
            try:
                current = self._ask()
            except Exception as exc:  # noqa: BLE001 - logged once per outage, asked again later
                if not self._failing:
                    logger.warning(
                        "cannot read the broker's epoch; asking again",
                        extra={"who": self.name, "error": repr(exc), "every_s": self.every_s},
                    )
                self._failing = True
                if self._epoch is None:
                    raise BrokerError(f"kafka at {self.bootstrap}: epoch unknown: {exc!r}") from None
                return self._epoch
            self._failing = False
            if self._epoch is not None and current != self._epoch:
                logger.error(
                    "the broker's epoch changed: it lost its state and was refilled",
                    extra={"who": self.name, "epoch": current, "last_epoch": self._epoch},
                )
            self._epoch = current
            return current

    def _ask(self) -> str:
        current = read_epoch(self.bootstrap, self.timeout)
        if current is not None:
            return current
        logger.error(
            "THE BROKER LOST ITS TOPICS: it has no epoch marker (restarted in memory, or its "
            "storage was lost). Recreating the declared topics; every service re-publishes its "
            "state from Redis",
            extra={"who": self.name, "bootstrap": self.bootstrap, "last_epoch": self._epoch},
        )
        _, current = prepare(self.bootstrap, self.topics, self.timeout * 3, repair=True)
        logger.warning("topics recreated; new broker epoch", extra={"who": self.name, "epoch": current})
        return current


@dataclass(frozen=True)
class PartitionOffsets:
    """Where a group is on one partition: its committed offset (None: it has committed none, so it
    starts at `start`) and the partition's first and next offsets."""

    topic: str
    partition: int
    committed: int | None
    start: int
    end: int

    @property
    def lag(self) -> int:
        position = self.start if self.committed is None else max(self.committed, self.start)
        return max(0, self.end - position)


def group_offsets(bootstrap: str, group: str, topics: list[str], timeout: float = 2.0) -> list[PartitionOffsets]:
    """Where consumer `group` is on each partition of `topics`: committed, first and end offsets
    (for the lag metric; a scrape calls it, hence the short timeout).

    The end is the high watermark of a fetch, not the answer to "latest": Tansu answers that with
    the base offset of the last record batch plus one, too low when the batch holds several."""
    from kafka.admin import OffsetSpec

    admin = _admin(bootstrap, timeout, "partnermatch-metrics")
    try:
        counts = partition_counts(admin, topics)
        tps = [TopicPartition(topic, p) for topic, (n, _) in sorted(counts.items()) for p in range(n)]
        if not tps:
            return []
        committed = admin.list_group_offsets({group: None}).get(group, {})
        ms = int(timeout * 1000)
        first = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.EARLIEST), timeout_ms=ms)
        latest = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.LATEST), timeout_ms=ms)
    finally:
        admin.close()
    starts = {tp: first[tp].offset for tp in tps}
    answered = {tp: latest[tp].offset for tp in tps}
    ends = _high_watermarks(
        bootstrap, {tp: max(starts[tp], answered[tp] - 1) for tp in tps if answered[tp] > starts[tp]}, timeout
    )
    offsets = []
    for tp in tps:
        mark = committed.get(tp)
        offsets.append(
            PartitionOffsets(
                topic=tp.topic,
                partition=tp.partition,
                committed=mark.offset if mark is not None and mark.offset >= 0 else None,
                start=starts[tp],
                end=max(ends.get(tp, answered[tp]), answered[tp]),
            )
        )
    return offsets


def _high_watermarks(
    bootstrap: str, positions: Mapping[TopicPartition, int], timeout: float
) -> dict[TopicPartition, int]:
    """The high watermark of each partition, from one fetch at `positions`; partitions the broker
    did not answer for within `timeout` are left out."""
    if not positions:
        return {}
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        client_id="partnermatch-metrics",
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=64 * 1024,
        request_timeout_ms=max(int(timeout * 1000), 1000),
    )
    try:
        consumer.assign(list(positions))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        marks: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout
        while len(marks) < len(positions) and time.monotonic() < deadline:
            consumer.poll(timeout_ms=100)
            for tp in positions:
                mark = consumer.highwater(tp)
                if mark is not None:
                    marks[tp] = mark
        return marks
    finally:
        consumer.close()
