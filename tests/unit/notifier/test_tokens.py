"""Unsubscribe tokens: what is signed comes back; anything else is refused."""

from __future__ import annotations

import pytest

from services.notifier.tokens import UnsubscribeRequest, UnsubscribeTokens, unsubscribe_url

KEY = "notifier-unit-test-secret"


def test_a_signed_token_carries_the_address_organisation_and_language():
    tokens = UnsubscribeTokens(KEY)
    token = tokens.sign(" Jelena@Example.RS ", "org_1", "sr-Cyrl")
    assert tokens.verify(token) == UnsubscribeRequest("jelena@example.rs", "org_1", "sr-Cyrl")


def test_a_token_is_safe_in_a_url_path():
    token = UnsubscribeTokens(KEY).sign("a+b@example.org", "org_1", "en")
    assert all(ch.isalnum() or ch in "-_." for ch in token)
    assert unsubscribe_url("https://n.example/", token) == f"https://n.example/unsubscribe/{token}"


def test_a_changed_token_is_refused():
    tokens = UnsubscribeTokens(KEY)
    token = tokens.sign("a@example.org", "org_1", "en")
    payload, _, signature = token.rpartition(".")
    other = tokens.sign("victim@example.org", "org_1", "en")
    forged = other.rpartition(".")[0] + "." + signature
    assert tokens.verify(forged) is None
    assert tokens.verify(payload + "." + signature[:-1] + ("A" if signature[-1] != "A" else "B")) is None


def test_a_token_signed_with_another_key_is_refused():
    token = UnsubscribeTokens("some other key").sign("a@example.org", "org_1", "en")
    assert UnsubscribeTokens(KEY).verify(token) is None


@pytest.mark.parametrize("garbage", ["", "x", "abc.def", "a" * 5000, "e30.bad", "..", "%00"])
def test_garbage_is_refused_without_an_error(garbage):
    assert UnsubscribeTokens(KEY).verify(garbage) is None


def test_a_validly_signed_but_wrongly_shaped_payload_is_refused():
    from itsdangerous import URLSafeSerializer

    from services.notifier.tokens import SALT

    serializer = URLSafeSerializer(KEY, salt=SALT)
    for payload in [
        ["a@example.org"],
        {"e": "no-at-sign", "o": "org", "l": "en"},
        {"e": "a@b.c", "o": 1, "l": "en"},
    ]:
        assert UnsubscribeTokens(KEY).verify(serializer.dumps(payload)) is None


def test_there_is_no_token_without_a_secret_key():
    with pytest.raises(ValueError):
        UnsubscribeTokens("")
