"""One matcher of a consumer group on a test's own topic, as a process the scale-out test can kill:
`python -m tests.integration.matcher.matcher_process BOOTSTRAP REDIS_URL TOPIC GROUP`. The real
consumer's code (services.matcher.table) with the real engine; only the topic name differs."""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import replace

from partnermatch.logs import configure_logging
from partnermatch.messaging import KafkaPublisher
from services.matcher.config import MatcherSettings
from services.matcher.entrypoints.consumer import build_live_matcher
from services.matcher.table import run_matcher

# High enough that no organisation's cap decides which pairs stay: then the suggestions do not
# depend on the order the events were applied in, and two runs can be compared pair by pair.
MAX_PENDING = 100


def main() -> None:
    bootstrap, redis_url, topic, group = sys.argv[1:5]
    configure_logging(os.environ)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    settings = replace(
        MatcherSettings.from_env(),  # the weights' refresh as the test sets it
        redis_url=redis_url,
        kafka_bootstrap=bootstrap,
        group_id=group,
        max_pending_per_org=MAX_PENDING,
    )
    live = build_live_matcher(settings)
    publisher = KafkaPublisher(bootstrap, client_id="matcher-dlq")
    try:
        run_matcher(
            live,
            bootstrap=bootstrap,
            profiles_topic=topic,
            topics=[topic],
            group_id=group,
            client_id="matcher",
            handlers={},
            publisher=publisher,
            stop=stop,
            reweigh_quiet_s=settings.reweigh_quiet_s,
            reweigh_every_s=settings.reweigh_every_s,
        )
    finally:
        publisher.close()


if __name__ == "__main__":
    main()
