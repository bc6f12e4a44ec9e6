"""The outbox relay: publishes the profiles outbox (Redis) to Kafka, then marks entries done.

Run as `python -m services.profiles.entrypoints.relay`. After a crash or a failed send, it first
looks on the topic for the events it may already have published (from where its last batch
started), so each acknowledged write is published exactly once. Does I/O (Redis, Kafka).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable

from partnermatch.logs import configure_logging
from partnermatch.messaging import KafkaPublisher, Outgoing, Record, read_partitions
from services.profiles.adapters.redis_store import OutboxEntry, RedisProfileStore
from services.profiles.bootstrap import build_deps
from services.profiles.config import ProfilesSettings

logger = logging.getLogger(__name__)
LOCK_TTL_MS = 10_000
RECONCILE_WINDOW = 1000

Reader = Callable[[str, dict[int, int]], Iterable[Record]]


class OutboxRelay:
    def __init__(self, store: RedisProfileStore, publisher: KafkaPublisher, read_topic: Reader,
                 batch_size: int = 200, idle_sleep_s: float = 0.1) -> None:
        self.store = store
        self.publisher = publisher
        self.read_topic = read_topic
        self.batch_size = batch_size
        self.idle_sleep_s = idle_sleep_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        self.needs_reconcile = True  # after a start we cannot know how the last batch ended
        self.published = 0

    def _already_on_topic(self, entries: list[OutboxEntry]) -> set[str]:
        wanted = {e.event_id for e in entries}
        found: set[str] = set()
        for topic in {e.topic for e in entries}:
            start = self.store.relay_offsets(topic)
            for record in self.read_topic(topic, start):
                for name, value in record.headers:
                    if name == "event_id" and value.decode("utf-8", "replace") in wanted:
                        found.add(value.decode())
        return found

    def step(self) -> int:
        """Publish one batch; returns how many entries left the outbox."""
        if self.needs_reconcile:
            head = self.store.outbox_head(max(self.batch_size, RECONCILE_WINDOW))
            if head:
                done = self._already_on_topic(head)
                if done:
                    self.store.mark_published([e.entry_id for e in head if e.event_id in done], {})
                    logger.warning("outbox entries were already on Kafka; not sending them twice",
                                   extra={"count": len(done)})
            self.needs_reconcile = False
        entries = self.store.outbox_head(self.batch_size)
        if not entries:
            return 0
        try:
            delivered = self.publisher.publish_batch([
                Outgoing(e.topic, e.key, e.value, (("event_id", e.event_id.encode()),
                                                   ("event_type", e.event_type.encode())))
                for e in entries
            ])
        except Exception:
            self.needs_reconcile = True
            self.publisher.reset()
            raise
        first: dict[tuple[str, int], int] = {}
        for d in delivered:
            key = (d.topic, d.partition)
            first[key] = min(first.get(key, d.offset), d.offset)
        try:
            self.store.mark_published([e.entry_id for e in entries], first)
        except Exception:
            self.needs_reconcile = True
            raise
        self.published += len(entries)
        return len(entries)

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        last_report = time.monotonic()
        reported = 0
        logger.info("relay started", extra={"owner": self.owner})
        try:
            while not stop.is_set():
                try:
                    if not self.store.acquire_relay_lock(self.owner, LOCK_TTL_MS):
                        logger.info("another relay holds the outbox; waiting")
                        stop.wait(LOCK_TTL_MS / 2000)
                        self.needs_reconcile = True
                        continue
                    moved = self.step()
                    backoff = 0.5
                except Exception as exc:  # noqa: BLE001 - retried with backoff, logged, never dropped
                    logger.warning("relay step failed; retrying", extra={"error": repr(exc), "retry_in_s": backoff})
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                now = time.monotonic()
                if now - last_report >= 10 and self.published != reported:
                    rate = (self.published - reported) / (now - last_report)
                    logger.info("relay progress", extra={"published": self.published, "per_s": round(rate, 1),
                                                         "outbox": self.store.outbox_size()})
                    last_report, reported = now, self.published
                if moved == 0:
                    stop.wait(self.idle_sleep_s)
        finally:
            try:
                self.store.release_relay_lock(self.owner)
            except Exception:  # noqa: BLE001
                logger.debug("could not release the relay lock", exc_info=True)
            self.publisher.close()
            logger.info("relay stopped", extra={"published": self.published})


def build_relay(settings: ProfilesSettings) -> OutboxRelay:
    deps = build_deps(settings)

    def read_topic(topic: str, start: dict[int, int]) -> Iterable[Record]:
        return read_partitions(settings.kafka_bootstrap, topic, start=start, idle_timeout_s=1.0)

    publisher = KafkaPublisher(settings.kafka_bootstrap, client_id="profiles-relay")
    return OutboxRelay(deps.store, publisher, read_topic, settings.relay_batch_size,
                       settings.relay_idle_sleep_ms / 1000)


def main() -> None:
    configure_logging(os.environ)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    build_relay(ProfilesSettings.from_env()).run(stop)


if __name__ == "__main__":
    main()
