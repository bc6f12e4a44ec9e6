"""The outbox relay against a real redis-server and a real Kafka-protocol broker: every
acknowledged profile write reaches the topic exactly once, even when the relay is killed."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from partnermatch import events
from partnermatch.broker import ensure_topics
from partnermatch.messaging import read_partitions
from partnermatch.outbox import kafka_relay
from services.profiles import services
from services.profiles.adapters.redis_store import RedisProfileStore
from services.profiles.domain import Principal
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


def _profile(i: int) -> dict:
    return {
        "name": f"Organizacija {i}",
        "cluster_id": "rs-vojvodina-ict",
        "country": "RS",
        "language": "sr",
        "capabilities": f"Развој софтвера {i}",
        "goals": f"Tražimo partnere {i}",
        "sectors": ["ict"],
    }


@pytest.fixture
def topic(kafka_bootstrap, unique_name):
    name = unique_name("profiles")
    ensure_topics(kafka_bootstrap, {name: 3})
    return name


@pytest.fixture
def store(redis_client, topic):
    s = RedisProfileStore(redis_client, topic=topic)
    services.create_cluster(s, {"id": "rs-vojvodina-ict", "name": "ICT Vojvodina", "country": "RS", "description": ""})
    return s


def _events_on(bootstrap: str, topic: str) -> list[events.Envelope]:
    return [events.decode(r.value) for r in read_partitions(bootstrap, topic, idle_timeout_s=1.5)]


def _relay_process(redis_url: str, bootstrap: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RELAY_BATCH_SIZE": "3",
        "RELAY_LINGER_MS": "20",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "services.profiles.entrypoints.relay"], env=env)


def test_the_relay_publishes_every_outbox_entry_in_order_then_empties_the_outbox(store, kafka_bootstrap, topic):
    org, _ = services.register_org(store, _profile(1))
    services.update_org(store, Principal("admin"), org["id"], {"goals": "Нови циљеви"})
    services.delete_org(store, Principal("admin"), org["id"])
    relay = kafka_relay(store.outbox, kafka_bootstrap, "test", batch_size=2)
    stop = threading.Event()
    worker = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    worker.start()
    try:
        wait_until(lambda: store.outbox.size() == 0, timeout=20, message="outbox drained")
    finally:
        stop.set()
        worker.join(10)
    got = _events_on(kafka_bootstrap, topic)
    assert [(e.event_type, e.payload["revision"]) for e in got] == [
        (events.PROFILE_UPSERTED, 1),
        (events.PROFILE_UPSERTED, 2),
        (events.PROFILE_DELETED, 3),
    ]
    assert got[1].payload["goals"] == "Нови циљеви"


def test_killing_the_relay_while_profiles_are_written_publishes_each_acknowledged_write_exactly_once(
    store, redis_server, kafka_bootstrap, topic
):
    acknowledged: list[tuple[str, int]] = []
    done = threading.Event()

    def writer() -> None:
        admin = Principal("admin")
        for i in range(60):
            org, _ = services.register_org(store, _profile(i))
            acknowledged.append((org["id"], 1))
            updated = services.update_org(store, admin, org["id"], {"goals": f"Nove potrebe {i}"})
            acknowledged.append((org["id"], updated["revision"]))
            time.sleep(0.01)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    kills = 0
    relay = _relay_process(redis_server.url, kafka_bootstrap)
    try:
        while not done.is_set() or kills < 4:
            time.sleep(0.4)
            relay.send_signal(signal.SIGKILL)
            relay.wait()
            kills += 1
            relay = _relay_process(redis_server.url, kafka_bootstrap)
        thread.join()
        wait_until(lambda: store.outbox.size() == 0, timeout=60, message="outbox drained after the kills")
    finally:
        relay.terminate()
        relay.wait(10)
    published = collections.Counter(
        (e.payload["org_id"], e.payload["revision"]) for e in _events_on(kafka_bootstrap, topic)
    )
    assert kills >= 4
    assert sorted(published) == sorted(acknowledged), "every acknowledged write is on the topic, nothing else"
    assert set(published.values()) == {1}, f"duplicates: {[k for k, n in published.items() if n > 1]}"


def test_writes_made_while_the_broker_is_down_are_published_once_it_is_back(
    store, redis_client, kafka_bootstrap, topic
):
    from partnermatch.messaging import KafkaPublisher
    from partnermatch.outbox import OutboxRelay

    class Unreachable(KafkaPublisher):
        def publish_batch(self, messages):  # the broker is down: every send fails
            raise ConnectionError("broker unreachable")

    orgs = [services.register_org(store, _profile(i))[0]["id"] for i in range(5)]
    down = OutboxRelay(store.outbox, Unreachable(kafka_bootstrap, "down"), lambda t, s: [], "down")
    for _ in range(3):
        with pytest.raises(ConnectionError):
            down.step()
    assert store.outbox.size() == 5, "nothing is lost while the broker is away"
    relay = kafka_relay(store.outbox, kafka_bootstrap, "back")
    while relay.step():
        pass
    published = [e.payload["org_id"] for e in _events_on(kafka_bootstrap, topic)]
    assert sorted(published) == sorted(orgs)
    relay.publisher.close()


def test_a_resync_queues_every_current_profile_and_every_deletion_again(store):
    kept, _ = services.register_org(store, _profile(1))
    gone, _ = services.register_org(store, _profile(2))
    services.delete_org(store, Principal("admin"), gone["id"])
    store.outbox.mark_published([e.entry_id for e in store.outbox.head(100)], {})

    assert services.resync(store) == 1

    queued = [events.decode(e.value) for e in store.outbox.head(100)]
    assert [(e.event_type, e.payload["org_id"], e.payload["revision"]) for e in queued] == [
        (events.PROFILE_UPSERTED, kept["id"], 1),
        (events.PROFILE_DELETED, gone["id"], 2),
    ]
    assert set(queued[1].payload) == {"org_id", "revision", "cluster_id"}, "nothing personal is kept"
