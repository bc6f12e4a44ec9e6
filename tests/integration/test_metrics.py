"""GET /metrics of each web app, run under gunicorn with its workers as `partnermatch up` runs it
(multiprocess mode): request counts of every worker add up, the outbox depth follows writes
while no relay runs, and a consumer group's lag is read from the real broker."""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client.parser import text_string_to_metric_families

from launcher.metrics import RestartsCollector
from launcher.procs import RestartPolicy
from launcher.stack import ServiceSpec, Stack
from partnermatch import broker
from partnermatch.broker import ensure_topics
from partnermatch.metrics import ConsumerLagCollector, lag_reader
from partnermatch.topics import ALL_TOPICS, MATCH_DECISIONS, PROFILES
from tests.helpers import wait_until
from tests.integration.edge import gunicorn_service

pytestmark = pytest.mark.integration

ADMIN = "metrics-test-admin-token-0123456789"


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _post(url: str, payload: dict, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of GET /metrics: (name, sorted labels) -> value."""
    status, text = _get(base + "/metrics")
    assert status == 200, text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def service_env(redis_server, kafka_bootstrap, tmp_path) -> dict[str, str]:
    """As `partnermatch up` gives it: a state folder (so each app gets its multiprocess folder)."""
    return {
        "REDIS_URL": redis_server.url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PARTNERMATCH_STATE_DIR": str(tmp_path / "state"),
        "PARTNERMATCH_ADMIN_TOKEN": ADMIN,
        "PARTNERMATCH_SERVICE_TOKEN": "metrics-test-service-token-0123456789",
        "NOTIFIER_SECRET_KEY": "metrics-test-notifier-secret",
        "MATCHER_SECRET_KEY": "metrics-test-matcher",
        "PROFILES_SECRET_KEY": "metrics-test-profiles",
    }


@pytest.fixture
def start(service_env, tmp_path) -> Iterator[Callable[..., str]]:
    started: list = []

    def start(name: str, **env: str) -> str:
        context = gunicorn_service(name, {**service_env, **env}, log_file=tmp_path / f"{name}.log")
        started.append(context)
        return context.__enter__()

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)


@pytest.mark.parametrize("name", ["profiles", "review", "unsubscribe"])
def test_each_web_app_counts_the_requests_of_all_its_workers(start, redis_client, name):
    base = start(name)
    labels = {"method": "GET", "route": "/health", "status": "200"}
    before = sample(scrape(base), "partnermatch_http_requests_total", **labels)
    for _ in range(12):  # several workers: some of these reach each one
        assert _get(base + "/health")[0] == 200
    after = scrape(base)
    assert sample(after, "partnermatch_http_requests_total", **labels) == before + 12
    assert sample(after, "partnermatch_http_request_duration_seconds_count", **labels) == before + 12
    assert sample(after, "partnermatch_http_request_duration_seconds_bucket", le="+Inf", **labels) == before + 12
    # A 404 is counted under one label value, not one series per path asked for.
    assert _get(base + "/no/such/page-4711")[0] == 404
    unmatched = sample(
        scrape(base), "partnermatch_http_requests_total", method="GET", route="<unmatched>", status="404"
    )
    assert unmatched >= 1
    assert not any("4711" in str(key) for key in scrape(base))


def test_metrics_are_refused_to_clients_outside_the_allowed_networks(start):
    base = start("profiles", PARTNERMATCH_METRICS_ALLOW="10.0.0.0/8")
    status, body = _get(base + "/metrics")
    assert status == 404 and "partnermatch_http" not in body
    assert _get(base + "/health")[0] == 200


def test_the_outbox_depth_counts_writes_the_stopped_relay_has_not_published(start, redis_client):
    base = start("profiles")
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert sample(scrape(base), "partnermatch_outbox_depth", outbox="profiles") == 0
    assert (
        _post(base + "/v1/clusters", {"id": "rs-vojvodina-ict", "name": "ICT Vojvodina", "country": "RS"}, admin) == 201
    )
    for i in range(3):
        assert (
            _post(
                base + "/v1/organisations",
                {
                    "name": f"Organizacija {i}",
                    "cluster_id": "rs-vojvodina-ict",
                    "country": "RS",
                    "language": "sr",
                    "capabilities": f"Razvoj softvera {i}",
                    "goals": f"Tražimo partnere {i}",
                    "sectors": ["ict"],
                },
                {},
            )
            == 201
        )
    depth = redis_client.xlen("{profiles}:outbox")
    assert depth >= 3  # one event per registration, nothing takes them out
    samples = scrape(base)
    assert sample(samples, "partnermatch_outbox_depth", outbox="profiles") == depth
    assert sample(samples, "partnermatch_metrics_source_up", source="redis") == 1


def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=group, enable_auto_commit=False)
    try:
        consumer.assign(list(offsets))
        consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
    finally:
        consumer.close(autocommit=False)


def _produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    # One batch per partition (one flush): the end is then not what Tansu answers to "latest".
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), linger_ms=50)
    try:
        for partition, count in per_partition.items():
            for i in range(count):
                producer.send(topic, key=f"k{i}".encode(), value=b"{}", partition=partition)
        producer.flush(10)
    finally:
        producer.close(5)


def test_the_lag_of_a_group_is_the_records_it_has_not_committed_on_each_partition(kafka_bootstrap, unique_name):
    topic, group = unique_name("lag"), unique_name("group")
    ensure_topics(kafka_bootstrap, {topic: 3})
    _produce(kafka_bootstrap, topic, {0: 5, 1: 3, 2: 0})
    _commit(kafka_bootstrap, group, {TopicPartition(topic, 0): 2})
    offsets = {p.partition: p for p in broker.group_offsets(kafka_bootstrap, group, [topic])}
    assert {p: (o.committed, o.end, o.lag) for p, o in offsets.items()} == {
        0: (2, 5, 3),
        1: (None, 3, 3),
        2: (None, 0, 0),
    }
    families = {f.name: f for f in ConsumerLagCollector(group, lag_reader(kafka_bootstrap, group, [topic])).collect()}
    lags = {s.labels["partition"]: s.value for s in families["partnermatch_consumer_lag"].samples}
    assert lags == {"0": 3, "1": 3, "2": 0}


@pytest.mark.parametrize(
    ("name", "group_variable", "topic"),
    [("review", "MATCHER_GROUP", PROFILES), ("unsubscribe", "NOTIFIER_GROUP", MATCH_DECISIONS)],
)
def test_the_web_app_shows_the_lag_of_its_services_consumer_group(
    start, kafka_bootstrap, unique_name, name, group_variable, topic
):
    ensure_topics(kafka_bootstrap, {topic: ALL_TOPICS[topic]})
    group = unique_name("group")
    base = start(name, **{group_variable: group})
    _produce(kafka_bootstrap, topic, {0: 4})
    end = {p.partition: p.end for p in broker.group_offsets(kafka_bootstrap, group, [topic])}
    assert end[0] >= 4

    def lag(partition: int) -> float:
        return sample(scrape(base), "partnermatch_consumer_lag", group=group, topic=topic, partition=str(partition))

    assert lag(0) == end[0]  # nothing committed: everything since the start is to be read
    _commit(kafka_bootstrap, group, {TopicPartition(topic, 0): end[0] - 1})
    wait_until(lambda: lag(0) == 1, timeout=10, message="the lag after a commit")
    assert sample(scrape(base), "partnermatch_metrics_source_up", source="kafka") == 1


def test_the_launcher_counts_the_restarts_of_a_part_and_empties_its_metrics_folder_at_each_start(tmp_path):
    folder = tmp_path / "metrics" / "sleeper"
    folder.mkdir(parents=True)
    (folder / "counter_4711.db").write_bytes(b"left by a run that died")
    sleeper = ServiceSpec(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], env={"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    )
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    quick = RestartPolicy(first_delay_s=0.1, max_delay_s=0.2, give_up_after=3, window_s=30.0)
    with Stack(tmp_path / "state", env=env, specs=[sleeper], topics={}, echo=False, restart_policy=quick) as stack:
        assert list(folder.iterdir()) == []
        collector = RestartsCollector(stack.part_states)

        def restarts() -> dict[str, float]:
            return {
                s.labels["part"]: s.value
                for family in collector.collect()
                for s in family.samples
                if s.name == "partnermatch_part_restarts_total"
            }

        assert restarts() == {"redis": 0, "kafka": 0, "sleeper": 0}
        [part] = [p for p in stack.supervisor.parts if p.name == "sleeper"]
        old = part.process.pid
        (folder / "counter_4712.db").write_bytes(b"written by the process about to die")
        os.kill(old, signal.SIGKILL)

        def restarted() -> bool:
            assert stack.supervise() is None
            return part.process.pid != old and part.process.alive

        wait_until(restarted, timeout=15, interval=0.1, message="the sleeper to be restarted")
        assert restarts()["sleeper"] == 1
        running = {
            s.labels["part"]: s.value
            for family in collector.collect()
            for s in family.samples
            if s.name == "partnermatch_part_running"
        }
        assert running["sleeper"] == 1
        assert list(folder.iterdir()) == []


def test_collectors_read_a_redis_cluster_with_a_short_timeout(redis_cluster_client):
    from redis.cluster import RedisCluster

    from partnermatch.metrics import short_timeout_copy

    copy = short_timeout_copy(redis_cluster_client, timeout_s=0.5)
    assert isinstance(copy, RedisCluster) and copy is not redis_cluster_client
    assert {(n.host, n.port) for n in copy.get_nodes()} == {(n.host, n.port) for n in redis_cluster_client.get_nodes()}
    redis_cluster_client.set("{outbox}:probe", "1")
    assert copy.get("{outbox}:probe") == b"1"
    timeouts = {n.redis_connection.connection_pool.connection_kwargs["socket_timeout"] for n in copy.get_nodes()}
    assert timeouts == {0.5}
    copy.close()
