"""The write routes' valid requests are answered in front of Flask (entrypoints/write_routes.py):
the same status, headers and body as the views give, and everything refused still answered by
the views."""

from __future__ import annotations

import json

import pytest

from tests.integration.profiles.conftest import profile

# A JSON type other than application/json: valid for the views, never taken by the fast path.
VIEWS_ONLY = "application/merge-patch+json"


@pytest.fixture
def served(client):
    """Which requests to the organisations' routes reached the Flask app behind the write routes."""
    write_routes = client.application.wsgi_app
    inner = write_routes.app_wsgi
    reached: list[str] = []

    def counting(environ, start_response):
        if environ["PATH_INFO"].startswith("/v1/organisations"):
            reached.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return inner(environ, start_response)

    write_routes.app_wsgi = counting
    return reached


def _shape(response):
    headers = [(k, v) for k, v in response.headers.items() if k != "Content-Length"]
    return response.status, headers


def _without_volatile(value):
    volatile = {"id", "token", "created_at", "updated_at", "consent_at", "share_contact_at"}
    if isinstance(value, dict):
        return {k: ("…" if k in volatile else _without_volatile(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


def test_a_registration_answered_in_front_equals_the_views(client, cluster, served):
    cluster()
    body = json.dumps(profile())
    fast = client.post("/v1/organisations", data=body, content_type="application/json")
    assert served == []
    slow = client.post("/v1/organisations", data=body, content_type=VIEWS_ONLY)
    assert served == ["POST /v1/organisations"]
    assert fast.status_code == 201
    assert _shape(fast) == _shape(slow)
    assert _without_volatile(fast.json) == _without_volatile(slow.json)
    assert list(fast.json) == list(slow.json)  # the same keys in the same order
    assert fast.json["organisation"]["revision"] == 1
    # the bytes Flask's provider writes for it (this app's: UTF-8, not escaped)
    assert client.application.json.ensure_ascii is False
    assert "ž" in fast.get_data(as_text=True)
    assert fast.get_data() == (client.application.json.dumps(fast.json, separators=(",", ":")) + "\n").encode()


def test_an_edit_answered_in_front_equals_the_views(client, cluster, served):
    cluster()
    made = client.post("/v1/organisations", json=profile()).json
    org_id, auth = made["organisation"]["id"], {"Authorization": f"Bearer {made['token']}"}
    change = {"goals": "Tražimo partnere iz logistike.", "name": "Klaster IKT"}
    fast = client.patch(f"/v1/organisations/{org_id}", json=change, headers=auth)
    assert served == []
    slow = client.patch(f"/v1/organisations/{org_id}", data=json.dumps(change), content_type=VIEWS_ONLY, headers=auth)
    assert served == [f"PATCH /v1/organisations/{org_id}"]
    assert (fast.status_code, fast.json["revision"], slow.json["revision"]) == (200, 2, 3)
    assert _shape(fast) == _shape(slow)
    assert fast.get_data() == slow.get_data().replace(b'"revision":3', b'"revision":2').replace(
        slow.json["updated_at"].encode(), fast.json["updated_at"].encode()
    )


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"goals": "x", "unknown": 1}, "own", 422),  # a field error
        ({}, "own", 422),  # nothing to change
        ({"goals": "x"}, None, 401),  # no token
        ({"goals": "x"}, "other", 403),  # another organisation's token
        ({"cluster_id": "pl-silesia-ict"}, "own", 403),  # only an admin moves an organisation
    ],
)
def test_refused_edits_are_answered_by_the_views(client, cluster, served, body, headers, status):
    cluster()
    mine = client.post("/v1/organisations", json=profile()).json
    other = client.post("/v1/organisations", json=profile(name="Another")).json
    tokens = {"own": mine["token"], "other": other["token"]}
    auth = {"Authorization": f"Bearer {tokens[headers]}"} if headers else {}
    answer = client.patch(f"/v1/organisations/{mine['organisation']['id']}", json=body, headers=auth)
    assert answer.status_code == status, answer.json
    assert served == [f"PATCH /v1/organisations/{mine['organisation']['id']}"]
    assert answer.json["code"] == status


def test_refused_registrations_are_answered_by_the_views(client, cluster, served):
    cluster()
    unknown_cluster = client.post("/v1/organisations", json=profile(cluster_id="no-such-cluster"))
    assert unknown_cluster.status_code == 422
    assert unknown_cluster.json["errors"] == {"json": {"cluster_id": ["No such cluster."]}}
    not_json = client.post("/v1/organisations", data="{", content_type="application/json")
    assert not_json.status_code == 400
    assert served == ["POST /v1/organisations", "POST /v1/organisations"]


def _counted(client):
    """partnermatch_http_requests_total of the two write routes' successes, as GET /metrics says."""
    counts = {}
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        for method, route, status in (
            ("POST", "/v1/organisations", "201"),
            ("PATCH", "/v1/organisations/<org_id>", "200"),
        ):
            if line.startswith(
                f'partnermatch_http_requests_total{{method="{method}",route="{route}",status="{status}"}} '
            ):
                counts[method] = float(line.rpartition(" ")[2])
    return counts


def test_writes_answered_in_front_are_counted_under_their_routes(client, cluster, served):
    cluster()
    before = _counted(client)
    made = client.post("/v1/organisations", json=profile()).json
    auth = {"Authorization": f"Bearer {made['token']}"}
    client.patch(f"/v1/organisations/{made['organisation']['id']}", json={"name": "Klaster"}, headers=auth)
    assert served == []
    after = _counted(client)
    assert after["POST"] == before.get("POST", 0) + 1
    assert after["PATCH"] == before.get("PATCH", 0) + 1


def test_the_hooks_the_write_routes_stand_in_for_are_the_ones_they_were_built_against(client):
    """The write routes answer in front of Flask, so a request hook added to the app (a rate limit
    on the API, an audit log...) would not run for their writes. This lists the hooks they were
    checked against; a new one fails here until someone decides whether write_routes.py must do it
    too (or refuse, so the views answer)."""
    app = client.application

    def name(f):
        f = getattr(f, "func", f)  # a functools.partial: the function it calls
        return f"{f.__module__}.{f.__qualname__}"

    def named(hooks):
        return {scope or "app": sorted(name(f) for f in funcs) for scope, funcs in hooks.items() if funcs}

    assert {
        "before": named(app.before_request_funcs),
        "after": named(app.after_request_funcs),
        "teardown": named(app.teardown_request_funcs),
        "url_value": named(app.url_value_preprocessors),
    } == KNOWN_HOOKS


# What each hook does for the write routes' requests answered in front (write_routes.py):
KNOWN_HOOKS = {
    "before": {
        "app": [
            "flask_limiter._extension.Limiter._check_request_limit",  # no limit on these routes (pages, logins)
            "flask_wtf.csrf.CSRFProtect.init_app.<locals>.csrf_protect",  # checks only where the pages ask
            "partnermatch.httpedge._read_body",  # the body read within the app's limits, or refused
            "partnermatch.httpedge.json_bodies_only.<locals>.check",  # JSON in UTF-8, or refused
            "partnermatch.metrics._start_timer",  # counted and timed under the route's template
        ],
        "pages": ["services.profiles.entrypoints.pages._before"],  # the pages only
    },
    "after": {
        "app": [
            "flask_limiter._extension.Limiter.__inject_headers",  # headers of limited routes only
            "partnermatch.metrics._record",
            "services.profiles.entrypoints.app._security_headers",  # the same headers
        ],
        "pages": ["services.profiles.entrypoints.pages._after"],
    },
    "teardown": {"app": ["flask_limiter._extension.Limiter.__release_context"]},
    "url_value": {},
}


def test_an_organisation_sending_back_its_own_cluster_edits_and_one_naming_another_is_told_who_moves_it(
    client, cluster
):
    """A client that sends back what it read (its cluster among the fields) edits as if it had not;
    naming another cluster is refused with what the refusal is about."""
    cluster()
    mine = client.post("/v1/organisations", json=profile()).json
    auth = {"Authorization": f"Bearer {mine['token']}"}
    path = f"/v1/organisations/{mine['organisation']['id']}"
    same = client.patch(
        path, json={"cluster_id": mine["organisation"]["cluster_id"], "goals": "Nove ciljeve."}, headers=auth
    )
    assert same.status_code == 200 and same.json["goals"] == "Nove ciljeve."
    moved = client.patch(path, json={"cluster_id": "pl-silesia-ict"}, headers=auth)
    assert moved.status_code == 403
    assert moved.json["message"] == "Only the administrator moves an organisation to another cluster."
    assert client.get(path, headers=auth).json["cluster_id"] == mine["organisation"]["cluster_id"]
