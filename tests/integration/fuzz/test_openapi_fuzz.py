"""Schema fuzzing: schemathesis generates requests from each API's own OpenAPI document, valid
ones and (negative mode) ones that break it, sends them to the app in process, anonymous and
with a privileged token, and no answer may be a 5xx. A bounded number of cases per operation and
mode keeps it a test; PARTNERMATCH_FUZZ_EXAMPLES raises it for a longer run."""

from __future__ import annotations

import os
from collections.abc import Iterable

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from services.matcher.adapters.profiles_client import ProfilesAuthClient
from services.matcher.adapters.redis_state import RedisMatcherState
from services.matcher.bootstrap import MatcherDeps
from services.matcher.config import MatcherSettings
from services.matcher.entrypoints.web import create_app as create_matcher_app
from services.matcher.review import ReviewService
from services.profiles.adapters.redis_store import RedisProfileStore
from services.profiles.bootstrap import ProfilesDeps
from services.profiles.config import ProfilesSettings
from services.profiles.entrypoints.app import create_app as create_profiles_app

from ..matcher.conftest import ServerThread

pytestmark = pytest.mark.integration

ADMIN = "fuzz-admin-token-0123456789"
SERVICE = "fuzz-service-token-0123456789"
PASSWORD = "fuzz coordinator password"
EXAMPLES = int(os.environ.get("PARTNERMATCH_FUZZ_EXAMPLES", "20"))


def _sender(operation, mode: GenerationMode, headers_to_try: Iterable[dict[str, str]], examples: int, found: list[str]):  # type: ignore[no-untyped-def]
    """A hypothesis test sending cases of one operation in one mode, noting every 5xx in `found`."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    def send(case):  # type: ignore[no-untyped-def]
        for headers in headers_to_try:
            try:
                response = case.call(headers=headers)
            except Exception as exc:  # noqa: BLE001 - an exception out of the app is a 500 too
                found.append(f"{case.method} {case.formatted_path} {mode.value} 500: raised {exc!r:.200}")
                continue
            if response.status_code >= 500:
                found.append(
                    f"{case.method} {case.formatted_path} {mode.value} {response.status_code}: "
                    f"body={case.body!r:.200} query={case.query!r:.100} -> {response.text[:200]}"
                )

    return send


def server_errors(app, headers_to_try: Iterable[dict[str, str]], examples: int = EXAMPLES) -> list[str]:
    """Every operation of the app's /openapi.json, in both generation modes: the requests that got
    a 5xx, described. Hypothesis runs derandomized, so a failure is found again the same way."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    found: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _sender(operation, mode, headers_to_try, examples, found)()
            except Unsatisfiable:  # nothing to break: an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE
    return found


@pytest.fixture
def profiles_app(redis_client, redis_server):
    config = ProfilesSettings(
        redis_url=redis_server.url,
        kafka_bootstrap="unused:9092",
        admin_token=ADMIN,
        service_token=SERVICE,
        login_rate_limit="100000 per minute",
        register_rate_limit="100000 per minute",
        signin_rate_limit="100000 per minute",
    )
    app = create_profiles_app(config, ProfilesDeps(store=RedisProfileStore(redis_client)))
    admin = {"Authorization": f"Bearer {ADMIN}"}
    client = app.test_client()
    assert (
        client.post(
            "/v1/clusters", headers=admin, json={"id": "rs-vojvodina-ict", "name": "ICT", "country": "RS"}
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/v1/clusters/rs-vojvodina-ict/coordinators",
            headers=admin,
            json={"username": "marko", "password": PASSWORD, "name": "Marko", "email": "marko@example.rs"},
        ).status_code
        == 201
    )
    return app


def test_no_request_to_the_profiles_api_gets_a_5xx(profiles_app):
    assert server_errors(profiles_app, ({}, {"Authorization": f"Bearer {ADMIN}"})) == []


def test_no_request_to_the_matcher_api_gets_a_5xx(profiles_app, redis_client, redis_server):
    profiles = ServerThread(profiles_app)
    try:
        token = (
            profiles_app.test_client()
            .post("/v1/auth/login", json={"username": "marko", "password": PASSWORD})
            .json["token"]
        )
        state = RedisMatcherState(redis_client)
        settings_ = MatcherSettings(
            redis_url=redis_server.url,
            kafka_bootstrap="unused:9092",
            profiles_url=profiles.url,
            secret_key="fuzz",
            service_token=SERVICE,
            login_rate_limit="100000 per minute",
        )
        app = create_matcher_app(
            settings_,
            MatcherDeps(
                state=state, review=ReviewService(state), auth=ProfilesAuthClient(profiles.url, service_token=SERVICE)
            ),
        )
        assert (
            server_errors(app, ({}, {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {SERVICE}"})) == []
        )
    finally:
        profiles.stop()


def test_the_fuzzer_does_report_a_server_error():
    """The harness itself: an API with one route that fails on a number it did not expect."""
    from flask import Flask
    from flask.views import MethodView
    from flask_smorest import Api, Blueprint
    from marshmallow import Schema, fields

    class Query(Schema):
        n = fields.Integer(required=True)

    blp = Blueprint("things", __name__, url_prefix="/things")

    @blp.route("")
    class Things(MethodView):
        @blp.arguments(Query, location="query")
        @blp.response(200)
        def get(self, query):
            return {"inverse": 1 / (query["n"] % 7)}  # 500 for a multiple of 7

    app = Flask("fuzz-self-test")
    app.config.update(
        API_TITLE="t",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    Api(app).register_blueprint(blp)
    found = server_errors(app, ({},), examples=50)
    assert found and all(" 500: " in f and f.startswith("GET /things") for f in found)
