"""A coordinator's "not relevant" rejection, made through the review API, changes that
organisation's next suggestions, through the real broker: the decision goes out through the
matcher's outbox to Kafka, the matcher consumer reads it back and plans the organisation's list
again at once, with fewer candidates like the rejected ones. The real engine, lexicon,
redis-server and broker; the consumer dispatches as the matcher process does."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from partnermatch import events
from partnermatch.broker import ensure_topics
from partnermatch.messaging import KafkaPublisher, read_partitions, run_consumer
from partnermatch.outbox import kafka_relay
from services.matcher.adapters.redis_state import LESSONS, RedisMatcherState
from services.matcher.engine import MatchEngine, load_lexicon
from services.matcher.entrypoints.consumer import decision_handlers
from services.matcher.live import LiveMatcher
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

SEEKER = "seeker"  # a dairy in pl-silesia-ict seeking software and cold-chain logistics
FAMILIES = {"ict.software": "soft", "logistics.cold_chain": "cold"}
PARTNER_CLUSTERS = ("rs-vojvodina-ict", "al-tirana-creative")
EXTRAS = (
    "tourism.hotels",
    "creative.design",
    "health.medical_devices",
    "wood.furniture_manufacturing",
    "education.vet",
    "metal.machining_cnc",
)


def _profile(org_id, cluster, offers, seeks, text):
    return events.new_event(
        events.PROFILE_UPSERTED,
        {
            "org_id": org_id,
            "revision": 1,
            "cluster_id": cluster,
            "name": org_id,
            "country": "PL",
            "language": "en",
            "capabilities": text,
            "goals": "",
            "sectors": [],
            "website": None,
            "offers": list(offers),
            "seeks": list(seeks),
            "seeks_countries": [],
            "updated_at": datetime.now(UTC),
        },
        "test",
    )


def _profiles():
    seeker = _profile(SEEKER, "pl-silesia-ict", ["agrifood.dairy"], list(FAMILIES), "Dairy cooperative.")
    others = [
        _profile(
            f"{prefix}-{j}",
            PARTNER_CLUSTERS[j % 2],
            [offer, EXTRAS[j % len(EXTRAS)]],
            [],
            "We work with partners abroad.",
        )
        for offer, prefix in FAMILIES.items()
        for j in range(6)
    ]
    return [seeker, *others]


@pytest.fixture
def names(unique_name, kafka_bootstrap):
    n = {
        "profiles": unique_name("profiles"),
        "matches": unique_name("matches"),
        "decisions": unique_name("decisions"),
        "group": unique_name("matcher"),
    }
    ensure_topics(
        kafka_bootstrap,
        {n["profiles"]: 3, n["matches"]: 3, n["decisions"]: 3, f"{n['profiles']}.dlq": 1, f"{n['decisions']}.dlq": 1},
    )
    return n


@pytest.fixture
def matcher_state(redis_client, names):
    """The state the review API decides in (conftest's matcher_app uses it), on this test's topics."""
    return RedisMatcherState(redis_client, matches_topic=names["matches"], decisions_topic=names["decisions"])


@pytest.fixture
def running(kafka_bootstrap, matcher_state, names):
    """The matcher consumer on both topics, dispatching as the process does, and the outbox relay."""
    live = LiveMatcher(matcher_state, MatchEngine(load_lexicon()), top_k=3, min_score=0.0, max_pending_per_org=8)
    live.load()
    stop = threading.Event()
    publisher = KafkaPublisher(kafka_bootstrap, "test-dlq")
    relay = kafka_relay(matcher_state.outbox, kafka_bootstrap, "test-matcher")
    threads = [
        threading.Thread(
            target=run_consumer,
            daemon=True,
            kwargs={
                "bootstrap": kafka_bootstrap,
                "topics": [names["profiles"], names["decisions"]],
                "group_id": names["group"],
                "client_id": "t",
                "handlers": {
                    events.PROFILE_UPSERTED: live.handle,
                    events.PROFILE_DELETED: live.handle,
                    **decision_handlers(live),
                },
                "publisher": publisher,
                "stop": stop,
            },
        ),
        threading.Thread(target=relay.run, args=(stop,), daemon=True),
    ]
    for t in threads:
        t.start()
    yield live
    stop.set()
    for t in threads:
        t.join(15)
    publisher.close()


def _send(bootstrap, topic, envelopes):
    pub = KafkaPublisher(bootstrap, "test-producer")
    try:
        for env in envelopes:
            pub.publish(topic, env.payload["org_id"], events.encode(env))
    finally:
        pub.close()


def _suggested_to_seeker(state):
    """The seeker's pending partners, best first."""
    pending = state.pending_of_org(SEEKER)
    return [_partner(p) for p in sorted(pending, key=lambda p: (-pending[p], p))]


def _partner(pair_id):
    first, _, second = pair_id.partition("~")
    return second if first == SEEKER else first


def _family_share(partners, prefix):
    return sum(p.startswith(prefix + "-") for p in partners) / len(partners)


def test_a_not_relevant_rejection_through_the_review_api_changes_the_organisations_next_suggestions(
    running, matcher_state, matcher_app, login, names, kafka_bootstrap, redis_client
):
    profiles = _profiles()
    _send(kafka_bootstrap, names["profiles"], profiles)
    wait_until(
        lambda: all(matcher_state.applied_revision(e.payload["org_id"]) == 1 for e in profiles),
        timeout=30,
        message="every profile applied",
    )
    wait_until(lambda: matcher_state.outbox.size() == 0, timeout=15, message="the suggestions published")
    before = _suggested_to_seeker(matcher_state)
    assert len(before) >= 3
    leading = max(FAMILIES.values(), key=lambda prefix: _family_share(before[:3], prefix))
    share_before = _family_share(before, leading)
    rejected = next(p for p in before if p.startswith(leading + "-"))
    r = matcher_app.test_client().post(
        f"/v1/suggestions/{events.pair_id(SEEKER, rejected)}/decision",
        json={"decision": "reject", "reason_code": "not_relevant"},
        headers=login("anna"),
    )
    assert r.status_code == 200 and r.json["state"] == "rejected"
    # the decision reaches Kafka through the outbox, the consumer reads it back and plans again
    wait_until(
        lambda: redis_client.sismember(LESSONS, events.pair_id(SEEKER, rejected)),
        timeout=30,
        message="the rejection applied to the lists",
    )
    after = _suggested_to_seeker(matcher_state)
    assert rejected not in after
    new = set(after) - set(before)
    assert new, (before, after)
    assert _family_share(after, leading) < share_before
    assert all(not p.startswith(leading + "-") for p in new)  # what replaced them is of the other family

    wait_until(lambda: matcher_state.outbox.size() == 0, timeout=15, message="the new suggestions published")
    published = [events.decode(r.value) for r in read_partitions(kafka_bootstrap, names["matches"], idle_timeout_s=1.5)]
    suggested = {e.payload["pair_id"] for e in published if e.event_type == events.MATCH_SUGGESTED}
    assert {events.pair_id(SEEKER, p) for p in new} <= suggested
    decided = [events.decode(r.value) for r in read_partitions(kafka_bootstrap, names["decisions"], idle_timeout_s=1.5)]
    assert [e.event_type for e in decided] == [events.MATCH_REJECTED]
