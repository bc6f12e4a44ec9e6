"""A broker that lost its state, against the real local broker (Tansu in memory, restarted on its
port): `topics ensure` tells the truth about partition counts, the epoch watch notices the loss
and recreates the declared topics (also over ones the broker auto-created with 4 partitions), and
a relay refills the broker once per epoch."""

from __future__ import annotations

import logging
import threading

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from launcher import cli
from launcher.procs import free_port
from launcher.servers import TansuBroker
from partnermatch.broker import BrokerWatch, partition_counts, prepare, read_epoch
from partnermatch.messaging import KafkaPublisher
from partnermatch.outbox import Outbox, OutboxRelay
from partnermatch.topics import ALL_TOPICS, EPOCH, PROFILES, dlq

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path):
    """A broker of the test's own, so it can be restarted (and lose everything)."""
    port = free_port()
    server = TansuBroker(port=port, log_file=tmp_path / "kafka.log")
    yield server
    server.stop()


def _restart_empty(broker: TansuBroker) -> None:
    broker.stop()
    broker.respawn().wait_ready(15)


def _counts(bootstrap: str) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-counts")
    try:
        return {name: count for name, (count, _) in partition_counts(admin, [*ALL_TOPICS, EPOCH]).items()}
    finally:
        admin.close()


def _ensure(monkeypatch, tmp_path, capsys, bootstrap: str) -> tuple[int, str, str]:
    monkeypatch.chdir(tmp_path)  # no .state/stack.env of a running stack is read
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    code = cli.main(["topics", "ensure"])
    out, err = capsys.readouterr()
    return code, out, err


def test_topics_ensure_creates_every_topic_and_reports_the_counts_the_broker_has(broker, monkeypatch, tmp_path, capsys):
    code, out, err = _ensure(monkeypatch, tmp_path, capsys, broker.bootstrap)

    assert code == 0, err
    assert "profiles: 3 partition(s)\n" in out and "profiles.dlq: 1 partition(s)\n" in out
    assert f"broker epoch: {read_epoch(broker.bootstrap)}\n" in out
    assert _counts(broker.bootstrap) == {**ALL_TOPICS, EPOCH: 1}


def test_topics_ensure_refuses_a_topic_with_another_partition_count_loudly(broker, monkeypatch, tmp_path, capsys):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="test-mismatch")
    try:
        admin.create_topics({PROFILES: {"num_partitions": 4, "replication_factor": -1}})
    finally:
        admin.close()

    code, out, err = _ensure(monkeypatch, tmp_path, capsys, broker.bootstrap)

    assert code == 1
    assert out == ""
    assert err.startswith("partnermatch topics ensure: REFUSED: ")
    assert "profiles has 4, declared 3" in err
    assert _counts(broker.bootstrap)[PROFILES] == 4, "nothing is deleted without being asked"


def test_the_watch_notices_a_broker_that_restarted_empty_and_recreates_the_declared_topics(broker):
    _, first = prepare(broker.bootstrap)
    watch = BrokerWatch(broker.bootstrap, name="test", every_s=0.0)
    assert watch.epoch() == first

    _restart_empty(broker)
    # A client that asks for a topic makes Tansu create it, with 4 partitions and no DLQ.
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        producer.send(PROFILES, key=b"org-1", value=b"lost").get(timeout=10)
    finally:
        producer.close()
    assert _counts(broker.bootstrap) == {PROFILES: 4}

    second = watch.epoch()

    assert second != first
    assert _counts(broker.bootstrap) == {**ALL_TOPICS, EPOCH: 1}
    assert dlq(PROFILES) in _counts(broker.bootstrap)
    assert BrokerWatch(broker.bootstrap, name="another").epoch() == second


def test_a_relay_refills_each_new_epoch_once_and_publishes_what_the_refill_queued(
    broker, redis_client, unique_name, caplog
):
    outbox = Outbox(redis_client, unique_name("svc") + ":")
    refills = []

    def refill() -> int:
        refills.append(1)
        from partnermatch import events

        envelope = events.new_event(
            events.PROFILE_DELETED, {"org_id": "org-1", "revision": 2, "cluster_id": "c"}, "test"
        )
        outbox.add(redis_client, envelope, PROFILES, "org-1")
        return 1

    watch = BrokerWatch(broker.bootstrap, name="test-relay", every_s=0.0)
    publisher = KafkaPublisher(broker.bootstrap, "test-relay", send_timeout_s=10)
    relay = OutboxRelay(outbox, publisher, lambda topic, start: [], "test", watch=watch, refill=refill)

    def refill_lines() -> list[tuple[str, str]]:
        found = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "partnermatch.outbox"]
        caplog.clear()
        return [line for line in found if "epoch" in line[1] or "state queued" in line[1]]

    caplog.set_level(logging.INFO, logger="partnermatch.outbox")
    try:
        assert relay.step() == 1 and len(refills) == 1
        assert relay.step() == 0 and len(refills) == 1
        epoch = outbox.filled_epoch()
        assert epoch == read_epoch(broker.bootstrap)
        # a first start (this Redis never filled a broker) is no incident
        assert [level for level, _ in refill_lines()] == ["INFO", "INFO"]

        _restart_empty(broker)
        assert relay.step() == 1 and len(refills) == 2
        assert outbox.filled_epoch() not in (None, epoch)
        # a broker that came back without its topics is one, said as loudly as before
        assert refill_lines() == [
            ("ERROR", "broker epoch not filled by this service yet: re-publishing its state from Redis"),
            ("WARNING", "state queued for the broker"),
        ]
        assert _counts(broker.bootstrap) == {**ALL_TOPICS, EPOCH: 1}
    finally:
        publisher.close()


def test_processes_that_notice_the_loss_at_once_agree_on_one_epoch_and_the_declared_topics(broker):
    _, first = prepare(broker.bootstrap)
    _restart_empty(broker)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        producer.send(PROFILES, value=b"lost").get(timeout=10)  # auto-created with 4 partitions
    finally:
        producer.close()

    seen: dict[str, str] = {}
    errors: list[BaseException] = []

    def notice(name: str) -> None:
        try:
            seen[name] = BrokerWatch(broker.bootstrap, name=name).epoch()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    watchers = [threading.Thread(target=notice, args=(f"process-{i}",)) for i in range(4)]
    for thread in watchers:
        thread.start()
    for thread in watchers:
        thread.join(60)

    assert not errors
    assert len(seen) == 4 and len(set(seen.values())) == 1 and first not in seen.values()
    assert _counts(broker.bootstrap) == {**ALL_TOPICS, EPOCH: 1}
