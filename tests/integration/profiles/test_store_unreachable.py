"""The profiles API while its Redis cannot be reached: a 503 that says when to retry, never a 500."""

from __future__ import annotations

import socket

import pytest
import redis

from services.profiles.adapters.redis_store import RedisProfileStore
from services.profiles.bootstrap import ProfilesDeps
from services.profiles.config import ProfilesSettings
from services.profiles.entrypoints.app import create_app

from .conftest import ADMIN, SERVICE, profile

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def unreachable_client():
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    settings = ProfilesSettings(
        redis_url=url,
        kafka_bootstrap="unused:9092",
        admin_token=ADMIN,
        service_token=SERVICE,
        max_request_bytes=200_000,
        max_text_chars=20_000,
    )
    store = RedisProfileStore(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1))
    return create_app(settings, ProfilesDeps(store=store)).test_client()


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/v1/organisations", profile()),
        ("get", "/v1/organisations/org_0123456789abcdef", None),
        ("get", "/v1/clusters", None),
    ],
)
def test_requests_needing_the_store_get_503_with_retry_after_while_redis_is_down(
    unreachable_client, method, path, body
):
    response = getattr(unreachable_client, method)(path, json=body)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert "try again" in response.get_json()["message"]
