"""The processes of the matcher, as a launcher runs them (`docker-compose.yml` names the same): the
consumer that keeps the index and writes suggestions (several share the work in one group), the
outbox relay, and the coordinators' page and review API under gunicorn. No I/O."""

from __future__ import annotations

from collections.abc import Mapping

from partnermatch.processes import Address, Process
from services.matcher.config import MATCHER_HOST, MATCHER_PORT, MATCHER_PROFILES_URL, MATCHER_SECRET_KEY


def processes(env: Mapping[str, str]) -> list[Process]:
    bind = f"{MATCHER_HOST.read(env)}:{MATCHER_PORT.read(env)}"
    to_profiles = {MATCHER_PROFILES_URL.name: Address("profiles")}
    secrets = (MATCHER_SECRET_KEY.name,)
    return [
        Process(
            "matcher", module="services.matcher.entrypoints.consumer", uses=to_profiles, scales=True, secrets=secrets
        ),
        Process("matcher-relay", module="services.matcher.entrypoints.relay", secrets=secrets),
        Process(
            "review",
            app="services.matcher.entrypoints.web:create_app()",
            bind=bind,
            port_setting=MATCHER_PORT.name,
            uses=to_profiles,
            address=f"http://{bind}/login  (coordinators' page; review API: http://{bind}/v1/suggestions, "
            f"OpenAPI: http://{bind}/openapi.json)",
            secrets=secrets,
        ),
    ]
