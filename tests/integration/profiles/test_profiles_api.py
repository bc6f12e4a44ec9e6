"""The profiles API against a real redis-server: registration, access rules, paging, the outbox."""

from __future__ import annotations

import json

import pytest

from partnermatch import events

from .conftest import SERVICE, profile

OUTBOX = "{profiles}:outbox"

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_client(store_client):
    """These tests run on one redis-server and on a three-node Redis Cluster."""
    return store_client


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
        "role": "organisation",
        "org_id": org["id"],
        "cluster_id": "rs-vojvodina-ict",
        "username": None,
    }


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
        "org_id": org["id"],
        "revision": 2,
        "cluster_id": "rs-vojvodina-ict",
    }


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
    body = profile(
        capabilities="Firma zajmuje się tworzeniem oprogramowania dla przemysłu i szkoleniami.",
        goals="Szukamy partnerów w branży rolno-spożywczej w Serbii i Albanii.",
    )
    del body["language"]
    r = client.post("/v1/organisations", json=body)
    assert r.status_code == 201
    assert r.json["organisation"]["language"] == "pl" and r.json["organisation"]["language_detected"] is True


def test_serbian_croatian_or_bosnian_detected_is_settled_by_the_country(client, cluster):
    """QA: a Serbian firm registered from the pages with its language left to detection was
    stored as Bosnian, and left out of a queue filtered by Serbian."""
    cluster()
    body = profile(
        country="RS",
        capabilities="Razvijamo softverska rešenja za mlekare i sledljivost hrane, sa timom od dvadeset inženjera.",
        goals="Tražimo partnere iz prehrambene industrije u Poljskoj i Albaniji.",
    )
    del body["language"]
    made = client.post("/v1/organisations", json=body).json
    assert (made["organisation"]["language"], made["organisation"]["language_detected"]) == ("sr", True)
    url, auth = f"/v1/organisations/{made['organisation']['id']}", {"Authorization": f"Bearer {made['token']}"}
    r = client.patch(url, json={"country": "HR"}, headers=auth)
    assert (r.status_code, r.json["language"]) == (200, "hr"), "the same texts, another country: detected again"


def _registered_detecting(client, monkeypatch, body):
    """Register `body` with its language left to detection; then every text detected is noted in
    the list returned, beside the organisation's URL and its token's header."""
    from services.profiles import services

    del body["language"]
    made = client.post("/v1/organisations", json=body).json
    url, auth = f"/v1/organisations/{made['organisation']['id']}", {"Authorization": f"Bearer {made['token']}"}
    detected = []
    real = services.detect_language
    monkeypatch.setattr(services, "detect_language", lambda text, **kw: detected.append(text) or real(text, **kw))
    return url, auth, detected


def test_a_detected_language_is_detected_again_only_when_its_texts_change(client, cluster, monkeypatch):
    cluster()
    body = profile(
        capabilities="Firma zajmuje się tworzeniem oprogramowania dla przemysłu i szkoleniami.",
        goals="Szukamy partnerów w branży rolno-spożywczej w Serbii i Albanii.",
    )
    url, auth, detected = _registered_detecting(client, monkeypatch, body)
    same_texts = {"goals": body["goals"], "capabilities": body["capabilities"], "website": "https://a.example.pl"}
    for change in ({"website": "https://b.example.pl"}, same_texts):
        r = client.patch(url, json=change, headers=auth)
        assert (r.status_code, r.json["language"], r.json["language_detected"]) == (200, "pl", True)
    assert detected == []
    english = {
        "capabilities": "The company builds software for industry and runs training courses.",
        "goals": "We seek partners in food processing in Serbia and Albania.",
    }
    r = client.patch(url, json=english, headers=auth)
    assert (r.json["language"], r.json["language_detected"], len(detected)) == ("en", True, 1)
    r = client.patch(url, json={"language": "pl"}, headers=auth)  # stated: kept whatever the texts say
    assert (r.json["language"], r.json["language_detected"], len(detected)) == ("pl", False, 1)


def test_goals_changed_beyond_what_detection_reads_keep_the_detected_language(client, cluster, monkeypatch):
    from partnermatch.languages import DETECTION_CHARS, detect_language

    cluster()
    long_capabilities = "Firma zajmuje się tworzeniem oprogramowania dla przemysłu i szkoleniami. " * 9
    assert len(long_capabilities) > DETECTION_CHARS
    body = profile(capabilities=long_capabilities, goals="Szukamy partnerów w branży rolno-spożywczej.")
    url, auth, detected = _registered_detecting(client, monkeypatch, body)
    r = client.patch(url, json={"goals": "We seek partners in food processing."}, headers=auth)
    assert (r.json["language"], r.json["language_detected"], detected) == ("pl", True, [])
    assert detect_language(f"{long_capabilities}\nWe seek partners in food processing.") == "pl"  # what detecting gives
    r = client.patch(url, json={"capabilities": "We build software for industry."}, headers=auth)
    assert (r.json["language"], len(detected)) == ("en", 1)


def test_admin_creates_clusters_and_coordinators_who_log_in(client, admin, cluster):
    cluster()
    assert client.post("/v1/clusters", json={"id": "x-y-z", "name": "N", "country": "PL"}).status_code == 401
    r = client.post(
        "/v1/clusters/rs-vojvodina-ict/coordinators",
        headers=admin,
        json={
            "username": "marko",
            "password": "correct horse battery",
            "name": "Marko Marković",
            "email": "marko@example.rs",
            "language": "sr",
        },
    )
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


# ---- structured needs and the vocabulary -------------------------------------------------------

NEEDS = {
    "offers": ["ict.software", "ict"],
    "seeks": ["agrifood", "logistics.cold_chain"],
    "seeks_countries": ["PL", "DE"],
}


def test_structured_needs_are_stored_shown_publicly_and_published(client, cluster, redis_client):
    cluster()
    org, _ = _register(client, **{**NEEDS, "seeks": ["agrifood", "logistics.cold_chain", "agrifood"]})
    assert {k: org[k] for k in NEEDS} == NEEDS, "repeats count once"
    public = client.get(f"/v1/organisations/{org['id']}").json
    assert {k: public[k] for k in NEEDS} == NEEDS
    assert {k: client.get("/v1/organisations").json[0][k] for k in NEEDS} == NEEDS
    [event] = _outbox(redis_client)
    assert event.version == 2 and {k: event.payload[k] for k in NEEDS} == NEEDS


def test_a_profile_without_needs_has_empty_lists_everywhere(client, cluster, redis_client):
    cluster()
    org, _ = _register(client)
    assert org["offers"] == org["seeks"] == org["seeks_countries"] == []
    [event] = _outbox(redis_client)
    assert event.payload["offers"] == event.payload["seeks"] == event.payload["seeks_countries"] == []


def test_editing_needs_changes_only_them_and_an_empty_list_clears(client, cluster, redis_client):
    cluster()
    org, auth = _register(client, **NEEDS)
    r = client.patch(f"/v1/organisations/{org['id']}", json={"seeks": ["metal"], "offers": []}, headers=auth)
    assert r.status_code == 200, r.json
    assert (r.json["offers"], r.json["seeks"], r.json["seeks_countries"]) == ([], ["metal"], ["PL", "DE"])
    r = client.patch(f"/v1/organisations/{org['id']}", json={"goals": "Nowe cele."}, headers=auth)
    assert r.json["seeks"] == ["metal"] and r.json["seeks_countries"] == ["PL", "DE"]
    last = _outbox(redis_client)[-1]
    assert (last.payload["revision"], last.payload["seeks"], last.payload["offers"]) == (3, ["metal"], [])


def test_a_profile_stored_before_needs_existed_reads_and_publishes_empty_lists(client, cluster, store, redis_client):
    cluster()
    org, auth = _register(client)
    old = store.get_org(org["id"])
    for name in NEEDS:
        del old[name]
    redis_client.set(f"{{profiles}}:org:{org['id']}", json.dumps(old, ensure_ascii=False))
    assert client.get(f"/v1/organisations/{org['id']}").json["seeks"] == []
    r = client.patch(f"/v1/organisations/{org['id']}", json={"name": "Renamed"}, headers=auth)
    assert r.status_code == 200 and r.json["offers"] == []
    assert _outbox(redis_client)[-1].payload["seeks_countries"] == []


def test_the_vocabulary_lists_needs_and_countries_labelled_in_the_readers_language(client):
    from partnermatch.languages import latin_to_serbian_cyrillic

    r = client.get("/v1/vocabulary?lang=sr-Cyrl")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "public, max-age=3600"
    assert set(r.json) == {"sectors", "activities", "countries"}
    latin = {s["id"]: s["label"] for s in client.get("/v1/vocabulary?lang=sr").json["sectors"]}
    assert {s["id"]: s["label"] for s in r.json["sectors"]} == {
        i: latin_to_serbian_cyrillic(label) for i, label in latin.items()
    }
    cold = next(a for a in r.json["activities"] if a["id"] == "logistics.cold_chain")
    assert cold["sector"] == "logistics" and cold["label"]
    assert {"RS", "PL"} <= {c["code"] for c in r.json["countries"]}
    english = client.get("/v1/vocabulary").json
    assert english["sectors"] != r.json["sectors"], "English is the default"
    ids = {s["id"] for s in english["sectors"]} | {a["id"] for a in english["activities"]}
    assert set(NEEDS["offers"] + NEEDS["seeks"]) <= ids


def test_the_vocabulary_refuses_an_unknown_language_with_a_422(client):
    r = client.get("/v1/vocabulary?lang=klingon")
    assert r.status_code == 422 and "lang" in r.json["errors"]["query"]


def test_every_id_and_code_the_vocabulary_lists_is_accepted(client, cluster):
    cluster()
    vocab = client.get("/v1/vocabulary?lang=pl").json
    ids = [s["id"] for s in vocab["sectors"]] + [a["id"] for a in vocab["activities"]]
    codes = [c["code"] for c in vocab["countries"]]
    org, auth = _register(client)
    for start in range(0, max(len(ids), len(codes)), 10):
        change = {"offers": ids[start : start + 10], "seeks_countries": codes[start : start + 10]}
        r = client.patch(f"/v1/organisations/{org['id']}", json=change, headers=auth)
        assert r.status_code == 200, r.json


def test_openapi_documents_the_needs_and_the_vocabulary(client):
    spec = client.get("/openapi.json").json
    create = spec["components"]["schemas"]["OrganisationCreate"]["properties"]
    assert {"offers", "seeks", "seeks_countries"} <= set(create)
    assert create["offers"]["maxItems"] == 10
    public = spec["components"]["schemas"]["OrganisationPublic"]["properties"]
    assert {"offers", "seeks", "seeks_countries"} <= set(public)
    get = spec["paths"]["/v1/vocabulary"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Vocabulary"
    }
    [lang] = get["parameters"]
    assert lang["name"] == "lang" and lang["schema"]["default"] == "en" and "sr-Cyrl" in lang["schema"]["enum"]


def test_each_consent_is_stored_with_its_time_and_wording_and_kept_while_unchanged(client, cluster):
    cluster()
    contacts = [
        {"name": "Jelena", "email": "jelena@example.rs", "language": "sr", "consent": True, "share_contact": True},
        {"name": "Marko", "email": "marko@example.rs", "language": "sr", "consent": False},
    ]
    org, auth = _register(client, contacts=contacts)
    jelena, marko = org["contacts"]
    assert jelena["share_contact"] is True and marko["share_contact"] is False
    for c in (jelena, marko):
        assert c["consent_at"] and c["share_contact_at"] and c["consent_wording"] and c["share_contact_wording"]
    contacts[1]["share_contact"] = True
    r = client.patch(f"/v1/organisations/{org['id']}", json={"contacts": contacts}, headers=auth)
    assert r.status_code == 200, r.json
    jelena2, marko2 = r.json["contacts"]
    assert jelena2 == jelena
    assert marko2["consent_at"] == marko["consent_at"] and marko2["share_contact_at"] > marko["share_contact_at"]
    read = client.get(f"/v1/organisations/{org['id']}/contacts", headers={"Authorization": f"Bearer {SERVICE}"})
    assert [c["share_contact"] for c in read.json["contacts"]] == [True, True]


def test_the_consent_stamps_are_set_by_the_server_only(client, cluster):
    cluster()
    contact = {
        "name": "Jelena",
        "email": "jelena@example.rs",
        "language": "sr",
        "consent": True,
        "consent_at": "2020-01-01T00:00:00+00:00",
    }
    r = client.post("/v1/organisations", json=profile(contacts=[contact]))
    assert r.status_code == 422 and "consent_at" in json.dumps(r.json)


def test_every_operation_that_needs_a_token_documents_its_401_and_403(client):
    spec = client.get("/openapi.json").json
    needs_a_token = [
        ("/v1/clusters", "post"),
        ("/v1/clusters/{cluster_id}/coordinators", "get"),
        ("/v1/clusters/{cluster_id}/coordinators", "post"),
        ("/v1/coordinators/{username}", "get"),
        ("/v1/auth/logout", "post"),
        ("/v1/organisations/{org_id}", "patch"),
        ("/v1/organisations/{org_id}", "delete"),
        ("/v1/organisations/{org_id}/token", "post"),
        ("/v1/organisations/{org_id}/token", "delete"),
        ("/v1/organisations/{org_id}/contacts", "get"),
    ]
    for path, method in needs_a_token:
        assert {"401", "403"} <= set(spec["paths"][path][method]["responses"]), (method, path)
