"""The shared outbox and its relay on a real three-node Redis Cluster and a real broker: a state
change and its outbox entry go in one MULTI (one slot, through the prefix's hash tag), the relay
publishes every entry once and in order (an idle one woken by a new entry), and an outbox whose
prefix has no hash tag is refused."""

from __future__ import annotations

import threading
import time

import pytest

from partnermatch import events
from partnermatch.broker import ensure_topics
from partnermatch.messaging import read_partitions
from partnermatch.outbox import MAX_IDLE_WAIT_S, Outbox, kafka_relay
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


def test_a_cluster_outbox_is_written_with_its_state_and_published_once_in_order(
    redis_cluster_client, kafka_bootstrap, unique_name
):
    topic = unique_name("deletions")
    ensure_topics(kafka_bootstrap, {topic: 3})
    prefix = "{" + unique_name("svc") + "}:"
    outbox = Outbox(redis_cluster_client, prefix)

    def write(revision: int) -> None:
        with redis_cluster_client.pipeline(transaction=True) as pipe:
            pipe.set(prefix + "org:a", revision)
            payload = {"org_id": "a", "revision": revision, "cluster_id": "rs-vojvodina-ict"}
            outbox.add(pipe, events.new_event(events.PROFILE_DELETED, payload, "test"), topic, "a")
            pipe.execute()

    for revision in (1, 2, 3):
        write(revision)
    relay = kafka_relay(outbox, kafka_bootstrap, "cluster-test", batch_size=2, refill=lambda: 0)
    relay.idle_wait_s = MAX_IDLE_WAIT_S
    stop = threading.Event()
    worker = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    worker.start()
    try:
        wait_until(lambda: outbox.size() == 0, timeout=30, message="outbox drained")
        time.sleep(0.3)  # the relay waits on the stream (XREAD BLOCK on the slot's node)
        write(4)
        added = time.monotonic()
        wait_until(lambda: outbox.size() == 0, timeout=10, interval=0.01, message="the new entry published")
        assert time.monotonic() - added < 0.75 * MAX_IDLE_WAIT_S, "woken by the entry, not by its idle wait"
    finally:
        stop.set()
        worker.join(10)
    got = [events.decode(r.value) for r in read_partitions(kafka_bootstrap, topic, idle_timeout_s=1.5)]
    assert [e.payload["revision"] for e in got] == [1, 2, 3, 4]
    assert outbox.filled_epoch() is not None, "the broker's epoch recorded in the outbox's slot"


def test_an_outbox_without_a_hash_tag_is_refused_on_a_cluster(redis_cluster_client):
    with pytest.raises(ValueError, match="hash tag"):
        Outbox(redis_cluster_client, "profiles:")
