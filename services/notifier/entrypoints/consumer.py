"""The notifier process: `python -m services.notifier.entrypoints.consumer`.

Its consumer thread reads `match-decisions` and `matches` in the group `notifier`: decode → record
the approved match, a coordinators' notice, or what a digest counts in the ledger (durable) →
commit; undecodable messages go to the topic's `.dlq`. Its delivery worker threads, in the same
process, make each cluster's digest once a period, send what is due and wake as soon as something
is recorded. SIGTERM and SIGINT stop both cleanly. Does I/O (Kafka, Redis, HTTP, SMTP).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time

import redis

from partnermatch import events
from partnermatch.broker import BrokerWatch
from partnermatch.logs import configure_logging
from partnermatch.messaging import BatchHandler, EventHandlers, HandlerFailed, KafkaPublisher, run_consumer
from partnermatch.topics import MATCH_DECISIONS, MATCHES
from services.notifier.bootstrap import NotifierDeps, build_deps
from services.notifier.config import NotifierSettings
from services.notifier.services import DecisionRecorder, DeliveryStats, DeliveryWorker

logger = logging.getLogger(__name__)


class Notifier:
    """The consumer and its delivery workers, as one unit that starts and stops together."""

    def __init__(
        self,
        settings: NotifierSettings,
        deps: NotifierDeps | None = None,
        topic: str = MATCH_DECISIONS,
        watch: BrokerWatch | None = None,
        matches_topic: str | None = None,
    ) -> None:
        self.settings = settings
        self.watch = watch
        self.deps = deps or build_deps(settings)
        self.topic = topic
        # Suggestions and withdrawals, for the coordinators' digests (None: no digests counted).
        self.matches_topic = matches_topic
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.stats = DeliveryStats()
        self.recorder = DecisionRecorder(self.deps.ledger, on_recorded=self.wake.set)
        self.workers = [
            DeliveryWorker(
                ledger=self.deps.ledger,
                profiles=self.deps.profiles,
                mailer=self.deps.mailer,
                tokens=self.deps.tokens,
                settings=settings,
                name=f"{os.getpid()}-w{i}",
                stats=self.stats,
            )
            for i in range(settings.send_threads)
        ]
        self._threads: list[threading.Thread] = []

    @property
    def handlers(self) -> EventHandlers:
        """What the consumer does with each event type; others are skipped."""
        return {
            events.MATCH_SUGGESTED: self.recorder.handle,
            events.MATCH_WITHDRAWN: self.recorder.handle,
            events.MATCH_APPROVED: self.recorder.handle,
            events.MATCH_REJECTED: self.recorder.handle,
        }

    @property
    def batch(self) -> BatchHandler:
        """Suggestions and withdrawals in runs (as many as a poll holds in a row): noted for the
        digests in one round trip a run (DecisionRecorder.handle_run), not one an event."""
        return BatchHandler(DecisionRecorder.RUN_TYPES, self.recorder.handle_run)

    def expire_finished(self) -> None:
        """Give the matches finished while nothing set their records' expiry theirs (see
        RedisDeliveryLedger.expire_finished). A failure is logged and the notifier starts anyway:
        the next start tries again."""
        ledger = self.deps.ledger
        started = time.monotonic()
        try:
            given = ledger.expire_finished()
        except redis.RedisError:
            logger.exception("could not give the finished matches their expiry; the next start tries again")
            return
        if given:
            logger.info(
                "finished matches without an expiry now expire",
                extra={"matches": given, "keep_s": ledger.keep_s, "took_s": round(time.monotonic() - started, 1)},
            )

    def run(self) -> None:
        """Blocks until `stop` is set (or the consumer fails)."""
        self.expire_finished()
        self._threads = [
            threading.Thread(
                target=w.run,
                args=(self.stop, self.wake),
                kwargs={"report": i == 0},
                name=f"delivery-{i}",
                daemon=True,
            )
            for i, w in enumerate(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        publisher = KafkaPublisher(self.settings.kafka_bootstrap, client_id="notifier-dlq")
        try:
            run_consumer(
                bootstrap=self.settings.kafka_bootstrap,
                topics=[self.topic, *([self.matches_topic] if self.matches_topic else [])],
                group_id=self.settings.group_id,
                client_id="notifier",
                handlers=self.handlers,
                publisher=publisher,
                stop=self.stop,
                watch=self.watch,
                batch=self.batch,
            )
        except HandlerFailed:
            logger.info("stopped while a message was being retried; it will be read again")
        finally:
            self.stop.set()
            self.wake.set()
            for thread in self._threads:
                thread.join(self.settings.smtp_timeout_s * 4 + 5)
            publisher.close()
            if self.workers:
                self.workers[0].report()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.notifier.entrypoints.consumer")
    parser.add_argument("--topic", default=MATCH_DECISIONS, help="topic of match decisions (tests use their own)")
    parser.add_argument(
        "--matches-topic",
        default=None,
        help="topic of suggestions for the digests (default: `matches` with the decisions' own "
        "topic, none with a test's)",
    )
    args = parser.parse_args(argv)
    configure_logging(os.environ)
    settings = NotifierSettings.from_env()
    settings.require_secret_key()
    settings.require_service_token()
    watch = BrokerWatch(settings.kafka_bootstrap, name="notifier") if args.topic == MATCH_DECISIONS else None
    matches_topic = args.matches_topic or (MATCHES if args.topic == MATCH_DECISIONS else None)
    notifier = Notifier(settings, topic=args.topic, watch=watch, matches_topic=matches_topic)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: notifier.stop.set())
    logger.info(
        "notifier starting",
        extra={
            "topic": args.topic,
            "matches_topic": matches_topic,
            "digest_interval_s": settings.digest_interval_s,
            "group": settings.group_id,
            "profiles": settings.profiles_url,
            "smtp": f"{settings.smtp_host}:{settings.smtp_port}",
            "send_threads": settings.send_threads,
        },
    )
    notifier.run()


if __name__ == "__main__":
    main()
