"""The profiles API against a real redis-server: registration, access rules, paging, the outbox."""

from __future__ import annotations

import json

import pytest

from partnermatch import events

from .conftest import SERVICE, profile

OUTBOX = "profiles:outbox"

pytestmark = pytest.mark.integration


def _outbox(redis_client):
    return [events.decode(data[b"value"]) for _id, data in redis_client.xrange(OUTBOX)]


def _register(client, cluster_id="rs-vojvodina-ict", **over):
    r = client.post("/v1/organisations", json=profile(cluster_id, **over))
    assert r.status_code == 201, r.json
    return r.json["organisation"], {"Authorization": f"Bearer {r.json['token']}"}


TEXTS = {
    "serbian_cyrillic": "Кластер окупља 34 фирме; циљеви: 1) извоз, 2) обука — „ђачке“ праксе.",
    "serbian_latin": "Klaster okuplja 34 firme; ciljevi: izvoz, obuka — đačke prakse, čćžšđ.",
    "albanian": "Qendra krijuese për ndërmarrjet e vogla; bashkëpunim në Ballkanin Perëndimor ë ç.",
    "polish": "Zażółć gęślą jaźń: klaster ICT z Rudy Śląskiej, 2 uczelnie.",
    "russian": "Образовательный кластер химии и стекла ищет промышленных партнёров — ёлка.",
    "hungarian": "Árvíztűrő tükörfúrógép: őszi ülés a klaszter tagjaival.",
    "mixed_and_emoji": "ICT 🚀 Кластер / klaster\ttab\nnew line — 100% ‰ “quotes”",
}


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_text_in_any_script_round_trips_byte_for_byte(client, cluster, text):
    cluster()
    org, _ = _register(client, capabilities=text, goals=text, name=text.splitlines()[0][:200])
    raw = client.get(f"/v1/organisations/{org['id']}").get_data()
    got = json.loads(raw)
    assert got["capabilities"].encode("utf-8") == text.encode("utf-8")
    assert got["goals"].encode("utf-8") == text.encode("utf-8")


def test_registering_gives_201_a_token_and_one_outbox_event_without_contact_emails(client, cluster, redis_client):
    cluster()
    org, auth = _register(client)
    assert org["revision"] == 1 and org["contacts"][0]["email"] == "jelena@example.rs"
    [event] = _outbox(redis_client)
    assert event.event_type == events.PROFILE_UPSERTED
    assert event.payload["org_id"] == org["id"] and event.payload["revision"] == 1
    assert "jelena@example.rs" not in json.dumps(event.to_dict(), ensure_ascii=False)
    assert client.get("/v1/auth/whoami", headers=auth).json == {
        "role": "organisation", "org_id": org["id"], "cluster_id": "rs-vojvodina-ict", "username": None}


def test_anonymous_readers_see_the_public_profile_but_never_contacts(client, cluster):
    cluster()
    org, auth = _register(client)
    public = client.get(f"/v1/organisations/{org['id']}").json
    assert "contacts" not in public and public["name"] == "Кластер ИКТ Нови Сад"
    assert client.get(f"/v1/organisations/{org['id']}", headers=auth).json["contacts"]
    listed = client.get("/v1/organisations").json
    assert all("contacts" not in o for o in listed)
    assert client.get(f"/v1/organisations/{org['id']}/contacts").status_code == 401


def test_an_organisation_edits_itself_and_each_edit_is_one_event(client, cluster, redis_client):
    cluster()
    org, auth = _register(client)
    r = client.patch(f"/v1/organisations/{org['id']}", json={"goals": "Szukamy partnerów z branży IT."}, headers=auth)
    assert r.status_code == 200, r.json
    assert r.json["revision"] == 2 and r.json["goals"] == "Szukamy partnerów z branży IT."
    assert r.json["capabilities"] == profile()["capabilities"]
    revisions = [(e.event_type, e.payload["revision"]) for e in _outbox(redis_client)]
    assert revisions == [(events.PROFILE_UPSERTED, 1), (events.PROFILE_UPSERTED, 2)]


def test_an_organisation_cannot_edit_delete_or_read_contacts_of_another(client, cluster):
    cluster()
    mine, my_auth = _register(client)
    theirs, _ = _register(client, name="Other")
    hijack = client.patch(f"/v1/organisations/{theirs['id']}", json={"name": "Hijacked"}, headers=my_auth)
    assert hijack.status_code == 403
    assert client.delete(f"/v1/organisations/{theirs['id']}", headers=my_auth).status_code == 403
    assert client.get(f"/v1/organisations/{theirs['id']}/contacts", headers=my_auth).status_code == 403
    assert "contacts" not in client.get(f"/v1/organisations/{theirs['id']}", headers=my_auth).json
    assert client.patch(f"/v1/organisations/{theirs['id']}", json={"name": "Hijacked"}).status_code == 401
    assert client.get(f"/v1/organisations/{theirs['id']}").json["name"] == "Other"


def test_an_organisation_cannot_move_itself_to_another_cluster_but_the_admin_can(client, cluster, admin):
    cluster()
    cluster("pl-silesia-ict", "PL")
    org, auth = _register(client)
    moved = client.patch(f"/v1/organisations/{org['id']}", json={"cluster_id": "pl-silesia-ict"}, headers=auth)
    assert moved.status_code == 403
    r = client.patch(f"/v1/organisations/{org['id']}", json={"cluster_id": "pl-silesia-ict"}, headers=admin)
    assert r.status_code == 200 and r.json["cluster_id"] == "pl-silesia-ict"
    assert client.get("/v1/organisations?cluster_id=pl-silesia-ict").json[0]["id"] == org["id"]
    assert client.get("/v1/organisations?cluster_id=rs-vojvodina-ict").json == []


def test_deleting_removes_the_profile_revokes_its_token_and_publishes_a_deletion(client, cluster, redis_client):
    cluster()
    org, auth = _register(client)
    assert client.delete(f"/v1/organisations/{org['id']}", headers=auth).status_code == 204
    assert client.get(f"/v1/organisations/{org['id']}").status_code == 404
    assert client.get("/v1/auth/whoami", headers=auth).status_code == 401
    last = _outbox(redis_client)[-1]
    assert last.event_type == events.PROFILE_DELETED and last.payload == {
        "org_id": org["id"], "revision": 2, "cluster_id": "rs-vojvodina-ict"}


def test_listing_pages_through_every_profile_once(client, cluster):
    cluster()
    ids = {_register(client, name=f"Org {i}")[0]["id"] for i in range(5)}
    seen = []
    for page in (1, 2, 3):
        r = client.get(f"/v1/organisations?page={page}&page_size=2")
        assert r.status_code == 200
        assert json.loads(r.headers["X-Pagination"])["total"] == 5
        seen += [o["id"] for o in r.json]
    assert sorted(seen) == sorted(ids)


def test_language_is_detected_when_not_given(client, cluster):
    cluster()
    body = profile(capabilities="Firma zajmuje się tworzeniem oprogramowania dla przemysłu i szkoleniami.",
                   goals="Szukamy partnerów w branży rolno-spożywczej w Serbii i Albanii.")
    del body["language"]
    r = client.post("/v1/organisations", json=body)
    assert r.status_code == 201
    assert r.json["organisation"]["language"] == "pl" and r.json["organisation"]["language_detected"] is True


def test_admin_creates_clusters_and_coordinators_who_log_in(client, admin, cluster):
    cluster()
    assert client.post("/v1/clusters", json={"id": "x-y-z", "name": "N", "country": "PL"}).status_code == 401
    r = client.post("/v1/clusters/rs-vojvodina-ict/coordinators", headers=admin, json={
        "username": "marko", "password": "correct horse battery", "name": "Marko Marković",
        "email": "marko@example.rs", "language": "sr"})
    assert r.status_code == 201 and "password" not in r.json and "password_hash" not in r.json
    assert client.post("/v1/auth/login", json={"username": "marko", "password": "wrong password!"}).status_code == 401
    assert client.post("/v1/auth/login", json={"username": "nobody", "password": "wrong password!"}).status_code == 401
    session = client.post("/v1/auth/login", json={"username": "marko", "password": "correct horse battery"})
    assert session.status_code == 200
    who = client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {session.json['token']}"}).json
    assert who == {"role": "coordinator", "cluster_id": "rs-vojvodina-ict", "username": "marko", "org_id": None}


def test_the_notifier_reads_contacts_with_the_service_token(client, cluster):
    cluster()
    org, _ = _register(client)
    r = client.get(f"/v1/organisations/{org['id']}/contacts", headers={"Authorization": f"Bearer {SERVICE}"})
    assert r.status_code == 200
    assert r.json["contacts"][0]["email"] == "jelena@example.rs" and r.json["contacts"][0]["consent"] is True


def test_openapi_document_is_served_from_the_same_schemas(client):
    spec = client.get("/openapi.json").json
    assert "/v1/organisations" in spec["paths"]
    create = spec["components"]["schemas"]["OrganisationCreate"]
    assert {"name", "cluster_id", "country", "capabilities", "goals"} <= set(create["required"])
