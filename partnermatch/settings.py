"""Settings read from the environment: one registry of every variable, typed dataclasses per service.

Every variable is declared once with `setting(...)`, so the README table, the compose file check
and the services all agree on the same names. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    help: str
    secret: bool = False

    def read(self, env: Mapping[str, str]) -> str | None:
        value = env.get(self.name)
        if value is None or value == "":
            return self.default
        return value

    def read_int(self, env: Mapping[str, str]) -> int:
        raw = self.read(env)
        try:
            return int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SettingError(f"{self.name} must be an integer, got {raw!r}") from None

    def read_float(self, env: Mapping[str, str]) -> float:
        raw = self.read(env)
        try:
            return float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise SettingError(f"{self.name} must be a number, got {raw!r}") from None


class SettingError(ValueError):
    """A variable is present but unusable; the message names it."""


REGISTRY: dict[str, Setting] = {}


def setting(name: str, default: str | None, help: str, secret: bool = False) -> Setting:
    existing = REGISTRY.get(name)
    if existing is not None:
        return existing
    declared = Setting(name, default, help, secret)
    REGISTRY[name] = declared
    return declared


# Shared by every service.
REDIS_URL = setting("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis for every service that has no own URL set")
KAFKA_BOOTSTRAP_SERVERS = setting(
    "KAFKA_BOOTSTRAP_SERVERS",
    "127.0.0.1:9092",
    "Kafka bootstrap servers (comma-separated). For `partnermatch up`: when set, no local broker is started",
)
LOG_LEVEL = setting("LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING, ERROR")
LOG_FORMAT = setting("LOG_FORMAT", "text", "Log format: `text` (key=value) or `json` (one object per line)")
SERVICE_TOKEN = setting(
    "PARTNERMATCH_SERVICE_TOKEN",
    None,
    "Secret bearer token services use to call each other (e.g. the notifier reading contacts). "
    "`partnermatch up` generates one under the state folder",
    secret=True,
)
ADMIN_TOKEN = setting(
    "PARTNERMATCH_ADMIN_TOKEN",
    None,
    "Secret bearer token of the admin (creates clusters and coordinators). "
    "`partnermatch up` generates one under the state folder",
    secret=True,
)
STATE_DIR = setting(
    "PARTNERMATCH_STATE_DIR", ".state", "Folder of the local stack's data (Redis AOF, logs, generated secrets)"
)


TRUSTED_PROXIES = setting(
    "PARTNERMATCH_TRUSTED_PROXIES",
    "0",
    "How many reverse proxies stand in front of each web app and set X-Forwarded-For/-Proto: the client "
    "address (for rate limits) and https are then read from them. 0 trusts none (a client could forge them)",
)


STACK_ENV_FILE = "stack.env"


def load_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment, over the addresses and secrets `partnermatch up` wrote to its state
    folder, so commands such as `partnermatch events tail` find the running local stack."""
    import os
    from pathlib import Path

    env = dict(os.environ if environ is None else environ)
    stack_file = Path(STATE_DIR.read(env) or ".state") / STACK_ENV_FILE
    merged: dict[str, str] = {}
    if stack_file.is_file():
        for line in stack_file.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip() and not name.startswith("#"):
                merged[name.strip()] = value.strip()
    merged.update(env)
    return merged
