"""Hostile bodies at the matcher's edge (the review API, anonymous or signed in, and the page's form
posts): JSON nested 10,000 deep, numbers of 5,000 digits, NaN and Infinity get a 400 naming the
problem; a 5 MB body gets a 413 in JSON, also under gunicorn with the whole body sent before the
answer is read; normal decisions and logins still work."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.parse
import urllib.request

import pytest
import redis

from services.matcher.adapters.redis_state import PairWrite, ProfileChange, RedisMatcherState
from tests.integration.edge import (
    FIVE_MB,
    HOSTILE_JSON,
    assert_refused_as_invalid_json,
    gunicorn_service,
    send_whole_body,
)

from .conftest import ADMIN, CLUSTERS, PASSWORD

pytestmark = pytest.mark.integration

PAIR = "org_pl~org_rs"
DECISION = f"/v1/suggestions/{PAIR}/decision"
FORM_POSTS = ["/login", f"/pairs/{PAIR}/decide", "/logout"]


def seed_pair(state: RedisMatcherState) -> None:
    for org, cluster, country, lang in (
        ("org_pl", "pl-silesia-ict", "PL", "pl"),
        ("org_rs", "rs-vojvodina-ict", "RS", "sr"),
    ):
        state.apply(
            ProfileChange(
                org,
                1,
                {
                    "org_id": org,
                    "name": org.upper(),
                    "cluster_id": cluster,
                    "country": country,
                    "language": lang,
                    "capabilities": "Softver.",
                    "goals": "—",
                    "sectors": [],
                    "website": None,
                },
            )
        )
    state.apply(
        ProfileChange(
            "org_pl",
            2,
            state.get_profile("org_pl"),
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


@pytest.fixture
def suggested(matcher_state):
    seed_pair(matcher_state)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "coordinator"])
@pytest.mark.parametrize("case", HOSTILE_JSON)
def test_hostile_json_to_the_decision_is_a_400_naming_the_problem(matcher_app, suggested, login, signed_in, case):
    body, words = HOSTILE_JSON[case]
    headers = login("anna") if signed_in else {}
    r = matcher_app.test_client().post(DECISION, data=body, content_type="application/json", headers=headers)
    assert_refused_as_invalid_json(r.status_code, r.json, words)


@pytest.mark.parametrize("path", FORM_POSTS)
@pytest.mark.parametrize("case", ["arrays nested 10,000 deep", "a 5,000-digit integer", "Infinity"])
def test_hostile_json_to_the_pages_form_posts_is_a_400(matcher_app, path, case):
    body, words = HOSTILE_JSON[case]
    r = matcher_app.test_client().post(path, data=body, content_type="application/json")
    assert_refused_as_invalid_json(r.status_code, r.json, words)


@pytest.mark.parametrize("path", [DECISION, *FORM_POSTS])
def test_a_5_mb_body_is_a_413_in_json(matcher_app, path):
    r = matcher_app.test_client().post(path, data={"reason_text": "x" * FIVE_MB})
    assert r.status_code == 413
    assert r.json == {
        "code": 413,
        "status": "Request Entity Too Large",
        "message": "Request body larger than 65536 bytes.",
    }


def test_a_normal_decision_still_works(matcher_app, suggested, login, matcher_state):
    r = matcher_app.test_client().post(DECISION, json={"decision": "approve"}, headers=login("anna"))
    assert r.status_code == 200, r.json
    assert matcher_state.get_pair(PAIR)["decisions"]["pl-silesia-ict"]["decision"] == "approve"


# ---- under gunicorn, over a real socket --------------------------------------------------------


@pytest.fixture(scope="module")
def served(redis_server, tmp_path_factory):
    """Profiles and the review app as `partnermatch up` runs them, each on its own Redis database,
    with a coordinator per cluster and one pending pair."""
    profiles_db, matcher_db = (f"redis://127.0.0.1:{redis_server.port}/{n}" for n in (2, 3))
    redis.Redis.from_url(profiles_db).flushdb()
    matcher_redis = redis.Redis.from_url(matcher_db)
    matcher_redis.flushdb()
    seed_pair(RedisMatcherState(matcher_redis))
    logs = tmp_path_factory.mktemp("matcher-gunicorn")
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with gunicorn_service(
        "profiles",
        {
            "PROFILES_REDIS_URL": profiles_db,
            "PARTNERMATCH_ADMIN_TOKEN": ADMIN,
            "PARTNERMATCH_SERVICE_TOKEN": "matcher-edge-service-token",
        },
        log_file=logs / "profiles.log",
    ) as profiles:
        for cluster_id, (country, coordinator) in CLUSTERS.items():
            cluster = {"id": cluster_id, "name": cluster_id, "country": country}
            assert send_whole_body(profiles, "/v1/clusters", json.dumps(cluster).encode(), headers=admin).status == 201
            person = {
                "username": coordinator,
                "password": PASSWORD,
                "name": coordinator.title(),
                "email": f"{coordinator}@example.org",
                "language": "en",
            }
            assert (
                send_whole_body(
                    profiles, f"/v1/clusters/{cluster_id}/coordinators", json.dumps(person).encode(), headers=admin
                ).status
                == 201
            )
        with gunicorn_service(
            "review",
            {
                "MATCHER_REDIS_URL": matcher_db,
                "MATCHER_PROFILES_URL": profiles,
                "MATCHER_SECRET_KEY": "matcher-edge-secret",
            },
            log_file=logs / "review.log",
        ) as review:
            yield {"profiles": profiles, "review": review, "state": RedisMatcherState(matcher_redis)}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", [DECISION, *FORM_POSTS])
def test_a_5_mb_body_sent_whole_is_answered_413_not_reset(served, path, chunked):
    form = urllib.parse.urlencode({"decision": "reject", "reason_text": "x" * FIVE_MB}).encode()
    answer = send_whole_body(
        served["review"], path, form, chunked=chunked, content_type="application/x-www-form-urlencoded"
    )
    assert answer.status == 413
    assert answer.json["message"] == "Request body larger than 65536 bytes."


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_hostile_json_over_a_real_socket_is_a_400(served, chunked):
    body, words = HOSTILE_JSON["a 5,000-digit integer"]
    answer = send_whole_body(served["review"], DECISION, body.encode(), chunked=chunked)
    assert_refused_as_invalid_json(answer.status, answer.json, words)


def test_a_coordinator_still_logs_in_on_the_page_and_decides_over_the_api(served):
    review = served["review"]
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(f"{review}/login", timeout=30) as page:
        csrf = page.read().decode().split('name="csrf" value="')[1].split('"')[0]
    form = urllib.parse.urlencode({"username": "anna", "password": PASSWORD, "csrf": csrf}).encode()
    with browser.open(f"{review}/login", data=form, timeout=30) as queue:
        assert queue.status == 200 and queue.url.endswith("/queue")
        assert "ORG_RS" in queue.read().decode()

    credentials = json.dumps({"username": "marko", "password": PASSWORD}).encode()
    token = send_whole_body(served["profiles"], "/v1/auth/login", credentials).json["token"]
    answer = send_whole_body(
        review,
        DECISION,
        json.dumps({"decision": "approve"}).encode(),
        chunked=True,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status == 200, answer.body
    assert served["state"].get_pair(PAIR)["decisions"]["rs-vojvodina-ict"]["decision"] == "approve"
