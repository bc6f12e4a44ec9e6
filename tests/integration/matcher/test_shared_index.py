"""Two matchers in one consumer group on a four-partition `profiles` topic (issue 17): each keeps
the whole index by reading the topic as a table and writes only for the partitions it owns. Their
suggestions together equal one matcher's on the same events; one killed under load leaves its
partitions to the survivor with no event lost and none applied twice. Real processes, broker and
redis-server; the dev set's first file (84 organisations, many languages) as the data."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from partnermatch import events
from partnermatch.broker import ensure_topics
from partnermatch.messaging import KafkaPublisher, Outgoing, key_partition
from services.matcher.adapters.redis_state import RedisMatcherState
from services.matcher.config import MatcherSettings
from services.matcher.entrypoints.consumer import build_live_matcher
from tests.helpers import wait_until
from tests.integration.matcher.matcher_process import MAX_PENDING

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DEVSET = ROOT / "tests" / "data" / "devset" / "profiles_0.jsonl"
PARTITIONS = 4
REFERENCE_DB = 3  # the single in-process matcher's state, apart from the group's


def _organisations() -> list[dict]:
    return [json.loads(line) for line in DEVSET.read_text(encoding="utf-8").splitlines() if line.strip()]


def _event(org: dict, revision: int, text_of: dict) -> events.Envelope:
    return events.new_event(
        events.PROFILE_UPSERTED,
        {
            "org_id": org["id"],
            "revision": revision,
            "cluster_id": org["cluster"],
            "name": org["name"],
            "country": org["country"],
            "language": text_of.get("language"),
            "capabilities": text_of["capabilities"],
            "goals": text_of["goals"],
            "sectors": [],
            "website": None,
            "updated_at": "2026-01-01T00:00:00+00:00",
        },
        "test",
    )


def _timeline(orgs: list[dict]) -> list[events.Envelope]:
    """Every organisation registers, then each takes over its neighbour's texts (a second revision),
    so most lists change; the deleted ones leave at the end."""
    first = [_event(o, 1, o) for o in orgs]
    second = [_event(o, 2, orgs[(i + 1) % len(orgs)]) for i, o in enumerate(orgs)]
    gone = [
        events.new_event(events.PROFILE_DELETED, {"org_id": o["id"], "revision": 3, "cluster_id": o["cluster"]}, "test")
        for o in orgs[::10]
    ]
    return first + second + gone


class MatcherProcess:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.matcher.matcher_process", *args],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**_env(), "LOG_FORMAT": "json"},
            start_new_session=True,
        )

    def lines(self) -> list[dict]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def said(self, message: str) -> bool:
        return any(line.get("msg") == message for line in self.lines())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def _suggestions(state: RedisMatcherState, clusters: set[str]) -> dict[str, float]:
    """Every pending pair and its score."""
    ids = {pid for cluster in clusters for pid in state.pending_ids_of_cluster(cluster)}
    return {p["pair_id"]: p["score"] for p in state.get_pairs(ids)}


def _same_suggestions(got: dict[str, float], expected: dict[str, float], engine) -> None:
    """The same pairs, each scored as one of its two organisations' lists scores it now. A score is
    not symmetric and a pair keeps the score of the side planned last, which the order of the events
    across partitions decides, for one matcher as for two."""
    assert sorted(got) == sorted(expected)
    for pair_id, score in got.items():
        a, b = pair_id.split("~")
        sides = [engine.score_pair(a, b), engine.score_pair(b, a)]
        assert any(s is not None and abs(s.score - score) < 1e-4 for s in sides), (pair_id, score, sides)


def _applied(state: RedisMatcherState, timeline: list[events.Envelope]) -> bool:
    last = {e.payload["org_id"]: e.payload["revision"] for e in timeline}
    return state.applied_revisions(last) == last


def _publish(bootstrap: str, topic: str, timeline: list[events.Envelope], per_second: float = 0) -> None:
    publisher = KafkaPublisher(bootstrap, "test-producer")
    try:
        for envelope in timeline:
            publisher.publish(topic, envelope.payload["org_id"], events.encode(envelope))
            if per_second:
                time.sleep(1 / per_second)
    finally:
        publisher.close()


def _applied_by(process: MatcherProcess) -> Counter:
    return Counter(
        (line["org_id"], line["revision"])
        for line in process.lines()
        if line.get("msg") == "profile event applied" and line.get("applied")
    )


def test_two_matchers_in_one_group_suggest_what_one_would_and_a_killed_ones_partitions_go_to_the_survivor(
    kafka_bootstrap, redis_server, redis_client, unique_name, tmp_path, monkeypatch
):
    # The weights stay those learnt at the start here (too few changes for a fifth of the index, and
    # no pause long enough), as the one matcher's do: the takeover is the point; the weights that
    # follow the table are test_shared_weights'.
    monkeypatch.setenv("MATCHER_REWEIGH_QUIET_S", "3600")
    orgs = _organisations()
    clusters = {o["cluster"] for o in orgs}
    timeline = _timeline(orgs)
    registrations, later = timeline[: len(orgs)], timeline[len(orgs) :]

    # One matcher, the way it has always worked (one process, every event in topic order), on a
    # database of its own; it goes through the same events alongside the group.
    reference_url = redis_server.url.rsplit("/", 1)[0] + f"/{REFERENCE_DB}"
    reference_client = redis.Redis.from_url(reference_url)
    reference_client.flushdb()
    single = build_live_matcher(
        MatcherSettings(redis_url=reference_url, kafka_bootstrap="unused:9092", max_pending_per_org=MAX_PENDING)
    )
    single.load()

    def one_matcher_after(envelopes: list[events.Envelope]) -> dict[str, float]:
        for envelope in envelopes:
            single.handle(envelope)
        return _suggestions(single.state, clusters)

    topic, group = unique_name("profiles"), unique_name("matcher")
    ensure_topics(kafka_bootstrap, {topic: PARTITIONS, f"{topic}.dlq": 1})
    args = [kafka_bootstrap, redis_server.url, topic, group]
    matchers = [MatcherProcess(args, tmp_path / f"matcher-{i}.log") for i in (1, 2)]
    state = RedisMatcherState(redis_client)
    try:
        # Both start from the same (empty) state, so both learn the same weights.
        wait_until(
            lambda: all(m.said("table reader started") for m in matchers),
            timeout=60,
            message="both matchers reading the table",
        )
        _publish(kafka_bootstrap, topic, registrations)
        wait_until(lambda: _applied(state, registrations), timeout=60, message="every registration applied")
        expected = one_matcher_after(registrations)
        assert len(expected) > 50 and single.state.r.connection_pool.connection_kwargs["db"] == REFERENCE_DB
        _same_suggestions(_suggestions(state, clusters), expected, single.engine)

        load = threading.Thread(target=_publish, args=(kafka_bootstrap, topic, later, 40))
        load.start()
        # both own partitions (one that joined late got its share at the rebalance) and the second
        # revisions are being applied
        wait_until(
            lambda: (
                all(_applied_by(m) for m in matchers)
                and sum(_applied_by(m).total() for m in matchers) >= len(orgs) + 10
            ),
            timeout=30,
            message="both matchers applying the second revisions",
        )
        killed, survivor = matchers[1], matchers[0]
        killed.kill()
        seen_before_kill = len(survivor.lines())
        load.join(30)
        wait_until(lambda: _applied(state, timeline), timeout=90, message="every event applied after the kill")

        at_the_end = one_matcher_after(later)
        assert at_the_end != expected
        _same_suggestions(_suggestions(state, clusters), at_the_end, single.engine)
        applied = _applied_by(survivor) + _applied_by(killed)
        assert set(applied) <= {(e.payload["org_id"], e.payload["revision"]) for e in timeline}
        assert max(applied.values()) == 1, "no event applied twice"
        # an organisation's events all go to one partition: one the killed matcher owned
        taken_over = {
            line["org_id"]
            for line in survivor.lines()[seen_before_kill:]
            if line.get("msg") == "profile event applied" and line.get("applied")
        }
        assert taken_over & {org for org, _ in _applied_by(killed)}, "the survivor took the killed one's partitions"
    finally:
        for m in matchers:
            m.stop()
        reference_client.flushdb()


def test_an_organisations_partition_is_the_one_its_key_names_for_the_publishers(kafka_bootstrap, unique_name):
    """A matcher plans again after a refresh the lists of its partitions' organisations, placing the
    ones it has not read from the table by their key (SharedIndex.owned_lists)."""
    topic = unique_name("profiles")
    ensure_topics(kafka_bootstrap, {topic: PARTITIONS})
    publisher = KafkaPublisher(kafka_bootstrap, "test-producer")
    try:
        keys = [org["id"] for org in _organisations()[:40]]
        delivered = publisher.publish_batch([Outgoing(topic, key, b"{}") for key in keys])
    finally:
        publisher.close()
    assert [d.partition for d in delivered] == [key_partition(key, PARTITIONS) for key in keys]
    assert len({d.partition for d in delivered}) == PARTITIONS
