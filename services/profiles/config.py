"""Settings of the profiles service (its API and the organisations' pages) and its outbox relay, read
from the environment. No I/O."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from partnermatch.settings import (
    ADMIN_TOKEN,
    KAFKA_BOOTSTRAP_SERVERS,
    REDIS_URL,
    SERVICE_TOKEN,
    SettingError,
    setting,
)
from partnermatch.smtp import SmtpSettings

PROFILES_REDIS_URL = setting("PROFILES_REDIS_URL", None, "Redis of the profiles service (default: REDIS_URL)")
PROFILES_HOST = setting("PROFILES_HOST", "127.0.0.1", "Address the profiles service listens on (`partnermatch up`)")
PROFILES_PORT = setting("PROFILES_PORT", "8081", "Port of the profiles service (`partnermatch up`)")
PROFILES_MAX_REQUEST_BYTES = setting(
    "PROFILES_MAX_REQUEST_BYTES", "524288", "Largest request body the profiles API accepts (bytes)"
)
PROFILES_MAX_TEXT_CHARS = setting(
    "PROFILES_MAX_TEXT_CHARS", "50000", "Longest capabilities or goals text accepted (characters)"
)
PROFILES_SESSION_TTL_S = setting("PROFILES_SESSION_TTL_S", "43200", "Lifetime of a coordinator's login token (seconds)")
PROFILES_MATCHER_URL = setting(
    "PROFILES_MATCHER_URL",
    "http://127.0.0.1:8082",
    'Matcher the profiles service reads an organisation\'s partnerships from (its "my partnerships" page)',
)
PROFILES_MATCHER_TIMEOUT_S = setting(
    "PROFILES_MATCHER_TIMEOUT_S",
    "3",
    "Timeout of one call to the matcher (seconds); past it the page says partnerships are not available now",
)
PROFILES_SECRET_KEY = setting(
    "PROFILES_SECRET_KEY",
    None,
    "Secret signing the organisations' page sessions, form tokens and sign-in links. `partnermatch up` generates "
    "one; without it each process makes its own, which only one process can use",
    secret=True,
)
PROFILES_PUBLIC_URL = setting(
    "PROFILES_PUBLIC_URL",
    "http://127.0.0.1:8081",
    "Public base URL of the organisations' pages: sign-in links start with it, and with https:// the page's "
    "cookies are sent over HTTPS only",
)
PROFILES_SIGNIN_LINK_TTL_S = setting(
    "PROFILES_SIGNIN_LINK_TTL_S", "1800", "How long an emailed sign-in link works (seconds); it works once"
)
PROFILES_PAGE_SESSION_TTL_S = setting(
    "PROFILES_PAGE_SESSION_TTL_S", "28800", "How long an organisation stays signed in to its pages (seconds)"
)
PROFILES_REGISTER_RATE_LIMIT = setting(
    "PROFILES_REGISTER_RATE_LIMIT",
    "10 per hour",
    "Registrations made through the page from one client address (a form sent back with its errors does not "
    "count; Flask-Limiter notation, counted in Redis)",
)
PROFILES_SIGNIN_RATE_LIMIT = setting(
    "PROFILES_SIGNIN_RATE_LIMIT",
    "5 per 15 minutes",
    "Sign-in link requests from one client address, and for one email address (Flask-Limiter notation)",
)
PROFILES_ORG_TOKEN_TTL_S = setting(
    "PROFILES_ORG_TOKEN_TTL_S",
    "31536000",
    "Lifetime of an organisation's API token (seconds; a year); POST /v1/organisations/<id>/token issues a new one",
)
PROFILES_LOGIN_RATE_LIMIT = setting(
    "PROFILES_LOGIN_RATE_LIMIT",
    "10 per 15 minutes",
    "Failed coordinator logins allowed per account, and per client address calling the API directly; past "
    "it even the right password waits (Flask-Limiter notation, counted in Redis)",
)
RELAY_BATCH_SIZE = setting("RELAY_BATCH_SIZE", "200", "Outbox entries the relay publishes per batch")
RELAY_LINGER_MS = setting(
    "RELAY_LINGER_MS",
    "20",
    "How long a batch gathers once its first outbox entry is there (a new entry wakes the relay, it does not "
    "poll); longer under load, see RELAY_LINGER_PER_WRITE_MS. Past RELAY_BATCH_SIZE the rest goes at once",
)
RELAY_LINGER_PER_WRITE_MS = setting(
    "RELAY_LINGER_PER_WRITE_MS",
    "5",
    "How much longer than RELAY_LINGER_MS the relay lets a batch gather for each write (a MULTI's entries count "
    "once) but the first in the batch it published before, up to RELAY_MAX_LINGER_MS: from some 1000 / this "
    "writes a second batches gather RELAY_MAX_LINGER_MS, so the relay's CPU a write stays low",
)
RELAY_MAX_LINGER_MS = setting(
    "RELAY_MAX_LINGER_MS", "100", "Longest a batch gathers under load (see RELAY_LINGER_PER_WRITE_MS)"
)


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
    relay_linger_ms: float = 20.0
    relay_linger_per_write_ms: float = 5.0
    relay_max_linger_ms: float = 100.0
    matcher_url: str = "http://127.0.0.1:8082"
    matcher_timeout_s: float = 3.0
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:8081"
    signin_link_ttl_s: int = 1800
    page_session_ttl_s: int = 28800
    register_rate_limit: str = "10 per hour"
    signin_rate_limit: str = "5 per 15 minutes"
    login_rate_limit: str = "10 per 15 minutes"
    org_token_ttl_s: int = 31536000
    smtp: SmtpSettings = field(default_factory=SmtpSettings)

    def __post_init__(self) -> None:
        from limits import parse_many

        for name, value in (
            ("PROFILES_REGISTER_RATE_LIMIT", self.register_rate_limit),
            ("PROFILES_SIGNIN_RATE_LIMIT", self.signin_rate_limit),
            ("PROFILES_LOGIN_RATE_LIMIT", self.login_rate_limit),
        ):
            try:
                parse_many(value)
            except ValueError:
                raise SettingError(f"{name} must read like '5 per 15 minutes', got {value!r}") from None
        if not self.public_url.startswith(("http://", "https://")):
            raise SettingError(f"PROFILES_PUBLIC_URL must start with http:// or https://, got {self.public_url!r}")

    @property
    def cookie_secure(self) -> bool:
        return self.public_url.startswith("https://")

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
            relay_linger_ms=RELAY_LINGER_MS.read_float(env),
            relay_linger_per_write_ms=RELAY_LINGER_PER_WRITE_MS.read_float(env),
            relay_max_linger_ms=RELAY_MAX_LINGER_MS.read_float(env),
            matcher_url=(PROFILES_MATCHER_URL.read(env) or "").rstrip("/"),
            matcher_timeout_s=PROFILES_MATCHER_TIMEOUT_S.read_float(env),
            secret_key=PROFILES_SECRET_KEY.read(env),
            public_url=(PROFILES_PUBLIC_URL.read(env) or "").rstrip("/"),
            signin_link_ttl_s=PROFILES_SIGNIN_LINK_TTL_S.read_int(env),
            page_session_ttl_s=PROFILES_PAGE_SESSION_TTL_S.read_int(env),
            register_rate_limit=PROFILES_REGISTER_RATE_LIMIT.read(env) or "",
            signin_rate_limit=PROFILES_SIGNIN_RATE_LIMIT.read(env) or "",
            login_rate_limit=PROFILES_LOGIN_RATE_LIMIT.read(env) or "",
            org_token_ttl_s=PROFILES_ORG_TOKEN_TTL_S.read_int(env),
            smtp=SmtpSettings.from_env(env),
        )
