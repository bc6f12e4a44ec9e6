"""The matcher consumer process: `python -m services.matcher.entrypoints.consumer`.

Rebuilds the index from its own Redis state, then consumes `profiles` in a consumer group:
decode → apply (durable in Redis, with the suggestion events in the outbox) → commit.
Undecodable messages go to `profiles.dlq`. Does I/O (Redis, Kafka).
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from partnermatch import events
from partnermatch.broker import BrokerWatch
from partnermatch.logs import configure_logging
from partnermatch.messaging import KafkaPublisher, Record, run_consumer
from partnermatch.topics import PROFILES
from services.matcher.bootstrap import build_deps
from services.matcher.config import MatcherSettings
from services.matcher.live import LiveMatcher

logger = logging.getLogger(__name__)


def poison(record: Record) -> str | None:
    try:
        events.decode(record.value)
    except events.UndecodableEvent as exc:
        return str(exc)
    return None


def build_live_matcher(settings: MatcherSettings) -> LiveMatcher:
    from services.matcher.batch import LEMMA_INDEX
    from services.matcher.engine import MatchEngine
    from services.matcher.engine.text import use_lemma_index

    use_lemma_index(LEMMA_INDEX.read(os.environ))
    state = build_deps(settings).state
    return LiveMatcher(state, MatchEngine(), top_k=settings.top_k, min_score=settings.min_score,
                       max_pending_per_org=settings.max_pending_per_org)


def main() -> None:
    configure_logging(os.environ)
    settings = MatcherSettings.from_env()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    live = build_live_matcher(settings)
    live.load()
    publisher = KafkaPublisher(settings.kafka_bootstrap, client_id="matcher-dlq")
    try:
        run_consumer(
            bootstrap=settings.kafka_bootstrap, topics=[PROFILES], group_id=settings.group_id,
            client_id="matcher", handle=lambda record: live.handle(events.decode(record.value)),
            is_poison=poison, publisher=publisher, stop=stop,
            watch=BrokerWatch(settings.kafka_bootstrap, name="matcher"))
    finally:
        publisher.close()


if __name__ == "__main__":
    main()
