"""Settings of the matcher: its consumer, its review API and page. Read from the environment; no I/O."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from partnermatch.settings import KAFKA_BOOTSTRAP_SERVERS, REDIS_URL, SERVICE_TOKEN, setting

MATCHER_REDIS_URL = setting("MATCHER_REDIS_URL", None, "Redis of the matcher (default: REDIS_URL)")
MATCHER_HOST = setting(
    "MATCHER_HOST", "127.0.0.1", "Address the matcher's review API and page listen on (`partnermatch up`)"
)
MATCHER_PORT = setting("MATCHER_PORT", "8082", "Port of the matcher's review API and page (`partnermatch up`)")
MATCHER_TOP_K = setting("MATCHER_TOP_K", "5", "Partners suggested per organisation")
MATCHER_MIN_SCORE = setting("MATCHER_MIN_SCORE", "0.05", "Pairs scoring below this are never suggested")
MATCHER_MAX_PENDING_PER_ORG = setting(
    "MATCHER_MAX_PENDING_PER_ORG", "8", "At most this many pending suggestions involve one organisation (the best)"
)
MATCHER_DISPLACE_MARGIN = setting(
    "MATCHER_DISPLACE_MARGIN",
    "0.05",
    "A pair takes the place of an organisation's weakest pending suggestion (at MATCHER_MAX_PENDING_PER_ORG) only "
    "when it scores more than this above it, so a coordinator's queue does not change for a pair barely better",
)
MATCHER_FEEDBACK_STRENGTH = setting(
    "MATCHER_FEEDBACK_STRENGTH",
    "0.25",
    "How much a partner rejected as not relevant lowers the organisation's candidates that resemble it for the same "
    "reasons, relative to its candidate least like it: a perfect look-alike's score is multiplied by 1 - this "
    "where another candidate resembles it in nothing (0: rejections teach nothing)",
)
MATCHER_REWEIGH_QUIET_S = setting(
    "MATCHER_REWEIGH_QUIET_S",
    "5",
    "Seconds without a profile event after which a matcher learns its weights again from the profiles it holds, "
    "if any changed (so every matcher ends with the same weights when writes pause); it also does once a fifth of "
    "them changed",
)
MATCHER_REWEIGH_EVERY_S = setting(
    "MATCHER_REWEIGH_EVERY_S",
    "600",
    "While profiles keep changing without a pause, a matcher learns its weights again at least this often (seconds)",
)
MATCHER_FETCH_WAIT_MS = setting(
    "MATCHER_FETCH_WAIT_MS",
    "100",
    "How long the matcher's consumers let the broker hold a fetch for new records: with Tansu, as late as a "
    "profile event may reach them (lower: sooner, at more idle fetches)",
)
MATCHER_GROUP = setting("MATCHER_GROUP", "matcher", "Kafka consumer group of the matcher consumers")
MATCHER_PROFILES_URL = setting(
    "MATCHER_PROFILES_URL", "http://127.0.0.1:8081", "Profiles service the matcher asks to check coordinator logins"
)
MATCHER_SECRET_KEY = setting(
    "MATCHER_SECRET_KEY",
    None,
    "Secret signing the coordinator page's session cookies. `partnermatch up` generates one",
    secret=True,
)
MATCHER_LOGIN_RATE_LIMIT = setting(
    "MATCHER_LOGIN_RATE_LIMIT",
    "10 per 15 minutes",
    "Failed logins on the coordinators' page allowed from one client address (Flask-Limiter notation, counted in "
    "Redis); profiles limits failures per account as well",
)
MATCHER_COOKIE_SECURE = setting(
    "MATCHER_COOKIE_SECURE", "false", "Send the page's cookies over HTTPS only (`true` in deployment behind TLS)"
)


@dataclass(frozen=True)
class MatcherSettings:
    redis_url: str
    kafka_bootstrap: str
    top_k: int = 5
    min_score: float = 0.05
    max_pending_per_org: int = 8
    displace_margin: float = 0.05
    feedback_strength: float = 0.25
    reweigh_quiet_s: float = 5.0
    reweigh_every_s: float = 600.0
    fetch_wait_ms: int = 100
    group_id: str = "matcher"
    profiles_url: str = "http://127.0.0.1:8081"
    secret_key: str | None = None
    cookie_secure: bool = False
    login_rate_limit: str = "10 per 15 minutes"
    # The profiles service reads an organisation's partnerships with it. Checked here, not through
    # profiles' whoami: profiles is the caller, and asking it back would tie up its workers twice.
    service_token: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MatcherSettings:
        env = os.environ if env is None else env
        return cls(
            redis_url=MATCHER_REDIS_URL.read(env) or REDIS_URL.read(env) or "",
            kafka_bootstrap=KAFKA_BOOTSTRAP_SERVERS.read(env) or "",
            top_k=MATCHER_TOP_K.read_int(env),
            min_score=MATCHER_MIN_SCORE.read_float(env),
            max_pending_per_org=MATCHER_MAX_PENDING_PER_ORG.read_int(env),
            displace_margin=MATCHER_DISPLACE_MARGIN.read_float(env),
            feedback_strength=MATCHER_FEEDBACK_STRENGTH.read_float(env),
            reweigh_quiet_s=MATCHER_REWEIGH_QUIET_S.read_float(env),
            reweigh_every_s=MATCHER_REWEIGH_EVERY_S.read_float(env),
            fetch_wait_ms=MATCHER_FETCH_WAIT_MS.read_int(env),
            group_id=MATCHER_GROUP.read(env) or "matcher",
            profiles_url=(MATCHER_PROFILES_URL.read(env) or "").rstrip("/"),
            secret_key=MATCHER_SECRET_KEY.read(env),
            cookie_secure=(MATCHER_COOKIE_SECURE.read(env) or "").lower() in ("1", "true", "yes"),
            login_rate_limit=MATCHER_LOGIN_RATE_LIMIT.read(env) or "",
            service_token=SERVICE_TOKEN.read(env),
        )
