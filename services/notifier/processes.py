"""The processes of the notifier, as a launcher runs them (`docker-compose.yml` names the same, with
Mailpit for the local mail sink): the mail sink, the one-click unsubscribe page under gunicorn, and
the consumer that sends the emails. No I/O."""

from __future__ import annotations

from collections.abc import Mapping

from partnermatch.processes import Address, Process
from partnermatch.smtp import SMTP_HOST, SMTP_PORT
from services.notifier.config import (
    MAILSINK_PORT,
    NOTIFIER_HOST,
    NOTIFIER_PORT,
    NOTIFIER_PROFILES_URL,
    NOTIFIER_PUBLIC_URL,
    NOTIFIER_REVIEW_PUBLIC_URL,
    NOTIFIER_SECRET_KEY,
    MailSinkSettings,
)

# Read by NotifierSettings when NOTIFIER_PROFILES_PUBLIC_URL is not set.
PROFILES_PUBLIC_URL = "PROFILES_PUBLIC_URL"


def processes(env: Mapping[str, str]) -> list[Process]:
    sink = MailSinkSettings.from_env(env)
    bind = f"{NOTIFIER_HOST.read(env)}:{NOTIFIER_PORT.read(env)}"
    secrets = (NOTIFIER_SECRET_KEY.name,)
    links = {
        NOTIFIER_PROFILES_URL.name: Address("profiles"),
        NOTIFIER_PUBLIC_URL.name: Address("unsubscribe"),
        PROFILES_PUBLIC_URL: Address("profiles"),
    }
    return [
        Process(
            "mailsink",
            module="services.notifier.entrypoints.mailsink",
            bind=f"{sink.host}:{sink.port}",
            port_setting=MAILSINK_PORT.name,
            address=f"smtp://{sink.host}:{sink.port}  (every email kept in {sink.folder}/*.eml)",
        ),
        Process(
            "unsubscribe",
            app="services.notifier.entrypoints.web:create_app()",
            bind=bind,
            port_setting=NOTIFIER_PORT.name,
            uses=links,
            address=f"http://{bind}  (one-click unsubscribe links)",
            secrets=secrets,
        ),
        Process(
            "notifier",
            module="services.notifier.entrypoints.consumer",
            uses={
                **links,
                NOTIFIER_REVIEW_PUBLIC_URL.name: Address("review"),
                SMTP_HOST.name: Address("mailsink", "host"),
                SMTP_PORT.name: Address("mailsink", "port"),
            },
            secrets=secrets,
        ),
    ]
