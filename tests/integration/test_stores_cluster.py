"""The services' stores on a real three-node Redis Cluster, built from a `redis+cluster://` URL as
the services build them: every transaction and script of theirs runs (one slot, through each
store's hash tag), and what one node served before the tag is moved."""

from __future__ import annotations

import redis

from partnermatch import events
from services.profiles import services
from services.profiles.bootstrap import build_deps as profiles_deps
from services.profiles.config import ProfilesSettings
from services.profiles.domain import Principal


def _outbox_events(client, stream: str) -> list[events.Envelope]:
    return [events.decode(d[b"value"]) for _i, d in client.xrange(stream)]


def _one_slot(client: redis.RedisCluster) -> set[int]:
    return {client.keyslot(k) for k in client.scan_iter("*")}


def test_the_profiles_store_runs_on_a_redis_cluster(redis_cluster, redis_cluster_client):
    settings = ProfilesSettings(redis_url=redis_cluster.url, kafka_bootstrap="unused:9092",
                                admin_token="a", service_token="s")
    store = profiles_deps(settings).store
    assert isinstance(store.r, redis.RedisCluster)
    services.create_cluster(store, {"id": "rs-vojvodina-ict", "name": "ICT Vojvodina", "country": "RS",
                                    "description": ""})
    org, token = services.register_org(store, {
        "name": "Organizacija", "cluster_id": "rs-vojvodina-ict", "country": "RS", "language": "sr",
        "capabilities": "Razvoj softvera", "goals": "Tražimo partnere", "sectors": ["ict"],
        "contacts": [{"name": "Jelena", "email": "jelena@example.rs", "consent": True}]})
    admin = Principal("admin")
    services.update_org(store, admin, org["id"], {"goals": "Novi ciljevi"})
    assert store.get_org(org["id"])["goals"] == "Novi ciljevi", "the change script ran its commands"
    assert store.orgs_of_contact("JELENA@example.rs") == [org["id"]]
    services.rotate_org_token(store, admin, org["id"])
    store.save_web_session("digest", {"org_id": org["id"], "contact_id": "c"}, ttl_s=60)
    services.delete_org(store, admin, org["id"])
    assert store.get_org(org["id"]) is None and store.web_session("digest") is None
    assert [(e.event_type, e.payload["revision"]) for e in _outbox_events(store.r, store.outbox.stream)] == [
        (events.PROFILE_UPSERTED, 1), (events.PROFILE_UPSERTED, 2), (events.PROFILE_DELETED, 3)]
    assert len(_one_slot(redis_cluster_client)) == 1


def test_a_state_from_before_the_hash_tags_is_moved_once(redis_client):
    untagged = {"profiles:org:x": "1"}
    for key, value in untagged.items():
        redis_client.set(key, value)
    url = redis_client.connection_pool.connection_kwargs
    redis_url = f"redis://{url['host']}:{url['port']}/{url.get('db', 0)}"
    profiles_deps(ProfilesSettings(redis_url=redis_url, kafka_bootstrap="u", admin_token="a", service_token="s"))
    assert redis_client.get("{profiles}:org:x") == b"1"
    assert not redis_client.exists("profiles:org:x")
