"""An edit read with its token (RedisProfileStore.principal_and_org) WATCHes the record in that
read and is stored by MULTI/EXEC: against a real redis-server, a write by anyone between the read
and the EXEC is a conflict and the edit is computed again from the record as it is then; a WATCH
left by an edit that was refused fails no later edit; an edit whose connection was lost after its
read is decided by the compare-and-set script, as every other change is."""

from __future__ import annotations

from partnermatch import events
from services.profiles import domain, services
from services.profiles.adapters.redis_store import ORG, RedisProfileStore
from services.profiles.services import PRODUCER
from tests.integration.profiles.conftest import profile
from tests.integration.profiles.test_direct_commands import held_id

ADMIN = domain.Principal(domain.ADMIN)


def _register(client, name="Кластер ИКТ Нови Сад"):
    made = client.post("/v1/organisations", json=profile(name=name)).json
    return made["organisation"]["id"], made["token"]


def _renaming(seen, name):
    """A change that renames the organisation and notes the revision it was computed from."""

    def change(old):
        seen.append(old["revision"])
        new = {**old, "name": name, "revision": old["revision"] + 1}
        return new, events.new_event(events.PROFILE_UPSERTED, domain.event_payload(new), PRODUCER)

    return change


def _read_with_token(store, token, org_id):
    who, stored = store.principal_and_org(domain.token_digest(token), org_id)
    assert who is not None and stored is not None
    return stored


def _calls(redis_client):
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in redis_client.info("commandstats").items()}


def _queued(store):
    return [(p["revision"], p["name"]) for p in (events.decode(e.value).payload for e in store.outbox.head(20))]


def test_an_edit_read_with_its_token_is_stored_by_exec_with_its_event_and_contact_index(
    client, cluster, store, redis_client
):
    cluster()
    org_id, token = _register(client)
    redis_client.config_resetstat()
    who, stored = services.authenticate_for_change(store, token, None, None, org_id)
    moved_on = {"goals": "Tražimo partnere iz logistike.", "contacts": [{"name": "Ana", "email": "ana@example.rs"}]}
    org = services.update_org(store, who, org_id, moved_on, stored)

    assert (org["goals"], org["revision"]) == ("Tražimo partnere iz logistike.", 2)
    assert store.get_org(org_id) == org
    assert (store.orgs_of_contact("jelena@example.rs"), store.orgs_of_contact("ana@example.rs")) == ([], [org_id])
    assert [revision for revision, _name in _queued(store)] == [1, 2]
    calls = _calls(redis_client)
    assert (calls.get("watch"), calls.get("exec"), calls.get("evalsha")) == (1, 1, None)


def test_an_edit_raced_by_another_client_after_its_read_is_computed_again_from_the_winners_record(
    client, cluster, store, redis_client
):
    cluster()
    org_id, token = _register(client)
    stored = _read_with_token(store, token, org_id)
    services.update_org(RedisProfileStore(redis_client), ADMIN, org_id, {"goals": "Tražimo partnere iz logistike."})
    seen: list[int] = []

    org = store.change_org(org_id, _renaming(seen, "Кластер ИКТ Војводина"), stored)

    assert seen == [1, 2]
    assert store.get_org(org_id) == org
    assert (org["name"], org["goals"], org["revision"]) == (
        "Кластер ИКТ Војводина",
        "Tražimo partnere iz logistike.",
        3,
    )
    assert _queued(store) == [(1, "Кластер ИКТ Нови Сад"), (2, "Кластер ИКТ Нови Сад"), (3, "Кластер ИКТ Војводина")]


def test_any_write_after_the_read_is_a_conflict_even_of_the_same_bytes(client, cluster, store, redis_client):
    cluster()
    org_id, token = _register(client)
    stored = _read_with_token(store, token, org_id)
    redis_client.set(ORG + org_id, stored)
    seen: list[int] = []

    org = store.change_org(org_id, _renaming(seen, "Кластер ИКТ Војводина"), stored)

    assert seen == [1, 1]
    assert store.get_org(org_id) == org and org["revision"] == 2
    assert _queued(store) == [(1, "Кластер ИКТ Нови Сад"), (2, "Кластер ИКТ Војводина")]


def test_a_read_that_was_never_followed_by_its_edit_fails_no_later_edit(client, cluster, store, redis_client):
    cluster()
    refused_id, refused_token = _register(client, "Refused")
    org_id, token = _register(client)
    _read_with_token(store, refused_token, refused_id)  # an edit refused after its read: no write
    services.update_org(RedisProfileStore(redis_client), ADMIN, refused_id, {"name": "Changed by someone else"})
    stored = _read_with_token(store, token, org_id)
    seen: list[int] = []

    store.change_org(org_id, _renaming(seen, "Кластер ИКТ Војводина"), stored)

    assert seen == [1]  # stored at the first EXEC: the first read's WATCH was let go
    assert store.get_org(org_id)["name"] == "Кластер ИКТ Војводина"


def test_an_edit_whose_connection_was_lost_after_its_read_is_decided_by_the_compare_and_set(
    client, cluster, store, redis_client
):
    cluster()
    org_id, token = _register(client)
    stored = _read_with_token(store, token, org_id)
    redis_client.client_kill_filter(_id=held_id(redis_client, store._direct._connection()))  # its WATCH goes too
    services.update_org(RedisProfileStore(redis_client), ADMIN, org_id, {"goals": "Tražimo partnere iz logistike."})
    seen: list[int] = []

    org = store.change_org(org_id, _renaming(seen, "Кластер ИКТ Војводина"), stored)

    assert seen == [1, 2]
    assert (org["goals"], org["revision"]) == ("Tražimo partnere iz logistike.", 3)
    assert store.get_org(org_id) == org
    assert [revision for revision, _name in _queued(store)] == [1, 2, 3]
