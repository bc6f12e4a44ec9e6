"""The metrics: requests counted by route template and status at the edge, /metrics only for
allowed clients, and the collectors read at scrape time, each with fakes for its source."""

from __future__ import annotations

import logging
import socket
import urllib.request

import pytest
from flask import Flask
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from launcher.metrics import PartState, RestartsCollector, serve_launcher_metrics
from partnermatch import metrics
from partnermatch.broker import PartitionOffsets
from partnermatch.httpedge import harden
from partnermatch.metrics import (
    ConsumerLagCollector,
    DeliveryStatesCollector,
    OutboxDepthCollector,
    deliveries_by_state,
    is_allowed,
    parse_networks,
    registry_for_scrape,
)
from partnermatch.settings import SettingError


def samples_of(*collectors) -> dict:
    text = generate_latest(registry_for_scrape(collectors)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def broken() -> int:
    raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


# ---- requests at the edge -------------------------------------------------------------------------


@pytest.fixture
def app() -> Flask:
    app = Flask("metrics-test")
    app.config["MAX_CONTENT_LENGTH"] = 1024
    harden(app)

    @app.post("/v1/things/<thing_id>")
    def thing(thing_id: str):  # type: ignore[no-untyped-def]
        return {"id": thing_id}

    metrics.expose(app, [OutboxDepthCollector({"test": lambda: 7})])
    return app


def requests_counted(client, **labels: str) -> float:
    return value(samples_of_app(client), "partnermatch_http_requests_total", **labels) or 0.0


def samples_of_app(client) -> dict:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.get_data(as_text=True))
        for s in family.samples
    }


def test_requests_are_counted_by_route_template_never_by_path(app):
    client = app.test_client()
    labels = {"method": "POST", "route": "/v1/things/<thing_id>", "status": "200"}
    before = requests_counted(client, **labels)
    for i in range(3):
        assert client.post(f"/v1/things/id-{i}", json={}).status_code == 200
    samples = samples_of_app(client)
    assert value(samples, "partnermatch_http_requests_total", **labels) == before + 3
    assert not any("id-1" in str(key) for key in samples)


def test_a_request_the_edge_refuses_is_counted_with_its_status(app):
    client = app.test_client()
    labels = {"method": "POST", "route": "/v1/things/<thing_id>", "status": "413"}
    before = requests_counted(client, **labels)
    assert client.post("/v1/things/x", data=b"x" * 4096, content_type="application/json").status_code == 413
    assert requests_counted(client, **labels) == before + 1


def test_unknown_paths_and_made_up_methods_share_one_label_value_each(app):
    client = app.test_client()
    before = requests_counted(client, method="other", route="<unmatched>", status="405")
    before_404 = requests_counted(client, method="GET", route="<unmatched>", status="404")
    client.open("/v1/things/x", method="BREW")
    client.get("/nowhere/1")
    client.get("/nowhere/2")
    assert requests_counted(client, method="other", route="<unmatched>", status="405") == before + 1
    assert requests_counted(client, method="GET", route="<unmatched>", status="404") == before_404 + 2


def test_scrapes_are_not_counted_as_requests(app):
    client = app.test_client()
    samples_of_app(client)
    assert (
        value(samples_of_app(client), "partnermatch_http_requests_total", method="GET", route="/metrics", status="200")
        is None
    )


def test_the_app_reports_its_collectors_with_the_requests(app):
    samples = samples_of_app(app.test_client())
    assert value(samples, "partnermatch_outbox_depth", outbox="test") == 7


def test_clients_outside_the_allowed_networks_get_a_404():
    app = Flask("closed")
    app.config["MAX_CONTENT_LENGTH"] = 1024
    harden(app)
    metrics.expose(app, allow=parse_networks("10.0.0.0/8"))
    assert app.test_client().get("/metrics").status_code == 404  # the test client is 127.0.0.1
    assert app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200


def test_allowed_networks_read_loopback_in_both_families_and_refuse_words():
    loopback = parse_networks("127.0.0.0/8,::1")
    assert is_allowed("127.0.0.1", loopback) and is_allowed("::1", loopback)
    assert is_allowed("::ffff:127.0.0.1", loopback)
    assert not is_allowed("192.168.1.5", loopback) and not is_allowed(None, loopback)
    assert not is_allowed("not an address", loopback)
    assert not is_allowed("127.0.0.1", parse_networks(""))
    with pytest.raises(SettingError, match="PARTNERMATCH_METRICS_ALLOW"):
        parse_networks("127.0.0.1/8,everyone")


# ---- collectors ---------------------------------------------------------------------------------


def test_the_outbox_depth_of_each_outbox():
    samples = samples_of(OutboxDepthCollector({"profiles": lambda: 12, "matcher": lambda: 0}))
    assert value(samples, "partnermatch_outbox_depth", outbox="profiles") == 12
    assert value(samples, "partnermatch_outbox_depth", outbox="matcher") == 0
    assert value(samples, "partnermatch_metrics_source_up", source="redis") == 1


def test_a_source_that_does_not_answer_is_reported_down_and_logged_once(caplog):
    collector = OutboxDepthCollector({"profiles": broken})
    with caplog.at_level(logging.WARNING, logger="partnermatch.metrics"):
        for _ in range(3):
            samples = samples_of(collector)
    assert value(samples, "partnermatch_metrics_source_up", source="redis") == 0
    assert value(samples, "partnermatch_outbox_depth", outbox="profiles") is None
    assert len([r for r in caplog.records if "does not answer" in r.getMessage()]) == 1


def test_every_source_is_one_family_in_the_exposition():
    text = generate_latest(
        registry_for_scrape(
            [
                OutboxDepthCollector({"matcher": lambda: 1}),
                ConsumerLagCollector("matcher", list),
            ]
        )
    ).decode()
    assert text.count("# TYPE partnermatch_metrics_source_up gauge") == 1
    assert 'source="redis"' in text and 'source="kafka"' in text


@pytest.mark.parametrize(
    ("committed", "start", "end", "lag"),
    [
        (None, 0, 10, 10),  # nothing committed: the group reads from the start
        (4, 0, 10, 6),
        (10, 0, 10, 0),
        (2, 5, 10, 5),  # records before the start are gone; they are not waiting
        (None, 7, 7, 0),
        (12, 0, 10, 0),  # a refilled broker: the end fell below the commit
    ],
)
def test_the_lag_of_a_partition(committed, start, end, lag):
    assert PartitionOffsets("profiles", 0, committed, start, end).lag == lag


def test_the_lag_collector_labels_group_topic_and_partition():
    read = lambda: [PartitionOffsets("profiles", 1, None, 0, 3), PartitionOffsets("profiles", 0, 5, 0, 9)]  # noqa: E731
    samples = samples_of(ConsumerLagCollector("matcher", read))
    assert value(samples, "partnermatch_consumer_lag", group="matcher", topic="profiles", partition="0") == 4
    assert value(samples, "partnermatch_consumer_lag", group="matcher", topic="profiles", partition="1") == 3
    assert (
        value(samples, "partnermatch_consumer_committed_offset", group="matcher", topic="profiles", partition="1") == -1
    )
    assert value(samples, "partnermatch_topic_end_offset", group="matcher", topic="profiles", partition="0") == 9


def test_a_broker_that_does_not_answer_gives_no_lag_and_kafka_down():
    def read():
        raise TimeoutError("no broker")

    samples = samples_of(ConsumerLagCollector("notifier", read))
    assert value(samples, "partnermatch_metrics_source_up", source="kafka") == 0
    assert not any(name == "partnermatch_consumer_lag" for name, _ in samples)


LEDGER_COUNTS = {
    "deliveries_created": 20,
    "deliveries_sent": 11,
    "deliveries_failed": 1,
    "deliveries_skipped": 3,
    "deliveries_uncertain": 2,
    "deliveries_retried": 4,
    "matches_recorded": 9,
    "backlog": 5,
    "inflight": 1,
    "uncertain_now": 1,
    "suppressed": 2,
}


def test_deliveries_by_state_from_the_ledgers_counters():
    assert deliveries_by_state(LEDGER_COUNTS) == {"sent": 11, "failed": 1, "skipped": 3, "uncertain": 1, "open": 4}
    assert deliveries_by_state({}) == {"sent": 0, "failed": 0, "skipped": 0, "uncertain": 0, "open": 0}


def test_the_delivery_collector_reports_states_queue_and_unsubscribes():
    samples = samples_of(DeliveryStatesCollector(lambda: LEDGER_COUNTS))
    assert value(samples, "partnermatch_notifier_deliveries", state="sent") == 11
    assert value(samples, "partnermatch_notifier_deliveries", state="open") == 4
    assert value(samples, "partnermatch_notifier_due") == 5
    assert value(samples, "partnermatch_notifier_in_flight") == 1
    assert value(samples, "partnermatch_notifier_suppressed_addresses") == 2


def test_restarts_of_each_part_of_the_stack():
    parts = [
        PartState("redis", 0, True, False),
        PartState("relay", 3, False, False),
        PartState("notifier", 5, False, True),
    ]
    samples = samples_of(RestartsCollector(lambda: parts))
    assert value(samples, "partnermatch_part_restarts_total", part="relay") == 3
    assert value(samples, "partnermatch_part_running", part="relay") == 0
    assert value(samples, "partnermatch_part_running", part="redis") == 1
    assert value(samples, "partnermatch_part_given_up", part="notifier") == 1


def test_the_launcher_serves_restarts_on_loopback_and_runs_on_without_a_free_port():
    server = serve_launcher_metrics(0, RestartsCollector(lambda: [PartState("relay", 2, True, False)]))
    try:
        assert server.server_address[0] == "127.0.0.1"
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert 'partnermatch_part_restarts_total{part="relay"} 2.0' in response.read().decode()
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            assert serve_launcher_metrics(taken.getsockname()[1], RestartsCollector(list)) is None
    finally:
        server.shutdown()
        server.server_close()
