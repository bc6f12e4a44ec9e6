"""The review API with the real profiles service checking logins: coordinators see and decide only
pairs of their own cluster; organisations and anonymous callers see nothing."""

from __future__ import annotations

import pytest

from partnermatch import events
from services.matcher.adapters.redis_state import PairWrite, ProfileChange

pytestmark = pytest.mark.integration

PAIR = "org_pl~org_rs"


@pytest.fixture
def suggested(matcher_state):
    for org, cluster, country, lang, caps in (
        ("org_pl", "pl-silesia-ict", "PL", "pl", "Tworzenie oprogramowania i szkolenia informatyczne."),
        ("org_rs", "rs-vojvodina-ict", "RS", "sr", "Prerada voća i povrća; tražimo softver za praćenje."),
    ):
        matcher_state.apply(
            ProfileChange(
                org,
                1,
                {
                    "org_id": org,
                    "name": org.upper(),
                    "cluster_id": cluster,
                    "country": country,
                    "language": lang,
                    "capabilities": caps,
                    "goals": "—",
                    "sectors": [],
                    "website": None,
                },
            )
        )
    matcher_state.apply(
        ProfileChange(
            "org_pl",
            2,
            matcher_state.get_profile("org_pl"),
            upserts=[
                PairWrite(
                    PAIR,
                    "org_pl",
                    "org_rs",
                    "pl-silesia-ict",
                    "rs-vojvodina-ict",
                    0.62,
                    [
                        {
                            "concept": "ict.software",
                            "kind": "activity",
                            "direction": "a_offers_b_seeks",
                            "weight": 0.4,
                            "terms_a": ["oprogramowania"],
                            "terms_b": ["softver"],
                        }
                    ],
                )
            ],
        )
    )
    return PAIR


ENDPOINTS = [
    ("get", "/v1/suggestions", None),
    ("get", f"/v1/suggestions/{PAIR}", None),
    ("post", f"/v1/suggestions/{PAIR}/decision", {"decision": "approve"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_refuses_anonymous_callers(matcher_app, suggested, method, path, body):
    r = getattr(matcher_app.test_client(), method)(path, json=body)
    assert r.status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_refuses_an_organisation_token(matcher_app, profiles, suggested, method, path, body):
    reg = profiles.client.post(
        "/v1/organisations",
        json={
            "name": "Firma",
            "cluster_id": "pl-silesia-ict",
            "country": "PL",
            "language": "pl",
            "capabilities": "Oprogramowanie",
            "goals": "Partnerzy",
        },
    )
    headers = {"Authorization": f"Bearer {reg.json['token']}"}
    r = getattr(matcher_app.test_client(), method)(path, json=body, headers=headers)
    assert r.status_code == 403


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_foreign_coordinator_can_neither_see_nor_decide_the_pair(
    matcher_app, suggested, login, matcher_state, method, path, body
):
    r = getattr(matcher_app.test_client(), method)(path, json=body, headers=login("besa"))
    if path == "/v1/suggestions":
        assert r.status_code == 200 and r.json == []
    else:
        assert r.status_code == 404
    assert matcher_state.get_pair(PAIR)["decisions"] == {}


def test_a_made_up_token_is_refused(matcher_app, suggested):
    r = matcher_app.test_client().get("/v1/suggestions", headers={"Authorization": "Bearer pms_forged"})
    assert r.status_code == 401


def test_each_coordinator_sees_the_pair_from_their_side_with_reasons_in_their_language(matcher_app, suggested, login):
    client = matcher_app.test_client()
    pl = client.get("/v1/suggestions?lang=pl", headers=login("anna")).json
    assert [s["pair_id"] for s in pl] == [PAIR]
    assert pl[0]["own"]["org_id"] == "org_pl" and pl[0]["partner"]["org_id"] == "org_rs"
    assert pl[0]["reasons"][0]["side"] == "own_offers"
    assert pl[0]["reasons"][0]["text"]
    rs = client.get(f"/v1/suggestions/{PAIR}?lang=sr-Cyrl", headers=login("marko")).json
    assert rs["own"]["org_id"] == "org_rs" and rs["reasons"][0]["side"] == "partner_offers"
    assert rs["partner"]["capabilities"].startswith("Tworzenie")


def test_both_coordinators_approving_publishes_one_match_approved(matcher_app, suggested, login, matcher_state):
    client = matcher_app.test_client()
    first = client.post(f"/v1/suggestions/{PAIR}/decision", json={"decision": "approve"}, headers=login("anna"))
    assert first.status_code == 200 and first.json["state"] == "pending"
    second = client.post(f"/v1/suggestions/{PAIR}/decision", json={"decision": "approve"}, headers=login("marko"))
    assert second.status_code == 200 and second.json["state"] == "approved"
    decided = [events.decode(e.value) for e in matcher_state.outbox.head(100) if e.event_type == events.MATCH_APPROVED]
    assert len(decided) == 1
    history = client.get("/v1/suggestions?state=approved", headers=login("anna")).json
    assert [s["pair_id"] for s in history] == [PAIR]


def test_a_rejection_without_a_reason_code_is_a_422(matcher_app, suggested, login):
    r = matcher_app.test_client().post(
        f"/v1/suggestions/{PAIR}/decision", json={"decision": "reject"}, headers=login("marko")
    )
    assert r.status_code == 422 and "reason_code" in r.json["errors"]["json"]
    assert r.json["message"] == "Validation failed."  # as every refusal of the APIs
    paged = matcher_app.test_client().get("/v1/suggestions?page_size=500", headers=login("marko"))
    assert paged.status_code == 422 and paged.json["message"] == "Validation failed."  # its paging too


def test_an_approval_with_a_rejection_reason_is_a_422_and_decides_nothing(matcher_app, matcher_state, suggested, login):
    client = matcher_app.test_client()
    body = {"decision": "approve", "reason_code": "not_relevant", "reason_text": "ok"}
    r = client.post(f"/v1/suggestions/{PAIR}/decision", json=body, headers=login("marko"))
    assert r.status_code == 422 and "rejection only" in r.json["errors"]["json"]["reason_code"][0]
    assert matcher_state.get_pair(PAIR)["decisions"] == {}
    r = client.post(
        f"/v1/suggestions/{PAIR}/decision", json={"decision": "approve", "reason_text": "ok"}, headers=login("marko")
    )
    assert r.status_code == 200, "a comment goes with an approval too"


def test_a_decision_not_sent_as_json_is_a_415_not_a_missing_field(matcher_app, matcher_state, suggested, login):
    client = matcher_app.test_client()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {**login("marko"), **({"Content-Type": content_type} if content_type else {})}
        r = client.post(f"/v1/suggestions/{PAIR}/decision", data='{"decision": "approve"}', headers=headers)
        assert r.status_code == 415 and r.json["message"] == "Send JSON with Content-Type: application/json."
    assert matcher_state.get_pair(PAIR)["decisions"] == {}


def test_filters_by_partner_country_language_and_score(matcher_app, suggested, login):
    client = matcher_app.test_client()
    headers = login("anna")
    assert len(client.get("/v1/suggestions?country=RS&language=sr&min_score=0.5", headers=headers).json) == 1
    assert client.get("/v1/suggestions?country=AL", headers=headers).json == []
    assert client.get("/v1/suggestions?min_score=0.9", headers=headers).json == []
    assert client.get("/v1/suggestions?country=Serbia", headers=headers).status_code == 422


def test_a_retried_decision_answers_as_the_first_did_and_records_nothing_twice(
    matcher_app, suggested, login, matcher_state
):
    client = matcher_app.test_client()
    first = client.post(f"/v1/suggestions/{PAIR}/decision", json={"decision": "approve"}, headers=login("anna"))
    again = client.post(f"/v1/suggestions/{PAIR}/decision", json={"decision": "approve"}, headers=login("anna"))
    assert first.status_code == again.status_code == 200
    assert again.json["state"] == first.json["state"] == "pending"
    assert again.json["decisions"] == first.json["decisions"]
    client.post(f"/v1/suggestions/{PAIR}/decision", json={"decision": "approve"}, headers=login("marko"))
    late = client.post(f"/v1/suggestions/{PAIR}/decision", json={"decision": "approve"}, headers=login("anna"))
    assert late.status_code == 200 and late.json["state"] == "approved"  # the retry came after the other side
    approved = [e for e in matcher_state.outbox.head(100) if e.event_type == events.MATCH_APPROVED]
    assert len(approved) == 1


def test_deciding_otherwise_after_a_decision_is_refused_with_409(matcher_app, suggested, login, matcher_state):
    client = matcher_app.test_client()
    client.post(f"/v1/suggestions/{PAIR}/decision", json={"decision": "approve"}, headers=login("anna"))
    other = client.post(
        f"/v1/suggestions/{PAIR}/decision",
        json={"decision": "reject", "reason_code": "not_relevant"},
        headers=login("anna"),
    )
    assert other.status_code == 409
    assert matcher_state.get_pair(PAIR)["decisions"]["pl-silesia-ict"]["decision"] == "approve"
    client.post(
        f"/v1/suggestions/{PAIR}/decision",
        json={"decision": "reject", "reason_code": "different_markets"},
        headers=login("marko"),
    )
    same_words = client.post(
        f"/v1/suggestions/{PAIR}/decision",
        json={"decision": "reject", "reason_code": "not_relevant"},
        headers=login("marko"),
    )
    assert same_words.status_code == 409  # rejected already, but for another reason
    retried = client.post(
        f"/v1/suggestions/{PAIR}/decision",
        json={"decision": "reject", "reason_code": "different_markets"},
        headers=login("marko"),
    )
    assert retried.status_code == 200 and retried.json["state"] == "rejected"


def test_an_approval_can_be_withdrawn_until_the_other_cluster_decides(matcher_app, suggested, login, matcher_state):
    client = matcher_app.test_client()
    url = f"/v1/suggestions/{PAIR}/decision"
    assert client.delete(url, headers=login("anna")).status_code == 409  # nothing approved yet
    client.post(url, json={"decision": "approve"}, headers=login("anna"))
    withdrawn = client.delete(url, headers=login("anna"))
    assert withdrawn.status_code == 200 and withdrawn.json["state"] == "pending"
    assert matcher_state.get_pair(PAIR)["decisions"] == {}
    client.post(url, json={"decision": "approve"}, headers=login("anna"))
    client.post(url, json={"decision": "approve"}, headers=login("marko"))
    assert client.delete(url, headers=login("anna")).status_code == 409  # both approved: final
    assert matcher_state.get_pair(PAIR)["state"] == "approved"
    assert len([e for e in matcher_state.outbox.head(100) if e.event_type == events.MATCH_APPROVED]) == 1
    assert client.delete(url, headers=login("besa")).status_code == 404


def test_every_api_operation_documents_who_it_refuses(matcher_app):
    spec = matcher_app.test_client().get("/openapi.json").json
    operations = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        if path.startswith("/v1/")
        for method, op in ops.items()
        if method in ("get", "post", "delete", "patch", "put")
    ]
    assert len(operations) >= 5
    for path, method, op in operations:
        assert {"401", "403", "503"} <= set(op["responses"]), (method, path)
