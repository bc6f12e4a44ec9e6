"""The weights follow the table (issue 17 item 2): two matchers of one group, the second started
while the first was already indexing, learn their weights from different corpora at first; once
writes pause both learn them again from the same table, end with one matcher's weights, and their
suggestions together equal one matcher's. Real processes, broker and redis-server; the dev set's
first file as the data."""

from __future__ import annotations

import threading

import pytest
import redis

from partnermatch.broker import ensure_topics
from services.matcher.adapters.redis_state import RedisMatcherState
from services.matcher.config import MatcherSettings
from services.matcher.entrypoints.consumer import build_live_matcher
from services.matcher.table import SharedIndex
from tests.helpers import wait_until
from tests.integration.matcher.matcher_process import MAX_PENDING
from tests.integration.matcher.test_shared_index import (
    PARTITIONS,
    MatcherProcess,
    _applied,
    _organisations,
    _publish,
    _same_suggestions,
    _suggestions,
    _timeline,
)

pytestmark = pytest.mark.integration

REFERENCE_DB = 4  # the single in-process matcher's state, apart from the group's
QUIET_S = 1.0


def _weights_learnt(process: MatcherProcess) -> list[str]:
    """The weights of each fit and refresh, in order (the start's fit included)."""
    return [
        line["weights"]
        for line in process.lines()
        if line.get("msg") in ("index fitted", "index weights learnt again") and "weights" in line
    ]


def _replanned_with(process: MatcherProcess) -> list[str]:
    """The weights each completed replanning of every list used, in order."""
    return [
        line["weights"]
        for line in process.lines()
        if line.get("msg") == "lists planned again with the new weights" and line["orgs"] == line["of"]
    ]


def test_two_matchers_started_at_different_times_end_with_one_matchers_weights_and_suggestions(
    kafka_bootstrap, redis_server, redis_client, unique_name, tmp_path, monkeypatch
):
    monkeypatch.setenv("MATCHER_REWEIGH_QUIET_S", str(QUIET_S))
    orgs = _organisations()
    clusters = {o["cluster"] for o in orgs}
    timeline = _timeline(orgs)
    registrations, later = timeline[: len(orgs)], timeline[len(orgs) :]

    topic, group = unique_name("profiles"), unique_name("matcher")
    ensure_topics(kafka_bootstrap, {topic: PARTITIONS, f"{topic}.dlq": 1})
    args = [kafka_bootstrap, redis_server.url, topic, group]
    first = MatcherProcess(args, tmp_path / "matcher-first.log")
    matchers = [first]
    state = RedisMatcherState(redis_client)
    reference_url = redis_server.url.rsplit("/", 1)[0] + f"/{REFERENCE_DB}"
    reference_client = redis.Redis.from_url(reference_url)
    reference_client.flushdb()
    try:
        wait_until(lambda: first.said("table reader started"), timeout=60, message="the first matcher reading")
        _publish(kafka_bootstrap, topic, registrations)
        wait_until(lambda: _applied(state, registrations), timeout=60, message="every registration applied")

        # the second starts while the later revisions arrive: it rebuilds its index from a state the
        # first has moved past, so it learns its first weights from other profiles than the first did
        load = threading.Thread(target=_publish, args=(kafka_bootstrap, topic, later, 20))
        load.start()
        second = MatcherProcess(args, tmp_path / "matcher-second.log")
        matchers.append(second)
        load.join(60)
        wait_until(lambda: _applied(state, timeline), timeout=90, message="every event applied")

        # one matcher on the same events, then its weights learnt again and its lists planned again
        # as a matcher does when writes pause
        single = build_live_matcher(
            MatcherSettings(redis_url=reference_url, kafka_bootstrap="unused:9092", max_pending_per_org=MAX_PENDING)
        )
        single.load()
        for envelope in timeline:
            single.handle(envelope)
        SharedIndex.over(single).refresh_weights()
        weights = single.engine.weights_digest()

        wait_until(
            lambda: all(_replanned_with(m)[-1:] == [weights] for m in matchers),
            timeout=60,
            message="both matchers' weights learnt from the whole table and their lists planned with them",
        )
        assert all(_weights_learnt(m)[-1] == weights for m in matchers)
        first_weights, second_weights = _weights_learnt(first), _weights_learnt(second)
        assert first_weights[0] != second_weights[0], "the two started with weights of different profiles"
        assert weights not in (first_weights[0], second_weights[0])

        expected = _suggestions(single.state, clusters)
        assert len(expected) > 50
        _same_suggestions(_suggestions(state, clusters), expected, single.engine)
    finally:
        for m in matchers:
            m.stop()
        reference_client.flushdb()
