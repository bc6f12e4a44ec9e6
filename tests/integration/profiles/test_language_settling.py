"""Profiles stored before the country settled Serbian, Croatian or Bosnian are detected again once,
on a real redis-server: the ones whose language changes are stored with their event."""

from __future__ import annotations

import json

import pytest

from partnermatch import events
from services.profiles import services
from services.profiles.adapters.redis_store import ORG, RedisProfileStore

pytestmark = pytest.mark.integration

SERBIAN_LATIN = {
    "name": "Agro Banat d.o.o.",
    "cluster_id": "rs-banat-agro",
    "country": "RS",
    "capabilities": "Proizvodimo i pakujemo smrznuto voće i povrće za tržište Srbije i izvoz. "
    "Imamo hladnjaču kapaciteta 2.000 tona i sopstvene voćnjake malina.",
    "goals": "Tražimo prevoznike sa hladnjačama za redovne ture ka Nemačkoj.",
}


@pytest.fixture
def store(redis_client):
    s = RedisProfileStore(redis_client, topic="profiles")
    services.create_cluster(s, {"id": "rs-banat-agro", "name": "Agro Banat", "country": "RS", "description": ""})
    return s


def _stored_as(store: RedisProfileStore, org_id: str, **fields) -> None:
    """The record as older code left it."""
    key = ORG + org_id
    record = json.loads(store.r.get(key))
    store.r.set(key, json.dumps({**record, **fields}, ensure_ascii=False))


def _queued(store: RedisProfileStore) -> list[events.Envelope]:
    return [events.decode(e.value) for e in store.outbox.head(100)]


def test_a_serbian_profile_stored_as_bosnian_becomes_serbian_with_its_event_once(store):
    detected, _ = services.register_org(store, SERBIAN_LATIN)
    chosen, _ = services.register_org(store, {**SERBIAN_LATIN, "name": "Druga firma", "language": "bs"})
    assert detected["language"] == "sr" and detected["language_detected"]
    _stored_as(store, detected["id"], language="bs")  # detected before the country settled it
    store.outbox.mark_published([e.entry_id for e in store.outbox.head(100)], {})

    assert services.settle_detected_languages(store) == 1

    settled = store.get_org(detected["id"])
    assert (settled["language"], settled["revision"]) == ("sr", detected["revision"] + 1)
    assert store.get_org(chosen["id"])["language"] == "bs", "a language the organisation chose stays"
    [event] = _queued(store)
    assert (event.event_type, event.payload["org_id"], event.payload["language"]) == (
        events.PROFILE_UPSERTED,
        detected["id"],
        "sr",
    )

    _stored_as(store, detected["id"], language="bs")
    assert services.settle_detected_languages(store) == 0, "once per store"
    assert store.get_org(detected["id"])["language"] == "bs"


def test_profiles_detected_right_are_left_as_they_are(store):
    org, _ = services.register_org(store, SERBIAN_LATIN)
    store.outbox.mark_published([e.entry_id for e in store.outbox.head(100)], {})

    assert services.settle_detected_languages(store) == 0
    assert store.get_org(org["id"]) == org
    assert _queued(store) == []
    assert store.languages_settled()


def test_while_another_process_settles_the_languages_a_start_leaves_them_to_it(store):
    detected, _ = services.register_org(store, SERBIAN_LATIN)
    _stored_as(store, detected["id"], language="bs")
    assert store.claim_language_settling()  # another relay, starting at the same time

    assert services.settle_detected_languages(store) == 0
    assert store.get_org(detected["id"])["language"] == "bs" and not store.languages_settled()

    store.end_language_settling()  # it died before it was done: the next start settles them
    assert services.settle_detected_languages(store) == 1
    assert store.get_org(detected["id"])["language"] == "sr"


def test_a_thread_done_with_the_store_gives_its_connection_back(store):
    import threading

    pool = store.r.connection_pool
    detected, _ = services.register_org(store, SERBIAN_LATIN)  # this thread's direct connection, kept
    _stored_as(store, detected["id"], language="bs")  # so the thread writes, on a connection of its own

    def settle() -> None:
        try:
            services.settle_detected_languages(store)
        finally:
            store.release_thread()

    before = len(pool._in_use_connections)
    worker = threading.Thread(target=settle)
    worker.start()
    worker.join()
    assert store.get_org(detected["id"])["language"] == "sr"
    assert len(pool._in_use_connections) == before
