"""Prometheus metrics of every service (prometheus-client): HTTP requests by route and status,
recorded by the shared HTTP edge, and collectors that read the state an operator watches (outbox
depth, consumer lag, deliveries by state) when scraped.

GET /metrics answers only clients in PARTNERMATCH_METRICS_ALLOW (loopback by default), others get a
404. Under gunicorn with PROMETHEUS_MULTIPROC_DIR set, every worker writes its counts there and
/metrics adds them up. Collectors do I/O (Redis, Kafka) only while a scrape runs, with short
timeouts; a source that cannot be read shows as `partnermatch_metrics_source_up 0`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, abort, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from partnermatch.settings import SettingError, setting

if TYPE_CHECKING:  # the broker adapter's value; importing it at run time would load kafka here
    from partnermatch.broker import PartitionOffsets

logger = logging.getLogger(__name__)

METRICS_ALLOW = setting(
    "PARTNERMATCH_METRICS_ALLOW",
    "127.0.0.0/8,::1",
    "Client networks (comma-separated CIDR) that may read GET /metrics of the web apps; others get a 404. "
    "In deployment: the network Prometheus scrapes from, never a public one",
)
MULTIPROC_DIR = setting(
    "PROMETHEUS_MULTIPROC_DIR",
    None,
    "Folder where each gunicorn worker writes its HTTP metrics, so /metrics adds up all workers; empty it "
    "before the app starts (`partnermatch up` keeps one per app under PARTNERMATCH_STATE_DIR/metrics)",
)

# ---- HTTP requests, recorded by the edge -----------------------------------------------------

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # no route matched (a 404, or refused before routing): one label value
_STARTED = "partnermatch.metrics.started"

_HTTP = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "partnermatch_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
    registry=_HTTP,
)
LATENCY = Histogram(
    "partnermatch_http_request_duration_seconds",
    "Time from the request's arrival in the app to its answer, by method, route template and status",
    ["method", "route", "status"],
    registry=_HTTP,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def route_label() -> str:
    """The matched rule's template (`/v1/organisations/<org_id>`), never the path: ids in paths
    would make one series per organisation."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def method_label(method: str) -> str:
    return method if method in _METHODS else "other"  # a client may send any word as a method


def _start_timer() -> None:
    request.environ[_STARTED] = time.perf_counter()


def _record(response: Response) -> Response:
    started = request.environ.get(_STARTED)
    route = route_label()
    if started is None or route == "/metrics":
        return response
    labels = (method_label(request.method), route, str(response.status_code))
    REQUESTS.labels(*labels).inc()
    LATENCY.labels(*labels).observe(time.perf_counter() - started)
    return response


def instrument(app: Flask) -> None:
    """Count and time every request of `app`. Call it before any other `before_request` function
    is registered (harden does), so refused requests are timed too."""
    folder = MULTIPROC_DIR.read(os.environ)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)  # a missing folder would fail every request
    app.before_request(_start_timer)
    app.after_request(_record)


# ---- GET /metrics ------------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """`127.0.0.0/8,::1` → networks; an empty text allows nobody."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingError(f"{METRICS_ALLOW.name}: {part!r} is not a network (e.g. 10.0.0.0/8)") from None
    return networks


def is_allowed(address: str | None, networks: Sequence[Network]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


class _Local(Collector):
    """This process's HTTP metrics (when no multiprocess folder is set)."""

    def collect(self) -> Iterable[Metric]:
        return _HTTP.collect()


class _Merged(Collector):
    """`collectors` as one: families of the same name (each reports its source's
    `partnermatch_metrics_source_up`) become one, as the exposition format requires."""

    def __init__(self, collectors: Sequence[Collector]) -> None:
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for collector in self.collectors:
            for family in collector.collect():
                if family.name in families:
                    families[family.name].samples.extend(family.samples)
                else:
                    families[family.name] = family
        return list(families.values())


def registry_for_scrape(collectors: Iterable[Collector] = ()) -> CollectorRegistry:
    """What one scrape reports: the HTTP metrics of every worker (or of this process), and
    `collectors`, each read now."""
    registry = CollectorRegistry()
    folder = MULTIPROC_DIR.read(os.environ)
    if folder:
        MultiProcessCollector(registry, folder)
    else:
        registry.register(_Local())
    registry.register(_Merged(list(collectors)))
    return registry


def expose(app: Flask, collectors: Sequence[Collector] = (), allow: Sequence[Network] | None = None) -> None:
    """GET /metrics on `app`, for clients in `allow` (default: PARTNERMATCH_METRICS_ALLOW)."""
    networks = parse_networks(METRICS_ALLOW.read(os.environ) or "") if allow is None else list(allow)

    def metrics() -> Response:
        if not is_allowed(request.remote_addr, networks):
            abort(404)
        body = generate_latest(registry_for_scrape(collectors))
        return Response(body, status=200, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])


# ---- collectors read at scrape time -------------------------------------------------------------


def _source_up(source: str, up: bool) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "partnermatch_metrics_source_up",
        "1 when the source of these metrics answered this scrape, else 0",
        labels=["source"],
    )
    family.add_metric([source], 1.0 if up else 0.0)
    return family


_failing: set[str] = set()


def _failed(source: str, what: str, exc: Exception) -> GaugeMetricFamily:
    # Logged when it starts failing, not at every scrape while it is down.
    if what not in _failing:
        logger.warning(
            "metrics: a source does not answer",
            extra={"source": source, "what": what, "error": f"{type(exc).__name__}: {exc}"},
        )
    _failing.add(what)
    return _source_up(source, False)


def _answered(source: str, what: str) -> GaugeMetricFamily:
    if what in _failing:
        _failing.discard(what)
        logger.info("metrics: a source answers again", extra={"source": source, "what": what})
    return _source_up(source, True)


class OutboxDepthCollector(Collector):
    """`partnermatch_outbox_depth{outbox}`: events written but not yet on Kafka. `depths` maps an
    outbox's name to a function returning its length (e.g. `Outbox.size`)."""

    def __init__(self, depths: Mapping[str, Callable[[], int]], source: str = "redis") -> None:
        self.depths = dict(depths)
        self.source = source

    def collect(self) -> Iterator[Metric]:
        try:
            values = {name: int(depth()) for name, depth in self.depths.items()}
        except Exception as exc:  # noqa: BLE001 - a scrape reports the failure, never raises
            yield _failed(self.source, "outbox depth", exc)
            return
        family = GaugeMetricFamily(
            "partnermatch_outbox_depth",
            "Events in a service's outbox in Redis, not yet published to Kafka",
            labels=["outbox"],
        )
        for name, value in sorted(values.items()):
            family.add_metric([name], value)
        yield family
        yield _answered(self.source, "outbox depth")


class ConsumerLagCollector(Collector):
    """`partnermatch_consumer_lag{group,topic,partition}`: records on the topic the group has not
    committed yet, with the committed and end offsets. `read` returns the group's
    PartitionOffsets (e.g. `partnermatch.broker.group_offsets`)."""

    def __init__(self, group: str, read: Callable[[], Sequence[PartitionOffsets]], source: str = "kafka") -> None:
        self.group = group
        self.read = read
        self.source = source

    def collect(self) -> Iterator[Metric]:
        try:
            offsets = list(self.read())
        except Exception as exc:  # noqa: BLE001 - a scrape reports the failure, never raises
            yield _failed(self.source, f"lag of {self.group}", exc)
            return
        labels = ["group", "topic", "partition"]
        lag = GaugeMetricFamily(
            "partnermatch_consumer_lag",
            "Records on a partition the consumer group has not committed yet",
            labels=labels,
        )
        committed = GaugeMetricFamily(
            "partnermatch_consumer_committed_offset",
            "The consumer group's committed offset (-1: none yet)",
            labels=labels,
        )
        end = GaugeMetricFamily(
            "partnermatch_topic_end_offset", "The offset the next record of the partition gets", labels=labels
        )
        for p in sorted(offsets, key=lambda p: (p.topic, p.partition)):
            values = [self.group, p.topic, str(p.partition)]
            lag.add_metric(values, p.lag)
            committed.add_metric(values, -1 if p.committed is None else p.committed)
            end.add_metric(values, p.end)
        yield from (lag, committed, end)
        yield _answered(self.source, f"lag of {self.group}")


# The ledger's counters ({notifier}:stats) that say how many deliveries reached a final state; each
# delivery reaches one of them at most once, uncertain aside (an operator may release it).
_FINAL_COUNTERS = {"sent": "deliveries_sent", "failed": "deliveries_failed", "skipped": "deliveries_skipped"}


def deliveries_by_state(counts: Mapping[str, int]) -> dict[str, int]:
    """From the ledger's `counts()`: deliveries now sent, failed, skipped, uncertain (waiting for an
    operator) and open (pending, claimed, being sent or waiting for a retry)."""
    states = {state: int(counts.get(counter, 0)) for state, counter in _FINAL_COUNTERS.items()}
    states["uncertain"] = int(counts.get("uncertain_now", 0))
    states["open"] = max(0, int(counts.get("deliveries_created", 0)) - sum(states.values()))
    return states


class DeliveryStatesCollector(Collector):
    """The notifier's ledger: `partnermatch_notifier_deliveries{state}`, the entries due for a
    worker, and the unsubscribed addresses. `counts` is `RedisDeliveryLedger.counts`."""

    def __init__(self, counts: Callable[[], Mapping[str, int]], source: str = "redis") -> None:
        self.counts = counts
        self.source = source

    def collect(self) -> Iterator[Metric]:
        try:
            counts = self.counts()
        except Exception as exc:  # noqa: BLE001 - a scrape reports the failure, never raises
            yield _failed(self.source, "delivery ledger", exc)
            return
        deliveries = GaugeMetricFamily(
            "partnermatch_notifier_deliveries", "Deliveries (one email to one recipient) by state", labels=["state"]
        )
        for state, value in deliveries_by_state(counts).items():
            deliveries.add_metric([state], value)
        yield deliveries
        yield GaugeMetricFamily(
            "partnermatch_notifier_due",
            "Matches and deliveries waiting for a worker (new or retrying)",
            value=int(counts.get("backlog", 0)),
        )
        yield GaugeMetricFamily(
            "partnermatch_notifier_in_flight",
            "Matches and deliveries a worker holds right now",
            value=int(counts.get("inflight", 0)),
        )
        yield GaugeMetricFamily(
            "partnermatch_notifier_suppressed_addresses",
            "Addresses that unsubscribed from partnership emails",
            value=int(counts.get("suppressed", 0)),
        )
        yield _answered(self.source, "delivery ledger")


def short_timeout_copy(client: Any, timeout_s: float = 1.0) -> Any:
    """A Redis client to the same server as `client` that gives up after `timeout_s`, for
    collectors: a scrape must answer within the scraper's timeout, and the services' own clients
    wait 10 s. A client of another kind (a test's fake) is returned as it is."""
    import redis
    from redis.cluster import ClusterNode, RedisCluster

    if isinstance(client, RedisCluster):  # the same nodes (partnermatch.redis_client.connect)
        nodes = [ClusterNode(node.host, node.port) for node in client.get_nodes()]
        return RedisCluster(startup_nodes=nodes, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    if not isinstance(client, redis.Redis):
        return client
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


def lag_reader(
    bootstrap: str, group: str, topics: Sequence[str], timeout_s: float = 2.0
) -> Callable[[], Sequence[PartitionOffsets]]:
    """For ConsumerLagCollector: the group's offsets on `topics`, read from the broker."""

    def read() -> Sequence[PartitionOffsets]:
        from partnermatch.broker import group_offsets

        return group_offsets(bootstrap, group, list(topics), timeout_s)

    return read
