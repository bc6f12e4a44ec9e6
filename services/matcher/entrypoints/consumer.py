"""The matcher consumer process: `python -m services.matcher.entrypoints.consumer`.

Rebuilds the index from its own Redis state and keeps it whole by reading `profiles` as a table
(services/matcher/table.py: any number of these processes share the work). Then consumes
`profiles` and `match-decisions` in a consumer group: decode → apply (durable in Redis, with the
suggestion events in the outbox) → commit. A profile event changes the index and the lists it
touches; a decision plans again the lists of the pair's two organisations (and, for a rejection
that teaches, of the partners of the rejecting one). Undecodable messages go
to `<topic>.dlq`. Does I/O (Redis, Kafka).
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from partnermatch import events
from partnermatch.broker import BrokerWatch
from partnermatch.logs import configure_logging
from partnermatch.messaging import EventHandlers, KafkaPublisher
from partnermatch.topics import MATCH_DECISIONS, PROFILES
from services.matcher.bootstrap import build_deps
from services.matcher.config import MatcherSettings
from services.matcher.live import LiveMatcher
from services.matcher.table import run_matcher

logger = logging.getLogger(__name__)


def decision_handlers(live: LiveMatcher) -> EventHandlers:
    """The matcher's table for the events other than profiles' (those go through the shared index,
    services/matcher/table.py); event types in neither are skipped."""
    return {events.MATCH_APPROVED: live.handle_decision, events.MATCH_REJECTED: live.handle_decision}


def build_live_matcher(settings: MatcherSettings) -> LiveMatcher:
    from services.matcher.batch import LEMMA_INDEX
    from services.matcher.engine import MatchEngine
    from services.matcher.engine.text import use_lemma_index

    use_lemma_index(LEMMA_INDEX.read(os.environ))
    state = build_deps(settings).state
    return LiveMatcher(
        state,
        MatchEngine(),
        top_k=settings.top_k,
        min_score=settings.min_score,
        max_pending_per_org=settings.max_pending_per_org,
        feedback_strength=settings.feedback_strength,
        displace_margin=settings.displace_margin,
    )


def main() -> None:
    configure_logging(os.environ)
    settings = MatcherSettings.from_env()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    live = build_live_matcher(settings)
    publisher = KafkaPublisher(settings.kafka_bootstrap, client_id="matcher-dlq")
    try:
        run_matcher(
            live,
            bootstrap=settings.kafka_bootstrap,
            profiles_topic=PROFILES,
            topics=[PROFILES, MATCH_DECISIONS],
            group_id=settings.group_id,
            client_id="matcher",
            handlers=decision_handlers(live),
            publisher=publisher,
            stop=stop,
            watch=lambda name: BrokerWatch(settings.kafka_bootstrap, name=name),
            reweigh_quiet_s=settings.reweigh_quiet_s,
            reweigh_every_s=settings.reweigh_every_s,
            fetch_wait_ms=settings.fetch_wait_ms,
        )
    finally:
        publisher.close()


if __name__ == "__main__":
    main()
