"""The matcher's partnerships API with a real redis-server and the real profiles service checking
tokens: only the service token reads an organisation's partnerships, which carry the state as
the organisation sees it and never what the coordinators wrote."""

from __future__ import annotations

import dataclasses

import pytest

from services.matcher.adapters import redis_state
from services.matcher.adapters.redis_state import PairWrite, ProfileChange
from tests.integration.matcher.conftest import SERVICE

pytestmark = pytest.mark.integration

PL, RS, AL = "pl-silesia-ict", "rs-vojvodina-ict", "al-tirana-creative"
SERVICE_AUTH = {"Authorization": f"Bearer {SERVICE}"}
PATH = "/v1/organisations/org_pl/partnerships"


def _profile(state, org, cluster, country, lang, revision=1):
    state.apply(
        ProfileChange(
            org,
            revision,
            {
                "org_id": org,
                "name": org.upper(),
                "cluster_id": cluster,
                "country": country,
                "language": lang,
                "capabilities": "—",
                "goals": "—",
                "sectors": [],
                "website": None,
            },
        )
    )


def _suggest(state, org_a, org_b, cluster_a, cluster_b, score, revision):
    state.apply(
        ProfileChange(
            org_a,
            revision,
            state.get_profile(org_a),
            upserts=[
                PairWrite(
                    f"{org_a}~{org_b}",
                    org_a,
                    org_b,
                    cluster_a,
                    cluster_b,
                    score,
                    [
                        {
                            "concept": "ict.software",
                            "kind": "activity",
                            "direction": "a_offers_b_seeks",
                            "weight": 0.4,
                            "terms_a": ["oprogramowanie"],
                            "terms_b": ["softver"],
                        }
                    ],
                )
            ],
        )
    )


@pytest.fixture
def suggested(matcher_state):
    """org_pl with a pair towards org_rs (0.62) and one towards org_al (0.41); org_rs~org_zz
    involves neither."""
    for org, cluster, country, lang in (
        ("org_pl", PL, "PL", "pl"),
        ("org_rs", RS, "RS", "sr"),
        ("org_al", AL, "AL", "sq"),
        ("org_zz", AL, "AL", "sq"),
    ):
        _profile(matcher_state, org, cluster, country, lang)
    _suggest(matcher_state, "org_pl", "org_rs", PL, RS, 0.62, 2)
    _suggest(matcher_state, "org_al", "org_pl", AL, PL, 0.41, 2)
    _suggest(matcher_state, "org_rs", "org_zz", RS, AL, 0.9, 2)


def _get(app, path=PATH, headers=SERVICE_AUTH):
    return app.test_client().get(path, headers=headers)


def test_an_anonymous_caller_gets_a_401(matcher_app, suggested):
    assert _get(matcher_app, headers={}).status_code == 401


def test_a_made_up_token_gets_a_401(matcher_app, suggested):
    assert _get(matcher_app, headers={"Authorization": "Bearer pms_forged"}).status_code == 401


def test_a_coordinator_gets_a_403(matcher_app, suggested, login):
    r = _get(matcher_app, headers=login("anna"))
    assert r.status_code == 403 and r.json["message"]


def test_the_organisation_itself_gets_a_403(matcher_app, profiles, suggested):
    reg = profiles.client.post(
        "/v1/organisations",
        json={
            "name": "Firma",
            "cluster_id": PL,
            "country": "PL",
            "language": "pl",
            "capabilities": "Oprogramowanie",
            "goals": "Partnerzy",
        },
    )
    org_id = reg.json["organisation"]["id"]
    r = _get(
        matcher_app,
        f"/v1/organisations/{org_id}/partnerships",
        headers={"Authorization": f"Bearer {reg.json['token']}"},
    )
    assert r.status_code == 403


def test_the_service_token_is_checked_by_the_matcher_itself_even_with_profiles_down(matcher_app, profiles, suggested):
    profiles.stop()
    r = _get(matcher_app)
    assert r.status_code == 200 and len(r.json) == 2


def test_a_service_token_only_profiles_knows_is_a_503_not_a_pass(matcher_app, suggested):
    matcher_app.config["PM_SETTINGS"] = dataclasses.replace(
        matcher_app.config["PM_SETTINGS"], service_token="another-token"
    )
    assert _get(matcher_app).status_code == 503


def test_an_unknown_language_is_a_422(matcher_app, suggested):
    assert _get(matcher_app, PATH + "?lang=xx").status_code == 422


def test_the_service_reads_the_pairs_of_the_organisation_waiting_ones_best_first(matcher_app, suggested):
    r = _get(matcher_app, PATH + "?lang=pl")
    assert r.status_code == 200
    assert [p["pair_id"] for p in r.json] == ["org_pl~org_rs", "org_al~org_pl"]
    first = r.json[0]
    assert first["state"] == "waiting" and first["decided_ms"] is None and first["score"] == 0.62
    assert first["partner"] == {"org_id": "org_rs", "name": "ORG_RS", "cluster_id": RS, "country": "RS"}
    assert first["reason"] and "ORG_RS" in first["reason"]  # the need met, as a sentence naming them
    assert r.json[1]["partner"]["org_id"] == "org_al"


def test_the_reason_is_rendered_in_the_language_asked_for(matcher_app, suggested):
    polish = _get(matcher_app, PATH + "?lang=pl").json[0]["reason"]
    english = _get(matcher_app, PATH + "?lang=en").json[0]["reason"]
    assert polish != english


def test_an_organisation_the_matcher_does_not_know_has_no_partnerships(matcher_app, suggested):
    r = _get(matcher_app, "/v1/organisations/org_unknown/partnerships")
    assert r.status_code == 200 and r.json == []


def test_one_approval_still_waits_both_approve_and_it_is_approved(matcher_app, suggested, login):
    client = matcher_app.test_client()
    decide = "/v1/suggestions/org_pl~org_rs/decision"
    assert client.post(decide, json={"decision": "approve"}, headers=login("anna")).status_code == 200
    assert _get(matcher_app).json[0]["state"] == "waiting"
    assert client.post(decide, json={"decision": "approve"}, headers=login("marko")).status_code == 200
    items = {p["pair_id"]: p for p in _get(matcher_app).json}
    approved = items["org_pl~org_rs"]
    assert approved["state"] == "approved" and approved["decided_ms"] >= approved["suggested_ms"]
    assert items["org_al~org_pl"]["state"] == "waiting"
    # the partner's side sees the same partnership
    rs = {p["pair_id"]: p for p in _get(matcher_app, "/v1/organisations/org_rs/partnerships").json}
    assert rs["org_pl~org_rs"]["state"] == "approved" and rs["org_pl~org_rs"]["partner"]["org_id"] == "org_pl"


def test_a_rejection_shows_as_rejected_without_what_the_coordinator_wrote(matcher_app, suggested, login):
    r = matcher_app.test_client().post(
        "/v1/suggestions/org_pl~org_rs/decision",
        headers=login("marko"),
        json={"decision": "reject", "reason_code": "no_capacity", "reason_text": "Secret note: they owe us money"},
    )
    assert r.status_code == 200 and r.json["state"] == "rejected"
    body = _get(matcher_app)
    rejected = next(p for p in body.json if p["pair_id"] == "org_pl~org_rs")
    assert rejected["state"] == "rejected" and rejected["decided_ms"]
    text = body.get_data(as_text=True)
    for internal in ("Secret note", "no_capacity", "marko", "reason_code", "decisions"):
        assert internal not in text


def test_a_withdrawn_pair_disappears(matcher_app, matcher_state, suggested):
    matcher_state.apply(ProfileChange("org_al", 3, None, withdrawals=[("org_al~org_pl", "deleted")]))
    assert [p["pair_id"] for p in _get(matcher_app).json] == ["org_pl~org_rs"]


def test_a_partner_that_deleted_its_profile_keeps_the_decided_pair_without_a_name(
    matcher_app, matcher_state, suggested
):
    matcher_state.decide("org_pl~org_rs", PL, "anna", "approve")
    matcher_state.decide("org_pl~org_rs", RS, "marko", "approve")
    matcher_state.apply(ProfileChange("org_rs", 3, None))
    item = next(p for p in _get(matcher_app).json if p["pair_id"] == "org_pl~org_rs")
    assert item["state"] == "approved"
    assert item["partner"] == {"org_id": "org_rs", "name": None, "cluster_id": RS, "country": None}


def test_pairs_decided_before_the_per_organisation_history_existed_are_found(
    matcher_app, matcher_state, redis_client, suggested
):
    matcher_state.decide("org_pl~org_rs", PL, "anna", "approve")
    matcher_state.decide("org_pl~org_rs", RS, "marko", "approve")
    matcher_state.decide("org_al~org_pl", AL, "besa", "reject", "not_relevant")
    # as a matcher before this index left its Redis
    redis_client.delete(
        redis_state.HISTORY_BY_ORG_BUILT,
        *[redis_state.HISTORY_BY_ORG + o for o in ("org_pl", "org_rs", "org_al", "org_zz")],
    )
    states = {p["pair_id"]: p["state"] for p in _get(matcher_app).json}
    assert states == {"org_pl~org_rs": "approved", "org_al~org_pl": "rejected"}
    assert redis_client.exists(redis_state.HISTORY_BY_ORG_BUILT)
    assert [p["state"] for p in _get(matcher_app, "/v1/organisations/org_al/partnerships").json] == ["rejected"]
