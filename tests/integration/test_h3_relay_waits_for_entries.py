"""The outbox relay between batches, on a real redis-server and a real broker: it waits for new
entries instead of sleeping blind (a new entry is published promptly however long it may wait
idle), lingers so that batches gather under load, and counts the entries of one MULTI as one write."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from partnermatch import events
from partnermatch.broker import ensure_topics
from partnermatch.messaging import Delivered, KafkaPublisher, Outgoing, read_partitions
from partnermatch.outbox import LOCK_TTL_MS, MAX_IDLE_WAIT_S, Outbox, OutboxRelay, entry_fields
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

# Far longer than any wait below: a relay that slept it out would fail them.
LONG_S = 60.0


class CountingPublisher(KafkaPublisher):
    """The real publisher, remembering the size of every batch it sent."""

    def __init__(self, bootstrap: str, client_id: str) -> None:
        super().__init__(bootstrap, client_id)
        self.batches: list[int] = []

    def publish_batch(self, messages: Sequence[Outgoing]) -> list[Delivered]:
        delivered = super().publish_batch(messages)
        self.batches.append(len(messages))
        return delivered


@pytest.fixture
def topic(kafka_bootstrap: str, unique_name) -> str:
    name = unique_name("relay-wait")
    ensure_topics(kafka_bootstrap, {name: 1})
    return name


@pytest.fixture
def outbox(redis_client, unique_name) -> Outbox:
    return Outbox(redis_client, unique_name("svc") + ":")


def _event(n: int) -> events.Envelope:
    payload = {"org_id": f"org-{n}", "revision": n + 1, "cluster_id": "c"}
    return events.new_event(events.PROFILE_DELETED, payload, "test")


def _relay(
    outbox: Outbox, bootstrap: str, *, linger_per_write_s: float, linger_max_s: float, linger_s: float = 0.0
) -> OutboxRelay:
    return OutboxRelay(
        outbox,
        CountingPublisher(bootstrap, "test-relay"),
        lambda topic, start: read_partitions(bootstrap, topic, start=start, idle_timeout_s=1.0),
        "test",
        batch_size=200,
        linger_s=linger_s,
        linger_per_write_s=linger_per_write_s,
        linger_max_s=linger_max_s,
        idle_wait_s=LONG_S,
    )


@pytest.fixture
def running() -> Iterator[list[tuple[OutboxRelay, threading.Thread, threading.Event]]]:
    started: list[tuple[OutboxRelay, threading.Thread, threading.Event]] = []
    yield started
    for _, worker, stop in started:
        stop.set()
        worker.join(LOCK_TTL_MS / 1000)


def _start(relay: OutboxRelay, running: list) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    worker = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    worker.start()
    running.append((relay, worker, stop))
    return worker, stop


def _revisions(bootstrap: str, topic: str) -> list[int]:
    """The `n` of each event on the topic (see `_event`), in order."""
    return [
        events.decode(r.value).payload["revision"] - 1 for r in read_partitions(bootstrap, topic, idle_timeout_s=1.5)
    ]


def test_an_idle_relay_publishes_each_new_entry_promptly_however_long_it_may_wait(
    outbox, redis_client, kafka_bootstrap, topic, running
):
    relay = _relay(outbox, kafka_bootstrap, linger_max_s=LONG_S, linger_per_write_s=LONG_S)
    assert relay.idle_wait_s == MAX_IDLE_WAIT_S, "an idle wait stays under the client's socket timeout"
    _start(relay, running)
    for n in (1, 2, 3):
        time.sleep(0.3)  # the relay is back waiting on the stream
        outbox.add(redis_client, _event(n), topic, "org")
        added = time.monotonic()
        wait_until(lambda: outbox.size() == 0, timeout=10, interval=0.01, message=f"entry {n} published")
        # Under the relay's idle wait, which it was in: woken by the entry, not by its timeout.
        assert time.monotonic() - added < 0.75 * MAX_IDLE_WAIT_S
    assert _revisions(kafka_bootstrap, topic) == [1, 2, 3]


def test_the_entries_of_one_multi_count_as_one_write_and_add_nothing_to_the_linger(
    outbox, redis_client, kafka_bootstrap, topic, running
):
    relay = _relay(outbox, kafka_bootstrap, linger_max_s=LONG_S, linger_per_write_s=LONG_S)
    _start(relay, running)
    ms = int(time.time() * 1000)
    for burst in range(3):
        time.sleep(0.3)
        # As a MULTI's XADDs get them: ids of one millisecond (given here, so the test does not
        # depend on the server's clock ticking between two of them).
        with redis_client.pipeline(transaction=True) as pipe:
            for i in range(20):
                n = 100 * burst + i
                pipe.xadd(outbox.stream, entry_fields(_event(n), topic, "org"), id=f"{ms + burst}-{i}")
            pipe.execute()
        added = time.monotonic()
        wait_until(lambda: outbox.size() == 0, timeout=10, interval=0.01, message=f"burst {burst} published")
        assert time.monotonic() - added < 0.75 * MAX_IDLE_WAIT_S
        assert relay.last_writes == 1
    assert _revisions(kafka_bootstrap, topic) == [100 * burst + i for burst in range(3) for i in range(20)]


def test_under_a_stream_of_writes_batches_gather_and_every_entry_is_published_once_in_order(
    outbox, redis_client, kafka_bootstrap, topic, running
):
    relay = _relay(outbox, kafka_bootstrap, linger_s=0.005, linger_per_write_s=0.01, linger_max_s=0.3)
    _start(relay, running)
    total = 400
    for n in range(total):  # one write at a time, some 300-500 a second
        outbox.add(redis_client, _event(n), topic, "org")
        time.sleep(0.002)
    wait_until(lambda: outbox.size() == 0, timeout=20, message="outbox drained")
    batches = relay.publisher.batches  # type: ignore[attr-defined]
    assert sum(batches) == total
    assert max(batches) >= 40, f"batches did not gather: {batches}"
    assert len(batches) <= total // 5, f"too many batches: {batches}"
    assert _revisions(kafka_bootstrap, topic) == list(range(total))


def test_a_stopped_relay_stops_within_its_idle_wait_and_a_new_one_publishes_what_came_meanwhile(
    outbox, redis_client, kafka_bootstrap, topic, running
):
    first = _relay(outbox, kafka_bootstrap, linger_max_s=0.05, linger_per_write_s=0.005)
    first.idle_wait_s = 1.0
    worker, stop = _start(first, running)
    outbox.add(redis_client, _event(1), topic, "org")
    wait_until(lambda: outbox.size() == 0, timeout=10, message="first entry published")
    stop.set()
    worker.join(5)
    assert not worker.is_alive(), "a relay waiting on the stream sees a stop"
    outbox.add(redis_client, _event(2), topic, "org")
    second = _relay(outbox, kafka_bootstrap, linger_max_s=0.05, linger_per_write_s=0.005)
    _start(second, running)
    outbox.add(redis_client, _event(3), topic, "org")
    wait_until(lambda: outbox.size() == 0, timeout=15, message="entries published by the new relay")
    assert _revisions(kafka_bootstrap, topic) == [1, 2, 3]
