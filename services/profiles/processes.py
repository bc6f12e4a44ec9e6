"""The processes of the profiles service, as a launcher runs them (`docker-compose.yml` names the
same): the API and the organisations' pages under gunicorn, and the outbox relay. No I/O."""

from __future__ import annotations

from collections.abc import Mapping

from partnermatch.processes import Address, Process
from partnermatch.smtp import SMTP_HOST, SMTP_PORT
from services.profiles.config import (
    PROFILES_HOST,
    PROFILES_MATCHER_URL,
    PROFILES_PORT,
    PROFILES_PUBLIC_URL,
    PROFILES_SECRET_KEY,
)


def processes(env: Mapping[str, str]) -> list[Process]:
    bind = f"{PROFILES_HOST.read(env)}:{PROFILES_PORT.read(env)}"
    pages = (env.get(PROFILES_PUBLIC_URL.name) or f"http://{bind}").rstrip("/")
    secrets = (PROFILES_SECRET_KEY.name,)
    return [
        Process(
            "profiles",
            app="services.profiles.entrypoints.app:create_app()",
            bind=bind,
            port_setting=PROFILES_PORT.name,
            uses={
                PROFILES_MATCHER_URL.name: Address("review"),
                PROFILES_PUBLIC_URL.name: Address("profiles"),
                # Sign-in links go out through the SMTP server the partnership emails use.
                SMTP_HOST.name: Address("mailsink", "host"),
                SMTP_PORT.name: Address("mailsink", "port"),
            },
            address=f"{pages}/  (organisations' pages: register, sign in; "
            f"API: http://{bind}/v1, OpenAPI: http://{bind}/openapi.json)",
            secrets=secrets,
        ),
        Process("relay", module="services.profiles.entrypoints.relay", secrets=secrets),
    ]
