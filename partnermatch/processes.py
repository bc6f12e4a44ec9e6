"""How a service declares the processes it runs, so that a launcher (the local one, `launcher/`) can
run them without knowing their insides; `docker-compose.yml` names the same processes. No I/O.

A process runs a module (`python -m module`) or serves a web app under gunicorn (`app`, bound to
`bind`). What it needs of another process is named, not computed: `uses` maps a variable to the
process whose address the launcher gives it, as the compose file writes `http://profiles:8081`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class Address:
    """What a variable is given of another process: its base URL (`http://host:port`), or its
    host or its port alone (an SMTP server)."""

    process: str
    part: Literal["url", "host", "port"] = "url"


@dataclass(frozen=True)
class Process:
    """One process of a service. `name` is the same in the launcher's table and in the compose
    file. `env` adds to the environment the launcher gives every process; a variable in `uses` is
    given the address of that process unless the environment sets it. `address` tells a person
    where to go; `scales`: several may run at once (they share the work in one consumer group).
    `secrets` names the variables holding the service's own secrets, which a local launcher makes
    (and keeps) when the environment does not set them. `port_setting` names the setting that
    chooses the port in `bind`, for a person to change when it is taken."""

    name: str
    module: str | None = None
    app: str | None = None
    bind: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    uses: Mapping[str, Address] = field(default_factory=dict)
    address: str | None = None
    scales: bool = False
    secrets: tuple[str, ...] = ()
    port_setting: str | None = None

    def __post_init__(self) -> None:
        if (self.module is None) == (self.app is None):
            raise ValueError(f"{self.name}: a process runs either a module or a web app")
        if self.app is not None and self.bind is None:
            raise ValueError(f"{self.name}: a web app needs the address it binds to")

    @property
    def url(self) -> str | None:
        """Base URL of a web app, else None."""
        return f"http://{self.bind}" if self.app else None

    @property
    def health_url(self) -> str | None:
        """Where a web app answers 200 once it serves."""
        return f"{self.url}{HEALTH_PATH}" if self.url else None

    @property
    def metrics_url(self) -> str | None:
        return f"{self.url}{METRICS_PATH}" if self.url else None
