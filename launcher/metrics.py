"""The launcher's own metrics: the restarts of the parts of `partnermatch up`, whether each runs and
whether it was given up, served on loopback by the launcher itself. It is the one process that
outlives every part, so the count is there while a part keeps dying. Does I/O (an HTTP server).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from partnermatch.settings import setting

logger = logging.getLogger(__name__)

UP_METRICS_PORT = setting(
    "PARTNERMATCH_UP_METRICS_PORT",
    "8089",
    "Port on 127.0.0.1 where `partnermatch up` serves the restarts of its parts (GET /metrics); 0: not served",
)


@dataclass(frozen=True)
class PartState:
    name: str
    restarts: int
    running: bool
    given_up: bool


class RestartsCollector(Collector):
    """The parts of `partnermatch up`: restarts, whether each runs, and whether it was given up.
    `parts` reads the supervisor's current view."""

    def __init__(self, parts: Callable[[], Sequence[PartState]]) -> None:
        self.parts = parts

    def collect(self) -> Iterator[Metric]:
        restarts = CounterMetricFamily(
            "partnermatch_part_restarts",
            "Times the supervisor of `partnermatch up` restarted a part after it died",
            labels=["part"],
        )
        running = GaugeMetricFamily("partnermatch_part_running", "1 while the part's process runs", labels=["part"])
        given_up = GaugeMetricFamily(
            "partnermatch_part_given_up",
            "1 when the part died too often and is not restarted any more",
            labels=["part"],
        )
        for part in self.parts():
            restarts.add_metric([part.name], part.restarts)
            running.add_metric([part.name], 1.0 if part.running else 0.0)
            given_up.add_metric([part.name], 1.0 if part.given_up else 0.0)
        yield from (restarts, running, given_up)


def serve_launcher_metrics(port: int, collector: Collector) -> Any:
    """GET http://127.0.0.1:`port`/metrics from a thread of the launcher; returns the server (call
    `shutdown()` on it), or None when the port is taken (the stack runs without it)."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    registry.register(collector)
    try:
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        logger.warning(
            "the launcher's metrics are not served: port taken",
            extra={"port": port, "error": str(exc), "setting": UP_METRICS_PORT.name},
        )
        return None
    return server
