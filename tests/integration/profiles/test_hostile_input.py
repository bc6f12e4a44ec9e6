"""Hostile bodies at the profiles API's edge, anonymous or not: JSON nested 10,000 deep, numbers of
5,000 digits, NaN and Infinity get a 400 naming the problem; a 5 MB body gets a 413 in JSON, also
under gunicorn with the whole body sent before the answer is read; normal requests still work."""

from __future__ import annotations

import json

import pytest
import redis

from tests.integration.edge import (
    FIVE_MB,
    HOSTILE_JSON,
    assert_refused_as_invalid_json,
    gunicorn_service,
    send_whole_body,
)

from .conftest import ADMIN, SERVICE, profile

pytestmark = pytest.mark.integration

ANONYMOUS_WRITES = ["/v1/organisations", "/v1/auth/login"]
PASSWORD = "coordinator password 1"


@pytest.mark.parametrize("path", ANONYMOUS_WRITES)
@pytest.mark.parametrize("case", HOSTILE_JSON)
def test_hostile_json_is_a_400_naming_the_problem(client, path, case):
    body, words = HOSTILE_JSON[case]
    r = client.post(path, data=body, content_type="application/json")
    assert_refused_as_invalid_json(r.status_code, r.json, words)


@pytest.mark.parametrize("case", ["arrays nested 10,000 deep", "a 5,000-digit integer", "NaN"])
def test_hostile_json_is_a_400_for_signed_in_callers_too(client, cluster, admin, case):
    cluster()
    registered = client.post("/v1/organisations", json=profile())
    org_id, token = registered.json["organisation"]["id"], registered.json["token"]
    body, words = HOSTILE_JSON[case]
    for path, method, headers in (
        (f"/v1/organisations/{org_id}", client.patch, {"Authorization": f"Bearer {token}"}),
        ("/v1/clusters", client.post, admin),
    ):
        r = method(path, data=body, content_type="application/json", headers=headers)
        assert_refused_as_invalid_json(r.status_code, r.json, words)


def test_nesting_and_numbers_within_the_limits_reach_the_field_checks(client, cluster):
    cluster()
    body = profile(name=int("9" * 100), extra=json.loads("[" * 30 + "1.5e300" + "]" * 30))
    r = client.post("/v1/organisations", json=body)
    assert r.status_code == 422
    assert set(r.json["errors"]["json"]) == {"name", "extra"}


def test_a_5_mb_body_is_a_413_in_json(client, cluster):
    cluster()
    r = client.post("/v1/organisations", json=profile(capabilities="x" * FIVE_MB))
    assert r.status_code == 413
    assert r.json == {
        "code": 413,
        "status": "Request Entity Too Large",
        "message": "Request body larger than 200000 bytes.",
    }


def test_normal_registration_and_login_still_work(client, cluster, admin):
    cluster()
    assert client.post("/v1/organisations", json=profile()).status_code == 201
    assert (
        client.post(
            "/v1/clusters/rs-vojvodina-ict/coordinators",
            headers=admin,
            json={
                "username": "marko",
                "password": PASSWORD,
                "name": "Marko",
                "email": "marko@example.org",
                "language": "sr",
            },
        ).status_code
        == 201
    )
    r = client.post("/v1/auth/login", json={"username": "marko", "password": PASSWORD})
    assert r.status_code == 200 and r.json["token"]


# ---- under gunicorn, over a real socket --------------------------------------------------------


@pytest.fixture(scope="module")
def served(redis_server, tmp_path_factory):
    """The profiles service as `partnermatch up` runs it, on its own Redis database."""
    url = f"redis://127.0.0.1:{redis_server.port}/1"
    redis.Redis.from_url(url).flushdb()
    log = tmp_path_factory.mktemp("profiles-gunicorn") / "profiles.log"
    env = {"PROFILES_REDIS_URL": url, "PARTNERMATCH_ADMIN_TOKEN": ADMIN, "PARTNERMATCH_SERVICE_TOKEN": SERVICE}
    with gunicorn_service("profiles", env, log_file=log) as base:
        yield base


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ANONYMOUS_WRITES)
def test_a_5_mb_body_sent_whole_is_answered_413_not_reset(served, path, chunked):
    body = json.dumps(profile(capabilities="x" * FIVE_MB)).encode()
    answer = send_whole_body(served, path, body, chunked=chunked)
    assert answer.status == 413
    assert answer.json["message"] == "Request body larger than 524288 bytes."


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_hostile_json_over_a_real_socket_is_a_400(served, chunked):
    body, words = HOSTILE_JSON["arrays nested 10,000 deep"]
    answer = send_whole_body(served, "/v1/auth/login", body.encode(), chunked=chunked)
    assert_refused_as_invalid_json(answer.status, answer.json, words)


def test_a_normal_request_still_works_over_the_same_server(served):
    admin = {"Authorization": f"Bearer {ADMIN}"}
    cluster = {"id": "rs-gunicorn-ict", "name": "Gunicorn ICT", "country": "RS"}
    assert send_whole_body(served, "/v1/clusters", json.dumps(cluster).encode(), headers=admin).status == 201
    for chunked in (False, True):
        body = json.dumps(profile("rs-gunicorn-ict"), ensure_ascii=False).encode()
        answer = send_whole_body(served, "/v1/organisations", body, chunked=chunked)
        assert answer.status == 201, answer.body
        assert answer.json["organisation"]["name"] == "Кластер ИКТ Нови Сад"
