"""Settings of the notifier: its consumer and delivery workers, its unsubscribe page and the local
mail sink. Read from the environment; no I/O."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from pathlib import Path

from partnermatch.settings import (
    KAFKA_BOOTSTRAP_SERVERS,
    REDIS_URL,
    SERVICE_TOKEN,
    STATE_DIR,
    SettingError,
    setting,
)
from partnermatch.smtp import MAIL_FROM as NOTIFIER_FROM
from partnermatch.smtp import SMTP_HOST as NOTIFIER_SMTP_HOST
from partnermatch.smtp import SMTP_PASSWORD as NOTIFIER_SMTP_PASSWORD
from partnermatch.smtp import SMTP_PORT as NOTIFIER_SMTP_PORT
from partnermatch.smtp import SMTP_STARTTLS as NOTIFIER_SMTP_STARTTLS
from partnermatch.smtp import SMTP_TIMEOUT_S as NOTIFIER_SMTP_TIMEOUT_S
from partnermatch.smtp import SMTP_USER as NOTIFIER_SMTP_USER
from partnermatch.smtp import flag as _flag
from partnermatch.smtp import parse_sender as parse_sender
from services.notifier.domain import LEDGER_KEEP_DAYS, LEDGER_KEEP_DAYS_MAX

NOTIFIER_REDIS_URL = setting(
    "NOTIFIER_REDIS_URL",
    None,
    "Redis of the notifier: its delivery ledger and suppressions (default: REDIS_URL)",
)
NOTIFIER_GROUP = setting("NOTIFIER_GROUP", "notifier", "Kafka consumer group of the notifier consumers")
NOTIFIER_PROFILES_URL = setting(
    "NOTIFIER_PROFILES_URL",
    "http://127.0.0.1:8081",
    "Profiles service the notifier reads organisations, contacts and coordinators from, when it sends",
)
NOTIFIER_PROFILES_PUBLIC_URL = setting(
    "NOTIFIER_PROFILES_PUBLIC_URL",
    None,
    "Public base URL of the organisations' pages, as people reach them; the link to 'my "
    "partnerships' in emails starts with it (default: PROFILES_PUBLIC_URL, else "
    "http://127.0.0.1:8081)",
)
LOCAL_PROFILES_PUBLIC_URL = "http://127.0.0.1:8081"
NOTIFIER_REVIEW_PUBLIC_URL = setting(
    "NOTIFIER_REVIEW_PUBLIC_URL",
    "http://127.0.0.1:8082",
    "Public base URL of the coordinators' page, as coordinators reach it; the links in their "
    "digests and decision notices start with it",
)
NOTIFIER_DIGEST_INTERVAL_S = setting(
    "NOTIFIER_DIGEST_INTERVAL_S",
    "86400",
    "Period of the coordinators' digest of new suggestions (seconds; periods start at multiples "
    "of it since the epoch, so a day starts at midnight UTC): at most one digest per cluster and "
    "period, and only when new suggestions wait",
)
NOTIFIER_PROFILES_TIMEOUT_S = setting(
    "NOTIFIER_PROFILES_TIMEOUT_S", "10", "Timeout of one call to the profiles service (seconds)"
)
NOTIFIER_HOST = setting(
    "NOTIFIER_HOST",
    "127.0.0.1",
    "Address the notifier's unsubscribe page listens on (`partnermatch up`)",
)
NOTIFIER_PORT = setting("NOTIFIER_PORT", "8083", "Port of the notifier's unsubscribe page (`partnermatch up`)")
NOTIFIER_PUBLIC_URL = setting(
    "NOTIFIER_PUBLIC_URL",
    "http://127.0.0.1:8083",
    "Public base URL of the notifier's web app; unsubscribe links in emails start with it",
)
NOTIFIER_SECRET_KEY = setting(
    "NOTIFIER_SECRET_KEY",
    None,
    "Secret signing the one-click unsubscribe links. `partnermatch up` generates one",
    secret=True,
)
NOTIFIER_RETRY_BASE_S = setting(
    "NOTIFIER_RETRY_BASE_S",
    "60",
    "First wait before retrying a temporary failure (SMTP 4xx, timeout, profiles down); doubles "
    "each "
    "attempt, with jitter",
)
NOTIFIER_RETRY_MAX_S = setting("NOTIFIER_RETRY_MAX_S", "3600", "Longest wait between two attempts (seconds)")
NOTIFIER_MAX_ATTEMPTS = setting(
    "NOTIFIER_MAX_ATTEMPTS", "12", "Attempts of one delivery before it is recorded as failed"
)
NOTIFIER_CLAIM_LEASE_S = setting(
    "NOTIFIER_CLAIM_LEASE_S",
    "300",
    "A delivery claimed longer ago than this belongs to a crashed worker: back to pending if "
    "nothing was "
    "handed to SMTP yet, else `uncertain` (never resent automatically). Keep it well above "
    "NOTIFIER_SMTP_TIMEOUT_S",
)
NOTIFIER_LEDGER_KEEP_DAYS = setting(
    "NOTIFIER_LEDGER_KEEP_DAYS",
    str(LEDGER_KEEP_DAYS),
    "Days the delivery ledger keeps a finished match or coordinators' notice (every delivery sent, "
    "failed or skipped) before its records expire (its id stays, so a replayed event sends nothing "
    "again); 0 gives none an expiry",
)
NOTIFIER_SEND_THREADS = setting("NOTIFIER_SEND_THREADS", "2", "Delivery worker threads per notifier process")
NOTIFIER_POLL_MS = setting(
    "NOTIFIER_POLL_MS",
    "500",
    "How often an idle delivery worker looks for due deliveries (milliseconds)",
)
NOTIFIER_STATS_INTERVAL_S = setting(
    "NOTIFIER_STATS_INTERVAL_S",
    "60",
    "How often the notifier logs its delivery counts and rates (seconds)",
)
MAILSINK_HOST = setting("MAILSINK_HOST", "127.0.0.1", "Address the local mail sink listens on (`partnermatch up`)")
MAILSINK_PORT = setting("MAILSINK_PORT", "2525", "Port of the local mail sink (`partnermatch up`)")
MAILSINK_DIR = setting(
    "MAILSINK_DIR",
    None,
    "Folder where the local mail sink writes each message as an .eml file (default: PARTNERMATCH_STATE_DIR/mail)",
)


@dataclass(frozen=True)
class NotifierSettings:
    redis_url: str
    kafka_bootstrap: str
    profiles_url: str = "http://127.0.0.1:8081"
    service_token: str | None = None
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:8083"
    profiles_public_url: str = LOCAL_PROFILES_PUBLIC_URL
    review_public_url: str = "http://127.0.0.1:8082"
    digest_interval_s: float = 86400.0
    sender: str = "partnermatch <noreply@partnermatch.localhost>"
    group_id: str = "notifier"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 30.0
    profiles_timeout_s: float = 10.0
    retry_base_s: float = 60.0
    retry_max_s: float = 3600.0
    max_attempts: int = 12
    claim_lease_s: float = 300.0
    ledger_keep_days: float = LEDGER_KEEP_DAYS
    send_threads: int = 2
    poll_ms: int = 500
    stats_interval_s: float = 60.0

    def __post_init__(self) -> None:
        parse_sender(self.sender)
        if self.digest_interval_s < 1:
            raise SettingError("NOTIFIER_DIGEST_INTERVAL_S must be at least 1")
        if self.max_attempts < 1 or self.send_threads < 1:
            raise SettingError("NOTIFIER_MAX_ATTEMPTS and NOTIFIER_SEND_THREADS must be at least 1")
        if not 0 <= self.ledger_keep_days <= LEDGER_KEEP_DAYS_MAX:  # also not a NaN
            raise SettingError(f"NOTIFIER_LEDGER_KEEP_DAYS must be from 0 (no expiry) to {LEDGER_KEEP_DAYS_MAX}")

    @property
    def ledger_keep_s(self) -> int:
        """NOTIFIER_LEDGER_KEEP_DAYS in seconds: 0, else at least one."""
        return max(1, round(self.ledger_keep_days * 86400)) if self.ledger_keep_days else 0

    @property
    def sender_address(self) -> Address:
        return parse_sender(self.sender)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifierSettings:
        env = os.environ if env is None else env
        return cls(
            redis_url=NOTIFIER_REDIS_URL.read(env) or REDIS_URL.read(env) or "",
            kafka_bootstrap=KAFKA_BOOTSTRAP_SERVERS.read(env) or "",
            profiles_url=(NOTIFIER_PROFILES_URL.read(env) or "").rstrip("/"),
            service_token=SERVICE_TOKEN.read(env),
            secret_key=NOTIFIER_SECRET_KEY.read(env),
            public_url=(NOTIFIER_PUBLIC_URL.read(env) or "").rstrip("/"),
            # The profiles service's own setting, when only that one is set: one address, once.
            profiles_public_url=(
                NOTIFIER_PROFILES_PUBLIC_URL.read(env) or env.get("PROFILES_PUBLIC_URL") or LOCAL_PROFILES_PUBLIC_URL
            ).rstrip("/"),
            review_public_url=(NOTIFIER_REVIEW_PUBLIC_URL.read(env) or "").rstrip("/"),
            digest_interval_s=NOTIFIER_DIGEST_INTERVAL_S.read_float(env),
            sender=NOTIFIER_FROM.read(env) or "",
            group_id=NOTIFIER_GROUP.read(env) or "notifier",
            smtp_host=NOTIFIER_SMTP_HOST.read(env) or "127.0.0.1",
            smtp_port=NOTIFIER_SMTP_PORT.read_int(env),
            smtp_user=NOTIFIER_SMTP_USER.read(env),
            smtp_password=NOTIFIER_SMTP_PASSWORD.read(env),
            smtp_starttls=_flag(NOTIFIER_SMTP_STARTTLS.read(env)),
            smtp_timeout_s=NOTIFIER_SMTP_TIMEOUT_S.read_float(env),
            profiles_timeout_s=NOTIFIER_PROFILES_TIMEOUT_S.read_float(env),
            retry_base_s=NOTIFIER_RETRY_BASE_S.read_float(env),
            retry_max_s=NOTIFIER_RETRY_MAX_S.read_float(env),
            max_attempts=NOTIFIER_MAX_ATTEMPTS.read_int(env),
            claim_lease_s=NOTIFIER_CLAIM_LEASE_S.read_float(env),
            ledger_keep_days=NOTIFIER_LEDGER_KEEP_DAYS.read_float(env),
            send_threads=NOTIFIER_SEND_THREADS.read_int(env),
            poll_ms=NOTIFIER_POLL_MS.read_int(env),
            stats_interval_s=NOTIFIER_STATS_INTERVAL_S.read_float(env),
        )

    def require_secret_key(self) -> None:
        """Unsubscribe links can be neither made nor checked without it; say so at start-up."""
        if not self.secret_key:
            raise SettingError("NOTIFIER_SECRET_KEY must be set (`partnermatch up` generates one)")

    def require_service_token(self) -> None:
        """Contacts cannot be read without it; say so at start-up."""
        if not self.service_token:
            raise SettingError("PARTNERMATCH_SERVICE_TOKEN must be set (`partnermatch up` generates one)")


@dataclass(frozen=True)
class MailSinkSettings:
    host: str
    port: int
    folder: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MailSinkSettings:
        env = os.environ if env is None else env
        folder = MAILSINK_DIR.read(env) or str(Path(STATE_DIR.read(env) or ".state") / "mail")
        return cls(
            host=MAILSINK_HOST.read(env) or "127.0.0.1",
            port=MAILSINK_PORT.read_int(env),
            folder=Path(folder),
        )
