"""Settings of the profiles service and its outbox relay, read from the environment. No I/O."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from partnermatch.settings import (
    ADMIN_TOKEN,
    KAFKA_BOOTSTRAP_SERVERS,
    REDIS_URL,
    SERVICE_TOKEN,
    setting,
)

PROFILES_REDIS_URL = setting("PROFILES_REDIS_URL", None, "Redis of the profiles service (default: REDIS_URL)")
PROFILES_HOST = setting("PROFILES_HOST", "127.0.0.1", "Address the profiles service listens on (`partnermatch up`)")
PROFILES_PORT = setting("PROFILES_PORT", "8081", "Port of the profiles service (`partnermatch up`)")
PROFILES_MAX_REQUEST_BYTES = setting(
    "PROFILES_MAX_REQUEST_BYTES", "524288", "Largest request body the profiles API accepts (bytes)"
)
PROFILES_MAX_TEXT_CHARS = setting(
    "PROFILES_MAX_TEXT_CHARS", "50000", "Longest capabilities or goals text accepted (characters)"
)
PROFILES_SESSION_TTL_S = setting(
    "PROFILES_SESSION_TTL_S", "43200", "Lifetime of a coordinator's login token (seconds)"
)
PROFILES_MATCHER_URL = setting(
    "PROFILES_MATCHER_URL", "http://127.0.0.1:8082",
    "Matcher the profiles service reads an organisation's partnerships from (its \"my partnerships\" page)",
)
PROFILES_MATCHER_TIMEOUT_S = setting(
    "PROFILES_MATCHER_TIMEOUT_S", "3",
    "Timeout of one call to the matcher (seconds); past it the page says partnerships are not available now",
)
RELAY_BATCH_SIZE = setting("RELAY_BATCH_SIZE", "200", "Outbox entries the relay publishes per batch")
RELAY_IDLE_SLEEP_MS = setting("RELAY_IDLE_SLEEP_MS", "100", "How long the relay waits when the outbox is empty")


@dataclass(frozen=True)
class ProfilesSettings:
    redis_url: str
    kafka_bootstrap: str
    admin_token: str | None
    service_token: str | None
    max_request_bytes: int = 524288
    max_text_chars: int = 50000
    session_ttl_s: int = 43200
    relay_batch_size: int = 200
    relay_idle_sleep_ms: int = 100
    matcher_url: str = "http://127.0.0.1:8082"
    matcher_timeout_s: float = 3.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProfilesSettings:
        env = os.environ if env is None else env
        return cls(
            redis_url=PROFILES_REDIS_URL.read(env) or REDIS_URL.read(env) or "",
            kafka_bootstrap=KAFKA_BOOTSTRAP_SERVERS.read(env) or "",
            admin_token=ADMIN_TOKEN.read(env),
            service_token=SERVICE_TOKEN.read(env),
            max_request_bytes=PROFILES_MAX_REQUEST_BYTES.read_int(env),
            max_text_chars=PROFILES_MAX_TEXT_CHARS.read_int(env),
            session_ttl_s=PROFILES_SESSION_TTL_S.read_int(env),
            relay_batch_size=RELAY_BATCH_SIZE.read_int(env),
            relay_idle_sleep_ms=RELAY_IDLE_SLEEP_MS.read_int(env),
            matcher_url=(PROFILES_MATCHER_URL.read(env) or "").rstrip("/"),
            matcher_timeout_s=PROFILES_MATCHER_TIMEOUT_S.read_float(env),
        )
