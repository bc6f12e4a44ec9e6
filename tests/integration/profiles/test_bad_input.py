"""Bad input gets a 4xx with per-field errors, never a 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import profile

pytestmark = pytest.mark.integration


def _post(client, body, **kw):
    return client.post(
        "/v1/organisations",
        data=body if isinstance(body, bytes) else json.dumps(body),
        content_type=kw.get("content_type", "application/json"),
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": 42}, "name"),
        ({"capabilities": ["a list"]}, "capabilities"),
        ({"sectors": "ict"}, "sectors"),
        ({"language": "xx"}, "language"),
        ({"language": "Serbian"}, "language"),
        ({"country": "Serbia"}, "country"),
        ({"capabilities": "   \n  "}, "capabilities"),
        ({"goals": ""}, "goals"),
        ({"website": "javascript:alert(1)"}, "website"),
        ({"sectors": ["rocket-science"]}, "sectors"),
        ({"offers": ["rocket-science"]}, "offers"),
        ({"offers": "ict"}, "offers"),
        ({"seeks": ["ict", "coop.rnd"]}, "seeks"),
        ({"seeks": ["ict"] * 3 + [f"x{i}" for i in range(11)]}, "seeks"),
        ({"seeks_countries": ["Serbia"]}, "seeks_countries"),
        ({"seeks_countries": [None]}, "seeks_countries"),
        ({"unexpected": "field"}, "unexpected"),
        ({"cluster_id": "no-such-cluster"}, "cluster_id"),
        ({"name": "Line one\nBcc: victim@example.org"}, "name"),
        ({"contacts": [{"name": "A", "email": "not-an-email", "language": "pl", "consent": True}]}, "contacts"),
        ({"contacts": [{"name": "A", "email": "a@example.org", "language": "klingon", "consent": True}]}, "contacts"),
        ({"contacts": [{"name": "A", "email": "a@example.org", "language": "pl"}]}, "contacts"),
    ],
)
def test_each_bad_field_is_named_in_a_422(client, cluster, change, field):
    cluster()
    r = _post(client, profile(**change))
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]["json"]


def test_an_unknown_need_is_a_422_naming_the_field_and_the_value(client, cluster):
    cluster()
    r = _post(client, profile(offers=["ict", "rocket-science"], seeks_countries=["PL", "Atlantis"]))
    assert r.status_code == 422
    errors = r.json["errors"]["json"]
    assert "'rocket-science'" in errors["offers"]["1"][0] and "'Atlantis'" in errors["seeks_countries"]["1"][0]


def test_eleven_different_needs_are_a_422_but_repeats_count_once(client, cluster):
    cluster()
    vocab = client.get("/v1/vocabulary").json
    ids = [a["id"] for a in vocab["activities"]]
    assert _post(client, profile(seeks=ids[:10] + ids[:5])).status_code == 201
    r = _post(client, profile(seeks=ids[:11]))
    assert r.status_code == 422 and "seeks" in r.json["errors"]["json"]


@pytest.mark.parametrize("missing", ["name", "cluster_id", "country", "capabilities", "goals"])
def test_a_missing_required_field_is_named(client, cluster, missing):
    cluster()
    body = profile()
    del body[missing]
    r = _post(client, body)
    assert r.status_code == 422 and missing in r.json["errors"]["json"]


def test_broken_utf8_is_a_400(client, cluster):
    cluster()
    body = json.dumps(profile()).encode().replace(b"Tra", b"Tr\xc3\x28")
    r = _post(client, body)
    assert r.status_code == 400 and "UTF-8" in r.json["message"]


def test_unpaired_surrogate_is_rejected_not_a_500(client, cluster):
    cluster()
    body = json.dumps(profile(), ensure_ascii=False).replace("Tražimo", "\\ud800Tražimo")
    assert "\\ud800" in body
    r = _post(client, body.encode())
    assert r.status_code == 422


def test_invalid_json_is_a_400(client):
    r = _post(client, b'{"name": ')
    assert r.status_code == 400 and r.json["message"] == "Invalid JSON body."


def test_every_refusal_says_in_one_line_what_is_wrong_as_well_as_naming_the_fields(client, cluster):
    """A client shows `message` whatever refused the request: the schema, a text too long, an
    unknown cluster, or a body that is not JSON; the fields are in `errors`."""
    cluster()
    refusals = [
        _post(client, profile(name=42)),  # the schema
        _post(client, profile(goals="a" * 20_001)),  # the text's size, checked after the schema
        _post(client, profile(cluster_id="xx-no-such")),  # the cluster, checked last
    ]
    for r in refusals:
        assert r.status_code == 422
        assert r.json["message"] == "Validation failed." and r.json["errors"]["json"], r.json
    org = _post(client, profile()).json
    patch = client.patch(
        f"/v1/organisations/{org['organisation']['id']}",
        json={"website": "javascript:alert(1)"},
        headers={"Authorization": f"Bearer {org['token']}"},
    )
    assert patch.status_code == 422 and patch.json["message"] == "Validation failed."
    assert "website" in patch.json["errors"]["json"]
    # an unknown path and a method a path does not take say so in a line too
    for r, status in ((client.get("/v1/nothing"), 404), (client.put("/v1/organisations", json={}), 405)):
        assert r.status_code == status and r.json["code"] == status and r.json["message"], r.json


def test_non_json_body_is_a_415(client):
    r = client.post("/v1/organisations", data="name=x", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415


def test_an_oversized_body_is_a_413(client, cluster):
    cluster()
    r = _post(client, profile(capabilities="ж" * 150_000))
    assert r.status_code == 413


def test_a_too_long_text_under_the_body_limit_is_a_422_naming_the_field(client, cluster):
    cluster()
    r = _post(client, profile(goals="a" * 20_001))
    assert r.status_code == 422 and "goals" in r.json["errors"]["json"]


def test_another_organisations_unknown_id_is_404_for_reads(client):
    assert client.get("/v1/organisations/org_doesnotexist").status_code == 404


def test_a_made_up_token_is_a_401(client):
    r = client.get("/v1/auth/whoami", headers={"Authorization": "Bearer pmo_madeup"})
    assert r.status_code == 401


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    overrides=st.dictionaries(
        st.sampled_from(
            [
                "name",
                "cluster_id",
                "country",
                "language",
                "capabilities",
                "goals",
                "sectors",
                "offers",
                "seeks",
                "seeks_countries",
                "website",
                "contacts",
                "extra",
            ]
        ),
        json_values,
        max_size=4,
    )
)
def test_any_json_body_gets_a_2xx_or_4xx_never_a_5xx(client, cluster_once, overrides):
    r = _post(client, profile(**overrides))
    assert r.status_code < 500, r.get_data(as_text=True)
    if r.status_code == 201:
        assert r.json["organisation"]["name"] == profile(**overrides)["name"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_any_bytes_get_a_4xx_never_a_5xx(client, raw):
    r = _post(client, raw)
    assert 400 <= r.status_code < 500


@pytest.fixture
def cluster_once(client, admin):
    client.post("/v1/clusters", json={"id": "rs-vojvodina-ict", "name": "C", "country": "RS"}, headers=admin)
