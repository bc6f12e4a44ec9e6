"""The services' stores on a real three-node Redis Cluster, built from a `redis+cluster://` URL as
the services build them: every transaction and script of theirs runs (one slot, through each
store's hash tag), and what one node served before the tag is moved."""

from __future__ import annotations

import redis

from partnermatch import events
from services.matcher.adapters import redis_state
from services.matcher.adapters.redis_state import PairWrite, ProfileChange, ProfilesChange
from services.matcher.bootstrap import build_deps as matcher_deps
from services.matcher.config import MatcherSettings
from services.matcher.domain import PlanSnapshot, RunApplied
from services.profiles import services
from services.profiles.bootstrap import build_deps as profiles_deps
from services.profiles.config import ProfilesSettings
from services.profiles.domain import Principal


def _outbox_events(client, stream: str) -> list[events.Envelope]:
    return [events.decode(d[b"value"]) for _i, d in client.xrange(stream)]


def _one_slot(client: redis.RedisCluster) -> set[int]:
    return {client.keyslot(k) for k in client.scan_iter("*")}


def test_the_profiles_store_runs_on_a_redis_cluster(redis_cluster, redis_cluster_client):
    settings = ProfilesSettings(
        redis_url=redis_cluster.url, kafka_bootstrap="unused:9092", admin_token="a", service_token="s"
    )
    store = profiles_deps(settings).store
    assert isinstance(store.r, redis.RedisCluster)
    services.create_cluster(
        store, {"id": "rs-vojvodina-ict", "name": "ICT Vojvodina", "country": "RS", "description": ""}
    )
    org, token = services.register_org(
        store,
        {
            "name": "Organizacija",
            "cluster_id": "rs-vojvodina-ict",
            "country": "RS",
            "language": "sr",
            "capabilities": "Razvoj softvera",
            "goals": "Tražimo partnere",
            "sectors": ["ict"],
            "contacts": [{"name": "Jelena", "email": "jelena@example.rs", "consent": True}],
        },
    )
    admin = Principal("admin")
    services.update_org(store, admin, org["id"], {"goals": "Novi ciljevi"})
    assert store.get_org(org["id"])["goals"] == "Novi ciljevi", "the change script ran its commands"
    assert store.orgs_of_contact("JELENA@example.rs") == [org["id"]]
    services.rotate_org_token(store, admin, org["id"])
    store.save_web_session("digest", {"org_id": org["id"], "contact_id": "c"}, ttl_s=60)
    services.delete_org(store, admin, org["id"])
    assert store.get_org(org["id"]) is None and store.web_session("digest") is None
    assert [(e.event_type, e.payload["revision"]) for e in _outbox_events(store.r, store.outbox.stream)] == [
        (events.PROFILE_UPSERTED, 1),
        (events.PROFILE_UPSERTED, 2),
        (events.PROFILE_DELETED, 3),
    ]
    assert len(_one_slot(redis_cluster_client)) == 1


def _pair(a: str, b: str) -> PairWrite:
    return PairWrite(pair_id=f"{a}~{b}", org_a=a, org_b=b, cluster_a="c1", cluster_b="c2", score=0.5, reasons=[])


def test_the_matchers_state_runs_on_a_redis_cluster(redis_cluster, redis_cluster_client):
    state = matcher_deps(MatcherSettings(redis_url=redis_cluster.url, kafka_bootstrap="unused:9092")).state
    assert isinstance(state.r, redis.RedisCluster)
    assert state.apply(ProfileChange("a", 1, {"org_id": "a", "cluster_id": "c1"}))
    assert state.apply(
        ProfileChange("b", 1, {"org_id": "b", "cluster_id": "c2"}, upserts=[_pair("a", "b")], known_partners_only=True)
    )
    assert not state.apply(ProfileChange("b", 1, {"org_id": "b", "cluster_id": "c2"})), "applied once"
    assert state.pending_ids_of_cluster("c1") == ["a~b"]
    state.decide("a~b", "c1", "anna", "approve")
    assert state.decide("a~b", "c2", "marko", "approve")["state"] == "approved"
    assert state.pair_ids_of_org("a") == ["a~b"]
    assert state.snapshot(["a", "b"], ["a~b", "a~c"]) == PlanSnapshot({"a": {}, "b": {}}, frozenset({"a~b"}))
    assert state.dislikes_of(["a", "b"]) == {}
    state.r.sadd(redis_state.AWAITING + "c", "x", "y")
    run = ProfilesChange({"c": (1, {"org_id": "c", "cluster_id": "c3"})}, forget_waiting={"c": {"x"}})
    assert state.apply_profiles(run) == RunApplied({"c"}, {"c": {"y"}}), "read in the run's transaction"
    assert [e.event_type for e in _outbox_events(state.r, state.outbox.stream)] == [
        events.MATCH_SUGGESTED,
        events.MATCH_APPROVED,
    ]
    assert len(_one_slot(redis_cluster_client)) == 1


def test_a_state_from_before_the_hash_tags_is_moved_once(redis_client):
    untagged = {"profiles:org:x": "1", "matcher:pair:a~b": "2", "matcher:page-session:d": "token"}
    for key, value in untagged.items():
        redis_client.set(key, value)
    url = redis_client.connection_pool.connection_kwargs
    redis_url = f"redis://{url['host']}:{url['port']}/{url.get('db', 0)}"
    profiles_deps(ProfilesSettings(redis_url=redis_url, kafka_bootstrap="u", admin_token="a", service_token="s"))
    matcher_deps(MatcherSettings(redis_url=redis_url, kafka_bootstrap="u"))
    assert redis_client.get("{profiles}:org:x") == b"1" and redis_client.get("{matcher}:pair:a~b") == b"2"
    assert redis_client.get("matcher:page-session:d") == b"token", "page sessions stay where they are"
    assert not redis_client.exists("profiles:org:x", "matcher:pair:a~b")
