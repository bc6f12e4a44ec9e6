"""The shared HTTP edge: JSON parsed with limits on nesting and numbers, bodies read whole or
answered with a 413 after being read and thrown away."""

from __future__ import annotations

import io
import json
import math

import pytest
import redis
from flask import Flask, jsonify, request
from hypothesis import given
from hypothesis import strategies as st

from partnermatch import httpedge
from partnermatch.httpedge import JsonTooComplex, harden, loads, nesting_depth


def nested_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


# ---- loads ------------------------------------------------------------------------------------


def test_ordinary_json_reads_as_json_loads_reads_it():
    text = json.dumps(
        {
            "name": "Кластер ИКТ «Нови Сад»",
            "n": [1, -2, 3.5, 1e300, 2**300],
            "ok": True,
            "none": None,
            "text": 'brackets [{ and "quotes" in a string',
        },
        ensure_ascii=False,
    )
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
        max_leaves=30,
    )
)
def test_any_json_within_the_limits_reads_as_json_loads_reads_it(value):
    text = json.dumps(value)
    assert loads(text) == json.loads(text)


def test_thirty_two_levels_are_read_thirty_three_are_refused():
    assert loads(nested_arrays(32)) == json.loads(nested_arrays(32))
    assert loads(nested_objects(32)) == json.loads(nested_objects(32))
    for text in (nested_arrays(33), nested_objects(33)):
        with pytest.raises(JsonTooComplex, match="nested deeper than 32 levels"):
            loads(text)


@pytest.mark.parametrize(
    "text", [nested_arrays(10_000), nested_objects(10_000), "[" * 100_000, '{"a": ' + nested_arrays(5_000) + "}"]
)
def test_ten_thousand_levels_are_refused_without_a_recursion_error(text):
    with pytest.raises(JsonTooComplex, match="nested deeper"):
        loads(text)


def test_brackets_inside_strings_do_not_count():
    text = json.dumps(["[" * 1000, "{" * 1000, '\\"[[[', "]]]"])
    assert nesting_depth(text) == 1
    assert loads(text) == json.loads(text)


def test_the_depth_limit_can_be_changed():
    assert loads(nested_arrays(3), max_depth=3) == [[[]]]
    with pytest.raises(JsonTooComplex, match="nested deeper than 2 levels"):
        loads(nested_arrays(3), max_depth=2)


def test_a_recursion_error_becomes_the_same_refusal(monkeypatch):
    monkeypatch.setattr(httpedge, "nesting_depth", lambda text: 0)
    with pytest.raises(JsonTooComplex, match="nested deeper"):
        loads(nested_arrays(100_000))


@pytest.mark.parametrize(
    "literal",
    ["9" * 101, "-" + "9" * 101, "9" * 5_000, "0." + "1" * 100, "1" * 60 + "e" + "1" * 41, "1" * 5_000 + ".5"],
)
def test_a_number_with_more_than_a_hundred_digits_is_refused(literal):
    with pytest.raises(JsonTooComplex, match="more than 100 digits"):
        loads(f'{{"n": {literal}}}')


def test_a_hundred_digits_are_read():
    assert loads("9" * 100) == int("9" * 100)
    assert loads("-0." + "1" * 98) == float("-0." + "1" * 98)


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "9" * 90 + "e300", "1.5E+400"])
def test_a_number_beyond_a_floats_range_is_refused(literal):
    with pytest.raises(JsonTooComplex, match="out of range"):
        loads(f"[{literal}]")


def test_a_number_too_small_for_a_float_reads_as_zero():
    assert loads("1e-999") == 0.0
    assert math.isfinite(loads("1e308"))


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_anywhere(constant):
    for text in (constant, f"[1, {constant}]", f'{{"a": {{"b": {constant}}}}}'):
        with pytest.raises(JsonTooComplex, match=f"{constant} is not a JSON value"):
            loads(text)


def test_bytes_must_be_utf8():
    with pytest.raises(UnicodeDecodeError):
        loads('{"a": "ж"}'.encode("utf-16"))


def test_invalid_json_raises_as_json_loads_does():
    with pytest.raises(json.JSONDecodeError):
        loads('{"a": ')


# ---- harden -----------------------------------------------------------------------------------


LIMIT = 1000


@pytest.fixture
def app():
    app = Flask("edge-test")
    app.config["MAX_CONTENT_LENGTH"] = LIMIT
    harden(app)

    @app.post("/echo")
    def echo():  # type: ignore[no-untyped-def]
        return jsonify(got=request.get_json(), length=len(request.get_data()))

    @app.post("/raw")
    def raw():  # type: ignore[no-untyped-def]
        return jsonify(length=len(request.get_data()))

    return app


def test_a_json_body_within_the_limits_reaches_the_view(app):
    r = app.test_client().post("/echo", json={"a": [1, 2.5, "ж"]})
    assert r.status_code == 200 and r.json["got"] == {"a": [1, 2.5, "ж"]}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (nested_arrays(300), "nested deeper than 32 levels"),
        ('{"n": ' + "1" * 500 + "}", "a number has more than 100 digits"),
        ('{"n": 1e999}', "the number 1e999 is out of range"),
        ('{"n": NaN}', "NaN is not a JSON value"),
    ],
)
def test_a_json_body_beyond_the_limits_is_a_400_naming_the_problem(app, body, problem):
    r = app.test_client().post("/echo", data=body, content_type="application/json")
    assert r.status_code == 400
    assert r.json == {
        "code": 400,
        "status": "Bad Request",
        "message": "Invalid JSON body.",
        "errors": {"json": [f"Invalid JSON body: {problem}."]},
    }


def test_a_body_that_is_not_json_is_not_parsed(app):
    r = app.test_client().post("/raw", data=nested_arrays(300), content_type="text/plain")
    assert r.status_code == 200 and r.json["length"] == 600


def test_request_get_json_reads_with_the_limits(app):
    app.config["MAX_CONTENT_LENGTH"] = 100_000

    @app.post("/json-anyway")
    def json_anyway():  # type: ignore[no-untyped-def]
        return jsonify(got=request.get_json(force=True))

    r = app.test_client().post("/json-anyway", data=nested_arrays(300), content_type="text/plain")
    assert r.status_code == 400


def _post_stream(app, stream, headers, **environ):
    return app.test_client().post(
        "/raw", input_stream=stream, headers={"Content-Type": "application/json", **headers}, environ_overrides=environ
    )


def test_a_body_over_the_limit_is_a_413_and_read_to_its_end(app):
    body = io.BytesIO(b" " * 50_000)
    r = _post_stream(app, body, {"Content-Length": "50000"})
    assert r.status_code == 413
    assert r.json == {
        "code": 413,
        "status": "Request Entity Too Large",
        "message": f"Request body larger than {LIMIT} bytes.",
    }
    assert body.tell() == 50_000  # read, so the server can close the socket without a reset


def test_a_chunked_body_over_the_limit_is_a_413_and_read_to_its_end(app):
    body = io.BytesIO(b" " * 50_000)
    r = _post_stream(app, body, {"Transfer-Encoding": "chunked"}, **{"wsgi.input_terminated": True})
    assert r.status_code == 413 and r.json["code"] == 413
    assert body.tell() == 50_000


def test_a_chunked_body_exactly_at_the_limit_is_read(app):
    r = _post_stream(app, io.BytesIO(b" " * LIMIT), {"Transfer-Encoding": "chunked"}, **{"wsgi.input_terminated": True})
    assert r.status_code == 200 and r.json["length"] == LIMIT


def test_a_body_too_large_to_throw_away_is_not_read_at_all(app, monkeypatch):
    monkeypatch.setattr(httpedge, "DISCARD_BYTES", 10_000)
    body = io.BytesIO(b" " * 50_000)
    r = _post_stream(app, body, {"Content-Length": "50000"})
    assert r.status_code == 413 and body.tell() == 0


def test_harden_needs_a_body_limit():
    with pytest.raises(ValueError, match="MAX_CONTENT_LENGTH"):
        harden(Flask("no-limit"))


# ---- a store that cannot be reached -----------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        redis.exceptions.ConnectionError("Connection refused"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset"),
    ],
)
def test_a_request_that_cannot_reach_redis_gets_a_503_with_retry_after_not_a_500(failure):
    app = Flask("edge-store")
    app.config["MAX_CONTENT_LENGTH"] = 1024
    harden(app)

    @app.post("/things")
    def things():
        raise failure

    response = app.test_client().post("/things", json={"name": "x"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(httpedge.RETRY_AFTER_SECONDS)
    body = response.get_json()
    assert body["code"] == 503 and "try again" in body["message"]
    assert "refused" not in body["message"] and "socket" not in body["message"]  # no internals shown


def test_other_errors_are_not_taken_for_an_unreachable_store():
    app = Flask("edge-other")
    app.config["MAX_CONTENT_LENGTH"] = 1024
    harden(app)

    @app.get("/bug")
    def bug():
        raise redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    assert app.test_client().get("/bug").status_code == 500


# ---- the health probe -------------------------------------------------------------------------


def test_health_says_ok_when_the_store_answers_and_unavailable_without_why_when_not():
    from partnermatch.httpedge import health

    state = {"up": True}

    def ping():
        if not state["up"]:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 10.0.0.5:6379. Connection refused.")
        return True

    app = Flask("edge-health")
    app.config["MAX_CONTENT_LENGTH"] = 1024
    harden(app)
    health(app, ping)
    client = app.test_client()
    assert client.get("/health").get_json() == {"status": "ok"}
    state["up"] = False
    down = client.get("/health")
    assert down.status_code == 503 and down.get_json() == {"status": "unavailable"}
    assert b"10.0.0.5" not in down.data and b"refused" not in down.data


# ---- behind reverse proxies ----------------------------------------------------------------------


def _address_app(**harden_kwargs):
    app = Flask("edge-proxy")
    app.config["MAX_CONTENT_LENGTH"] = 1024
    harden(app, **harden_kwargs)

    @app.get("/who")
    def who():
        return jsonify(address=request.remote_addr, secure=request.is_secure)

    return app.test_client()


def test_behind_a_trusted_proxy_the_client_address_and_https_come_from_its_headers():
    client = _address_app(trusted_proxies=1)
    seen = client.get(
        "/who",
        headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    ).get_json()
    assert seen == {"address": "203.0.113.7", "secure": True}
    forged = client.get(
        "/who", headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.7"}, environ_base={"REMOTE_ADDR": "10.0.0.2"}
    ).get_json()
    assert forged["address"] == "203.0.113.7"  # only the hop the proxy added is believed


def test_without_trusted_proxies_forwarded_headers_are_ignored():
    client = _address_app(trusted_proxies=0)
    seen = client.get(
        "/who", headers={"X-Forwarded-For": "203.0.113.7"}, environ_base={"REMOTE_ADDR": "198.51.100.1"}
    ).get_json()
    assert seen["address"] == "198.51.100.1"


# ---- guard ------------------------------------------------------------------------------------


def _guarded_app():
    from flask.views import MethodView
    from flask_smorest import Api, Blueprint, abort
    from marshmallow import Schema, fields

    class Query(Schema):
        n = fields.Integer(required=True)

    def members_only():
        token = request.headers.get("Authorization", "")
        if not token:
            abort(401, message="Who are you?")
        if token != "Bearer member":
            abort(403, message="Members only.")
        return {"name": "member"}

    blp = Blueprint("things", __name__, url_prefix="/things")
    members = httpedge.guard(blp, members_only, {401: "No token", 403: "Not a member"})

    @blp.route("/<thing>")
    class Thing(MethodView):
        @blp.arguments(Query, location="query")
        @blp.response(200)
        @members
        def get(self, query, thing, caller):
            return {"thing": thing, "n": query["n"], "caller": caller["name"]}

    app = Flask(__name__)
    app.config.update(
        API_TITLE="t",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.2",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    Api(app).register_blueprint(blp)
    return app


def test_a_guarded_view_gets_who_is_calling_and_refuses_the_others_with_the_checks_status():
    client = _guarded_app().test_client()
    ok = client.get("/things/x?n=2", headers={"Authorization": "Bearer member"})
    assert ok.status_code == 200 and ok.json == {"thing": "x", "n": 2, "caller": "member"}
    assert client.get("/things/x?n=2").status_code == 401
    assert client.get("/things/x?n=2", headers={"Authorization": "Bearer stranger"}).status_code == 403
    # A malformed request is a 422 whoever sends it: arguments are read before the check.
    assert client.get("/things/x?n=two").status_code == 422


def test_a_guarded_views_refusals_are_in_its_openapi_document():
    spec = _guarded_app().test_client().get("/openapi.json").json
    responses = spec["paths"]["/things/{thing}"]["get"]["responses"]
    assert responses["401"]["description"] == "No token" and responses["403"]["description"] == "Not a member"
    assert "200" in responses and "422" in responses
