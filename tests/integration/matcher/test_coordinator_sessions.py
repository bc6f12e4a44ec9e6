"""The coordinators' page sessions: the cookie holds no token, logout revokes it, and failed
logins are throttled per address (here) and per account (at profiles)."""

from __future__ import annotations

import base64
import json
import zlib

import pytest

from .conftest import ADMIN, PASSWORD

pytestmark = pytest.mark.integration


def _csrf(client, **environ):
    page = client.get("/login", environ_base=environ)
    return page.get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]


def _login(client, username="anna", password=PASSWORD, addr="127.0.0.1"):
    environ = {"REMOTE_ADDR": addr}
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": _csrf(client, **environ)},
        environ_base=environ,
    )


def _session_cookie(client) -> str:
    cookie = client.get_cookie("pm_session")
    assert cookie is not None
    return cookie.value


def _decoded(cookie: str) -> dict:
    """What a Flask session cookie says to anyone who reads it (it is signed, not encrypted)."""
    compressed = cookie.startswith(".")
    payload = cookie.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)


def test_the_session_cookie_holds_no_login_token(matcher_app, redis_client):
    client = matcher_app.test_client()
    assert _login(client).status_code == 302
    readable = _decoded(_session_cookie(client))
    assert set(readable) <= {"sid", "csrf", "_flashes"}
    assert not any(str(v).startswith("pms_") for v in readable.values())
    assert client.get("/queue").status_code == 200


def test_logout_ends_the_session_and_revokes_the_token_so_an_old_cookie_opens_nothing(
    matcher_app, profiles, redis_client
):
    client = matcher_app.test_client()
    _login(client)
    old_cookie = _session_cookie(client)
    tokens_before = set(redis_client.scan_iter("{profiles}:token:*"))
    assert client.post("/logout", data={"csrf": _decoded(old_cookie)["csrf"]}).status_code == 302
    assert set(redis_client.scan_iter("{profiles}:token:*")) < tokens_before  # revoked at profiles
    assert not list(redis_client.scan_iter("matcher:page-session:*"))
    thief = matcher_app.test_client()
    thief.set_cookie("pm_session", old_cookie)
    assert thief.get("/queue").status_code == 302  # back to the login page


def test_after_ten_failed_logins_from_one_address_even_the_right_password_waits(matcher_app):
    client = matcher_app.test_client()
    for i in range(10):
        assert _login(client, f"someone{i}", "not the password", addr="198.51.100.9").status_code == 401
    refused = _login(client, "anna", PASSWORD, addr="198.51.100.9")
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0
    assert _login(matcher_app.test_client(), "anna", PASSWORD, addr="198.51.100.10").status_code == 302


def test_an_account_guessed_at_from_many_addresses_is_throttled_at_profiles(matcher_app):
    client = matcher_app.test_client()
    for i in range(10):
        assert _login(client, "marko", f"guess {i}", addr=f"192.0.2.{i + 1}").status_code == 401
    refused = _login(client, "marko", PASSWORD, addr="192.0.2.200")
    assert refused.status_code == 429 and "Too many failed logins" in refused.get_data(as_text=True)
    assert _login(matcher_app.test_client(), "anna", PASSWORD, addr="192.0.2.201").status_code == 302


def test_the_page_opens_in_the_coordinators_stored_language_after_login_unless_one_was_chosen(matcher_app, profiles):
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert (
        profiles.client.post(
            "/v1/clusters/pl-silesia-ict/coordinators",
            headers=admin,
            json={
                "username": "kasia",
                "password": PASSWORD,
                "name": "Kasia",
                "email": "kasia@example.org",
                "language": "pl",
            },
        ).status_code
        == 201
    )
    client = matcher_app.test_client()
    assert _login(client, "kasia").status_code == 302
    queue = client.get("/queue", headers={"Accept-Language": "en"})
    assert '<html lang="pl"' in queue.get_data(as_text=True)
    chosen = matcher_app.test_client()
    chosen.get("/login?lang=de")
    assert _login(chosen, "kasia").status_code == 302
    assert '<html lang="de"' in chosen.get("/queue").get_data(as_text=True)
