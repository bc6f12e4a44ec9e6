"""The matcher's outbox relay: `python -m services.matcher.entrypoints.relay`.

Publishes suggestions (`matches`) and decisions (`match-decisions`) from the matcher's Redis
outbox to Kafka, exactly once (see `partnermatch.outbox`); a broker that lost its topics gets
every decision again, so approvals whose emails were never recorded reach the notifier.
Does I/O (Redis, Kafka).
"""

from __future__ import annotations

import os
import signal
import threading

from partnermatch.logs import configure_logging
from partnermatch.outbox import kafka_relay
from services.matcher.bootstrap import build_deps
from services.matcher.config import MatcherSettings


def main() -> None:
    configure_logging(os.environ)
    settings = MatcherSettings.from_env()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    state = build_deps(settings).state
    kafka_relay(state.outbox, settings.kafka_bootstrap, "matcher", refill=state.requeue_decisions).run(stop)


if __name__ == "__main__":
    main()
