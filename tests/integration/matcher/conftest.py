from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from services.matcher.adapters.profiles_client import ProfilesAuthClient
from services.matcher.adapters.redis_state import ProfileChange, RedisMatcherState
from services.matcher.bootstrap import MatcherDeps
from services.matcher.config import MatcherSettings
from services.matcher.entrypoints.web import create_app as create_matcher_app
from services.matcher.review import ReviewService
from services.profiles.adapters.redis_store import RedisProfileStore
from services.profiles.bootstrap import ProfilesDeps
from services.profiles.config import ProfilesSettings
from services.profiles.entrypoints.app import create_app as create_profiles_app

ADMIN = "matcher-test-admin-token"
SERVICE = "matcher-test-service-token"
PASSWORD = "coordinator password 1"
CLUSTERS = {"pl-silesia-ict": ("PL", "anna"), "rs-vojvodina-ict": ("RS", "marko"), "al-tirana-creative": ("AL", "besa")}
CLUSTER_NAMES = {
    "pl-silesia-ict": "Silesia ICT Cluster",
    "rs-vojvodina-ict": "Vojvođanski IKT klaster",
    "al-tirana-creative": "Tirana Creative Hub",
}


class ServerThread:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def profiles(redis_client, redis_server):
    """The real profiles service over HTTP, with three clusters and a coordinator in each."""
    settings = ProfilesSettings(
        redis_url=redis_server.url, kafka_bootstrap="unused:9092", admin_token=ADMIN, service_token=SERVICE
    )
    app = create_profiles_app(settings, ProfilesDeps(store=RedisProfileStore(redis_client)))
    client = app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    for cluster_id, (country, coordinator) in CLUSTERS.items():
        assert (
            client.post(
                "/v1/clusters",
                headers=admin,
                json={"id": cluster_id, "name": CLUSTER_NAMES[cluster_id], "country": country},
            ).status_code
            == 201
        )
        assert (
            client.post(
                f"/v1/clusters/{cluster_id}/coordinators",
                headers=admin,
                json={
                    "username": coordinator,
                    "password": PASSWORD,
                    "name": coordinator.title(),
                    "email": f"{coordinator}@example.org",
                },
            ).status_code
            == 201
        )  # no stated language
    server = ServerThread(app)
    server.client = client
    yield server
    server.stop()


@pytest.fixture
def matcher_state(redis_client):
    return RedisMatcherState(redis_client)


@pytest.fixture
def matcher_app(profiles, matcher_state, redis_server):
    settings = MatcherSettings(
        redis_url=redis_server.url,
        kafka_bootstrap="unused:9092",
        profiles_url=profiles.url,
        secret_key="matcher-test-secret",
        service_token=SERVICE,
    )
    deps = MatcherDeps(
        state=matcher_state,
        review=ReviewService(matcher_state),
        auth=ProfilesAuthClient(profiles.url, cache_ttl_s=0, service_token=SERVICE),
    )
    app = create_matcher_app(settings, deps)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def login(profiles):
    def do(username: str) -> dict:
        r = profiles.client.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200
        return {"Authorization": f"Bearer {r.json['token']}"}

    return do


def seed_profile(state, org_id, cluster, country, lang, name, *, caps, goals, **fields):
    """An organisation's profile applied to the matcher's state (revision 1), as its consumer would."""
    profile = {
        "org_id": org_id,
        "name": name,
        "cluster_id": cluster,
        "country": country,
        "language": lang,
        "capabilities": caps,
        "goals": goals,
        "sectors": [],
        "website": None,
    }
    state.apply(ProfileChange(org_id, 1, profile | fields))
