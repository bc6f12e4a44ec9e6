"""The profiles outbox relay process: `python -m services.profiles.entrypoints.relay`.

Publishes every profile change from the Redis outbox to the `profiles` topic, exactly once
(see `partnermatch.outbox`); a broker that lost its topics gets every current profile again.
Does I/O (Redis, Kafka).
"""

from __future__ import annotations

import os
import signal
import threading

from partnermatch.logs import configure_logging
from partnermatch.outbox import OutboxRelay, kafka_relay
from services.profiles.bootstrap import build_deps
from services.profiles.config import ProfilesSettings


def build_relay(settings: ProfilesSettings) -> OutboxRelay:
    """The relay, refilling a broker that lost its topics with every current profile (resync)."""
    from services.profiles.services import resync

    store = build_deps(settings).store
    return kafka_relay(
        store.outbox,
        settings.kafka_bootstrap,
        "profiles",
        settings.relay_batch_size,
        settings.relay_linger_ms / 1000,
        settings.relay_linger_per_write_ms / 1000,
        settings.relay_max_linger_ms / 1000,
        refill=lambda: resync(store),
    )


def main() -> None:
    configure_logging(os.environ)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    build_relay(ProfilesSettings.from_env()).run(stop)


if __name__ == "__main__":
    main()
