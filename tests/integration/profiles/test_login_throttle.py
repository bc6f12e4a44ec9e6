"""Coordinator logins: failures are throttled per account and per client address, and a logout
revokes the login token at once."""

from __future__ import annotations

import pytest

from .conftest import SERVICE

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


@pytest.fixture
def marko(client, cluster, admin):
    cluster()
    for username in ("marko", "jelena"):
        r = client.post(
            "/v1/clusters/rs-vojvodina-ict/coordinators",
            headers=admin,
            json={
                "username": username,
                "password": PASSWORD,
                "name": username.title(),
                "email": f"{username}@example.rs",
                "language": "sr",
            },
        )
        assert r.status_code == 201
    return "marko"


def login(client, username, password, **headers):
    return client.post(
        "/v1/auth/login",
        json={"username": username, "password": password},
        headers=headers,
        environ_base={"REMOTE_ADDR": headers.pop("addr", "127.0.0.1")},
    )


def test_after_ten_wrong_passwords_even_the_right_one_waits(client, marko):
    for i in range(10):
        assert login(client, "marko", f"guess number {i}", addr=f"10.0.0.{i}").status_code == 401
    refused = login(client, "marko", PASSWORD, addr="10.0.1.1")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "token" not in (refused.get_json() or {})
    # another account is not affected by marko's failures
    assert login(client, "jelena", PASSWORD, addr="10.0.1.1").status_code == 200


def test_successful_logins_do_not_count_toward_the_limit(client, marko):
    for _ in range(12):
        assert login(client, "marko", PASSWORD).status_code == 200


def test_one_address_trying_many_accounts_is_throttled(client, marko):
    for i in range(10):
        assert login(client, f"user{i}", "wrong password!", addr="203.0.113.7").status_code == 401
    assert login(client, "marko", PASSWORD, addr="203.0.113.7").status_code == 429
    assert login(client, "marko", PASSWORD, addr="203.0.113.8").status_code == 200


def test_the_coordinators_page_calling_with_the_service_token_is_throttled_per_account_only(client, marko):
    page = {"Authorization": f"Bearer {SERVICE}"}
    for i in range(10):
        assert login(client, f"user{i}", "wrong password!", **page).status_code == 401
    assert login(client, "marko", PASSWORD, **page).status_code == 200


def test_logout_revokes_the_login_token_at_once(client, marko):
    token = login(client, "marko", PASSWORD).get_json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/auth/whoami", headers=bearer).status_code == 200
    assert client.post("/v1/auth/logout", headers=bearer).status_code == 204
    assert client.get("/v1/auth/whoami", headers=bearer).status_code == 401
    assert client.post("/v1/auth/logout", headers=bearer).status_code == 401
    assert client.post("/v1/auth/logout").status_code == 401
