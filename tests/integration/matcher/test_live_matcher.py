"""The live matcher through the real broker and redis-server: profile events in, suggestions with
reasons out for both clusters, both approvals give exactly one match.approved on Kafka, a rejected
pair never returns, and replaying the profiles topic changes nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from partnermatch import events
from partnermatch.broker import ensure_topics
from partnermatch.messaging import KafkaPublisher, read_partitions, run_consumer
from partnermatch.outbox import kafka_relay
from services.matcher.adapters.redis_state import RedisMatcherState
from services.matcher.engine import MatchEngine, load_lexicon
from services.matcher.live import LiveMatcher
from tests.helpers import wait_until

pytestmark = pytest.mark.integration
MINI = Path(__file__).resolve().parents[2] / "unit" / "matcher" / "mini_lexicon.yaml"


def _upsert(org_id, revision, cluster, lang, caps, goals):
    return events.new_event(
        events.PROFILE_UPSERTED,
        {
            "org_id": org_id,
            "revision": revision,
            "cluster_id": cluster,
            "name": org_id,
            "country": "PL",
            "language": lang,
            "capabilities": caps,
            "goals": goals,
            "sectors": [],
            "website": None,
            "updated_at": datetime.now(UTC),
        },
        "test",
    )


PL_SOFT = (
    "pl-soft",
    "pl-silesia-ict",
    "pl",
    "Tworzenie oprogramowania i usługi informatyczne.",
    "Szukamy partnerów z rolnictwa i przetwórstwa żywności.",
)
RS_FRUIT = (
    "rs-fruit",
    "rs-vojvodina-agro",
    "sr",
    "Прерада воћа и пољопривреда, хладњаче.",
    "Тражимо софтвер за праћење производње.",
)


class Running:
    """A matcher consumer and its outbox relay, on their own topics, in threads."""

    def __init__(self, bootstrap, state, names):
        self.bootstrap, self.state, self.names = bootstrap, state, names
        self.live = LiveMatcher(state, MatchEngine(load_lexicon([MINI])), top_k=5, min_score=0.0)
        self.live.load()
        self.stop = threading.Event()
        self.publisher = KafkaPublisher(bootstrap, "test-dlq")
        self.relay = kafka_relay(state.outbox, bootstrap, "test-matcher")
        self.threads = [
            threading.Thread(
                target=run_consumer,
                daemon=True,
                kwargs={
                    "bootstrap": bootstrap,
                    "topics": [names["profiles"]],
                    "group_id": names["group"],
                    "client_id": "t",
                    "handlers": {events.PROFILE_UPSERTED: self.live.handle, events.PROFILE_DELETED: self.live.handle},
                    "publisher": self.publisher,
                    "stop": self.stop,
                },
            ),
            threading.Thread(target=self.relay.run, args=(self.stop,), daemon=True),
        ]
        for t in self.threads:
            t.start()

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)
        self.publisher.close()


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
        {n["profiles"]: 3, n["matches"]: 3, n["decisions"]: 3, events.__name__ and f"{n['profiles']}.dlq": 1},
    )
    return n


@pytest.fixture
def state(redis_client, names):
    return RedisMatcherState(redis_client, matches_topic=names["matches"], decisions_topic=names["decisions"])


@pytest.fixture
def running(kafka_bootstrap, state, names):
    r = Running(kafka_bootstrap, state, names)
    yield r
    r.close()


def _send(bootstrap, topic, *envelopes):
    pub = KafkaPublisher(bootstrap, "test-producer")
    try:
        for env in envelopes:
            pub.publish(topic, env.payload["org_id"], events.encode(env))
    finally:
        pub.close()


def _topic_events(bootstrap, topic):
    return [events.decode(r.value) for r in read_partitions(bootstrap, topic, idle_timeout_s=1.5)]


def _consumer_live(bootstrap, names, state):
    """A marker event applied means the consumer has joined its group and is reading."""
    marker = events.new_event(
        events.PROFILE_DELETED, {"org_id": "warm-up", "revision": 1, "cluster_id": "none"}, "test"
    )
    _send(bootstrap, names["profiles"], marker)
    wait_until(lambda: state.applied_revision("warm-up") == 1, timeout=20, message="the consumer reading")


def test_complementary_profiles_in_two_languages_become_one_pending_suggestion_with_reasons(
    running, state, names, kafka_bootstrap
):
    _consumer_live(kafka_bootstrap, names, state)
    _send(
        kafka_bootstrap,
        names["profiles"],
        _upsert(*PL_SOFT[:1], 1, *PL_SOFT[1:]),
        _upsert(*RS_FRUIT[:1], 1, *RS_FRUIT[1:]),
    )
    pair_id = events.pair_id("pl-soft", "rs-fruit")
    pair = wait_until(lambda: state.get_pair(pair_id), timeout=5, message="a suggestion within 5 seconds")
    assert pair["state"] == "pending" and pair["reasons"]
    assert pair_id in state.pending_ids_of_cluster("pl-silesia-ict")
    assert pair_id in state.pending_ids_of_cluster("rs-vojvodina-agro")
    concepts = {r["concept"] for r in pair["reasons"]}
    assert {"ict.software", "agrifood"} & concepts

    state.decide(pair_id, "pl-silesia-ict", "anna", "approve")
    state.decide(pair_id, "rs-vojvodina-agro", "marko", "approve")
    wait_until(lambda: state.outbox.size() == 0, timeout=15, message="the matcher outbox drained")
    decided = list(_topic_events(kafka_bootstrap, names["decisions"]))
    assert [e.event_type for e in decided] == [events.MATCH_APPROVED]
    assert decided[0].payload["pair_id"] == pair_id
    suggested = [e for e in _topic_events(kafka_bootstrap, names["matches"]) if e.event_type == events.MATCH_SUGGESTED]
    assert [e.payload["pair_id"] for e in suggested].count(pair_id) >= 1


def test_a_rejected_pair_never_comes_back_after_an_edit_and_replaying_changes_nothing(
    running, state, names, kafka_bootstrap, redis_client
):
    first = [_upsert(*PL_SOFT[:1], 1, *PL_SOFT[1:]), _upsert(*RS_FRUIT[:1], 1, *RS_FRUIT[1:])]
    _send(kafka_bootstrap, names["profiles"], *first)
    pair_id = events.pair_id("pl-soft", "rs-fruit")
    wait_until(lambda: state.get_pair(pair_id), timeout=15, message="a suggestion for the pair")
    state.decide(pair_id, "rs-vojvodina-agro", "marko", "reject", "not_relevant")
    edit = _upsert("pl-soft", 2, PL_SOFT[1], "pl", PL_SOFT[3] + " Także chmura.", PL_SOFT[4] + " Szukamy sadowników.")
    _send(kafka_bootstrap, names["profiles"], edit)
    wait_until(lambda: state.applied_revision("pl-soft") == 2, timeout=15, message="the edit applied")
    assert state.get_pair(pair_id)["state"] == "rejected"
    assert pair_id not in state.pending_ids_of_cluster("pl-silesia-ict")

    wait_until(lambda: state.outbox.size() == 0, timeout=15, message="outbox drained")
    before_pairs = {k: redis_client.get(k) for k in redis_client.scan_iter("{matcher}:pair:*")}
    before_events = len(_topic_events(kafka_bootstrap, names["matches"])) + len(
        _topic_events(kafka_bootstrap, names["decisions"])
    )
    # the whole topic once more, then deletions of unknown organisations as markers on every
    # partition: once they are applied, everything replayed before them has been handled
    markers = [
        events.new_event(events.PROFILE_DELETED, {"org_id": f"marker-{i}", "revision": 1, "cluster_id": "none"}, "test")
        for i in range(30)
    ]
    _send(kafka_bootstrap, names["profiles"], *first, edit, *markers)
    wait_until(
        lambda: all(state.applied_revision(f"marker-{i}") == 1 for i in range(30)),
        timeout=15,
        message="the replay handled",
    )
    after_pairs = {k: redis_client.get(k) for k in redis_client.scan_iter("{matcher}:pair:*")}
    assert after_pairs == before_pairs
    assert state.outbox.size() == 0
    after_events = len(_topic_events(kafka_bootstrap, names["matches"])) + len(
        _topic_events(kafka_bootstrap, names["decisions"])
    )
    assert after_events == before_events


def test_an_undecodable_message_goes_to_the_dlq_and_the_consumer_moves_on(running, state, names, kafka_bootstrap):
    pub = KafkaPublisher(kafka_bootstrap, "test-poison")
    try:
        pub.publish(names["profiles"], "junk", b"\xff not an event")
    finally:
        pub.close()
    _send(kafka_bootstrap, names["profiles"], _upsert(*PL_SOFT[:1], 1, *PL_SOFT[1:]))
    wait_until(lambda: state.applied_revision("pl-soft") == 1, timeout=15, message="the good event after the bad one")
    dead = list(read_partitions(kafka_bootstrap, f"{names['profiles']}.dlq", idle_timeout_s=1.5))
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["origin-topic"].decode() == names["profiles"] and b"not JSON" in headers["error"]
