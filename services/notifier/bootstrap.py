"""The one place where the notifier's real adapters are built; tests pass their own."""

from __future__ import annotations

from dataclasses import dataclass

from partnermatch.redis_client import connect
from partnermatch.smtp import SmtpMailer
from services.notifier.adapters.profiles_client import ProfilesClient
from services.notifier.adapters.redis_ledger import RedisDeliveryLedger
from services.notifier.config import NotifierSettings
from services.notifier.tokens import UnsubscribeTokens


@dataclass
class NotifierDeps:
    ledger: RedisDeliveryLedger
    profiles: ProfilesClient
    mailer: SmtpMailer
    tokens: UnsubscribeTokens


def build_ledger(settings: NotifierSettings) -> RedisDeliveryLedger:
    """The delivery ledger alone (the operators' `partnermatch ledger` needs no secret key)."""
    # redis-py connects on the first command (a cluster client reads the slot map here): nothing
    # happens at import.
    client = connect(settings.redis_url, socket_timeout=10, health_check_interval=30)
    return RedisDeliveryLedger(client, keep_s=settings.ledger_keep_s)


def build_deps(settings: NotifierSettings) -> NotifierDeps:
    settings.require_secret_key()
    ledger = build_ledger(settings)
    # Before any process of this notifier writes: keys from before the hash tag (once).
    ledger.adopt_untagged_keys()
    return NotifierDeps(
        ledger=ledger,
        profiles=ProfilesClient(settings.profiles_url, settings.service_token, settings.profiles_timeout_s),
        mailer=SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_timeout_s,
            settings.smtp_user,
            settings.smtp_password,
            settings.smtp_starttls,
        ),
        tokens=UnsubscribeTokens(settings.secret_key or ""),
    )
