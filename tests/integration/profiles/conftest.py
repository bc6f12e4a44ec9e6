from __future__ import annotations

import pytest

from services.profiles.adapters.redis_store import RedisProfileStore
from services.profiles.bootstrap import ProfilesDeps
from services.profiles.config import ProfilesSettings
from services.profiles.entrypoints.app import create_app

ADMIN = "test-admin-token-0123456789"
SERVICE = "test-service-token-0123456789"


@pytest.fixture
def store(redis_client):
    return RedisProfileStore(redis_client)


@pytest.fixture
def settings(redis_server):
    return ProfilesSettings(
        redis_url=redis_server.url,
        kafka_bootstrap="unused:9092",
        admin_token=ADMIN,
        service_token=SERVICE,
        max_request_bytes=200_000,
        max_text_chars=20_000,
    )


@pytest.fixture
def client(settings, store):
    app = create_app(settings, ProfilesDeps(store=store))
    return app.test_client()


@pytest.fixture
def admin():
    return {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def cluster(client, admin):
    def make(cluster_id="rs-vojvodina-ict", country="RS"):
        r = client.post(
            "/v1/clusters", json={"id": cluster_id, "name": f"Cluster {cluster_id}", "country": country}, headers=admin
        )
        assert r.status_code == 201, r.json
        return cluster_id

    return make


def profile(cluster_id="rs-vojvodina-ict", **over):
    body = {
        "name": "Кластер ИКТ Нови Сад",
        "cluster_id": cluster_id,
        "country": "RS",
        "language": "sr",
        "capabilities": "Развој софтвера и обука програмера; 40 чланица.",
        "goals": "Tražimo partnere iz poljoprivrede za digitalizaciju.",
        "sectors": ["ict"],
        "website": "https://ikt.example.rs",
        "contacts": [{"name": "Јелена Петровић", "email": "jelena@example.rs", "language": "sr-Cyrl", "consent": True}],
    }
    body.update(over)
    return body
