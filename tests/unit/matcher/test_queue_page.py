"""The queue as it opens (pending, by score, no filter) reads only its page of pairs and profiles;
it must show what reading the whole cluster shows, ties in score included, and fall back to that
where the cluster's pending index names a pair that is not pending. On a real redis-server."""

from __future__ import annotations

import random

import pytest

from partnermatch import events
from services.matcher import domain
from services.matcher.adapters import redis_state
from services.matcher.adapters.redis_state import PairWrite, ProfileChange, RedisMatcherState
from services.matcher.review import ReviewService

pytestmark = pytest.mark.integration
CLUSTER = "c-queue"


def _queue(redis_client, pending: int = 60) -> RedisMatcherState:
    rng = random.Random(4)
    state = RedisMatcherState(redis_client)
    owners = [f"q{i:02d}" for i in range(6)]
    for org in owners:
        assert state.apply(ProfileChange(org, 1, {"org_id": org, "name": f"Own {org}", "cluster_id": CLUSTER}))
    for i in range(pending):
        partner, owner = f"p{i:03d}", owners[i % len(owners)]
        org_a, org_b = sorted((owner, partner))
        clusters = {owner: CLUSTER, partner: f"c-{i % 5}"}
        score = rng.choice([0.5, 0.25, 0.75, round(rng.random(), 6)])  # many ties
        write = PairWrite(events.pair_id(org_a, org_b), org_a, org_b, clusters[org_a], clusters[org_b], score, [])
        profile = {"org_id": partner, "name": f"Partner {partner}", "cluster_id": clusters[partner]}
        assert state.apply(ProfileChange(partner, 1, profile, upserts=[write]))
    return state


def _whole(review: ReviewService, **query: object) -> tuple[list[dict], int]:
    """The same query read over the whole cluster: a filter every pair passes."""
    return review.list_for_cluster(CLUSTER, min_score=-1.0, **query)  # type: ignore[arg-type]


def test_the_queue_as_it_opens_reads_its_page_and_shows_what_the_whole_cluster_shows(redis_client):
    state = _queue(redis_client)
    review = ReviewService(state, render=lambda reason, lang: reason["concept"])
    for offset, limit in [(0, 20), (0, 1), (7, 10), (55, 20), (60, 20), (90, 5), (0, 100)]:
        before = state._parsed.parsed + state._parsed.reused
        page = review.list_for_cluster(CLUSTER, offset=offset, limit=limit)
        read = state._parsed.parsed + state._parsed.reused - before
        assert read == len(page[0]) <= limit, "only the page's pairs were read"
        assert page == _whole(review, offset=offset, limit=limit)
    assert review.list_for_cluster(CLUSTER, offset=0, limit=20)[1] == 60


def test_a_pending_index_naming_a_pair_not_pending_reads_the_whole_cluster(redis_client):
    state = _queue(redis_client, pending=12)
    review = ReviewService(state, render=lambda reason, lang: reason["concept"])
    first = review.list_for_cluster(CLUSTER, offset=0, limit=5)[0][0]["pair_id"]
    withdrawn = {**state.get_pair(first), "state": domain.WITHDRAWN}
    redis_client.set(redis_state.PAIR + first, redis_state._json(withdrawn))  # its index entry left behind

    page, total = review.list_for_cluster(CLUSTER, offset=0, limit=5)

    assert first not in [v["pair_id"] for v in page]
    assert (page, total) == _whole(review, offset=0, limit=5)
    assert total == 11
