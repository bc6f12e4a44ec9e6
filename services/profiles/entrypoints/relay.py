"""The profiles outbox relay process: `python -m services.profiles.entrypoints.relay`.

Publishes every profile change from the Redis outbox to the `profiles` topic, exactly once
(see `partnermatch.outbox`); a broker that lost its topics gets every current profile again.
Does I/O (Redis, Kafka).
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from partnermatch.logs import configure_logging
from partnermatch.outbox import OutboxRelay, kafka_relay
from services.profiles.adapters.redis_store import RedisProfileStore
from services.profiles.bootstrap import build_deps
from services.profiles.config import ProfilesSettings

logger = logging.getLogger("partnermatch.profiles.relay")


def build_relay(settings: ProfilesSettings, store: RedisProfileStore | None = None) -> OutboxRelay:
    """The relay, refilling a broker that lost its topics with every current profile (resync)."""
    from services.profiles.services import resync

    store = store or build_deps(settings).store
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
    settings = ProfilesSettings.from_env()
    store = build_deps(settings).store
    # one-off repairs of what older code stored, beside the publishing (which sends what they write)
    threading.Thread(target=_settle_languages, args=(store,), name="settle-languages", daemon=True).start()
    build_relay(settings, store).run(stop)


def _settle_languages(store: RedisProfileStore) -> None:
    from services.profiles.services import settle_detected_languages

    try:
        settle_detected_languages(store)
    except Exception:  # noqa: BLE001 - a repair that failed is logged and tried again at the next start
        logger.exception("settling detected languages failed; the next start tries again")
    finally:
        store.release_thread()


if __name__ == "__main__":
    main()
