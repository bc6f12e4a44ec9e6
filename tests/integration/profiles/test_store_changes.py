"""The profiles store's read-modify-write against a real redis-server: a change computed from a
record that another writer changed meanwhile is never stored; it is computed again from the new
record, and every stored revision has its event in the outbox."""

from __future__ import annotations

import pytest

from partnermatch import events
from services.profiles import domain, services
from services.profiles.adapters.redis_store import NotFound
from services.profiles.services import PRODUCER
from tests.integration.profiles.conftest import profile


@pytest.fixture
def redis_client(store_client):
    """These tests run on one redis-server and on a three-node Redis Cluster."""
    return store_client


def _renamed(old, name):
    new = {**old, "name": name, "revision": old["revision"] + 1}
    return new, events.new_event(events.PROFILE_UPSERTED, domain.event_payload(new), PRODUCER)


def test_a_change_that_lost_a_race_is_computed_again_from_the_winners_record(client, cluster, store):
    cluster()
    org_id = client.post("/v1/organisations", json=profile()).json["organisation"]["id"]
    admin = domain.Principal(domain.ADMIN)
    seen = []

    def change(old):
        seen.append(old["revision"])
        if len(seen) == 1:  # another writer stores its change between our read and our write
            services.update_org(store, admin, org_id, {"goals": "Tražimo partnere iz logistike."})
        return _renamed(old, "Кластер ИКТ Војводина")

    stored = store.change_org(org_id, change)

    assert seen == [1, 2]
    org = store.get_org(org_id)
    assert org == stored
    assert (org["name"], org["goals"], org["revision"]) == (
        "Кластер ИКТ Војводина",
        "Tražimo partnere iz logistike.",
        3,
    )
    queued = [events.decode(entry.value).payload for entry in store.outbox.head(10)]
    assert [(p["revision"], p["name"]) for p in queued] == [
        (1, "Кластер ИКТ Нови Сад"),
        (2, "Кластер ИКТ Нови Сад"),
        (3, "Кластер ИКТ Војводина"),
    ]


def test_a_deleted_organisation_is_not_brought_back_by_a_change_read_before(client, cluster, store):
    cluster()
    org_id = client.post("/v1/organisations", json=profile()).json["organisation"]["id"]

    def change(old):
        services.delete_org(store, domain.Principal(domain.ADMIN), org_id)
        return _renamed(old, "too late")

    with pytest.raises(NotFound):
        store.change_org(org_id, change)
    assert store.get_org(org_id) is None
    assert [entry.event_type for entry in store.outbox.head(10)] == [events.PROFILE_UPSERTED, events.PROFILE_DELETED]


def test_an_organisation_of_a_missing_cluster_leaves_nothing_behind(client, cluster, store, redis_client):
    cluster()
    answer = client.post("/v1/organisations", json=profile(cluster_id="no-such-cluster"))
    assert answer.status_code == 422
    assert answer.json["errors"] == {"json": {"cluster_id": ["No such cluster."]}}
    assert store.count_orgs() == 0
    assert store.outbox.size() == 0


def test_an_edit_read_with_its_token_is_stored_once_and_raced_edits_still_win(client, cluster, store):
    cluster()
    made = client.post("/v1/organisations", json=profile()).json
    org_id, token = made["organisation"]["id"], made["token"]
    who, stored = services.authenticate_for_change(store, token, None, None, org_id)
    assert who == domain.Principal(domain.ORGANISATION, org_id=org_id, cluster_id="rs-vojvodina-ict")
    services.update_org(store, domain.Principal(domain.ADMIN), org_id, {"name": "Changed meanwhile"})
    org = services.update_org(store, who, org_id, {"goals": "Tražimo partnere iz logistike."}, stored)
    assert (org["name"], org["goals"], org["revision"]) == ("Changed meanwhile", "Tražimo partnere iz logistike.", 3)
    assert [events.decode(e.value).payload["revision"] for e in store.outbox.head(10)] == [1, 2, 3]
