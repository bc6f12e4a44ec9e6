"""The unsubscribe page: POST unsubscribes without a login, GET changes nothing, forgery: 400."""

from __future__ import annotations

import pytest

from services.notifier.adapters.redis_ledger import RedisDeliveryLedger
from services.notifier.config import NotifierSettings
from services.notifier.entrypoints.web import create_app
from services.notifier.tokens import UnsubscribeTokens

KEY = "web-test-secret"


class Deps:
    def __init__(self, ledger):
        self.ledger = ledger
        self.tokens = UnsubscribeTokens(KEY)


@pytest.fixture
def ledger(redis_client):
    return RedisDeliveryLedger(redis_client)


@pytest.fixture
def client(ledger):
    settings = NotifierSettings(redis_url="unused", kafka_bootstrap="unused", secret_key=KEY)
    return create_app(settings, Deps(ledger)).test_client()


def link(email="jelena@example.rs", lang="sr-Cyrl"):
    return "/unsubscribe/" + UnsubscribeTokens(KEY).sign(email, "org_b", lang)


def test_get_shows_a_button_in_the_contacts_language_and_changes_nothing(client, ledger):
    url = link()
    r = client.get(url)
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert f'<form method="post" action="{url}">' in page
    assert "Одјави ме" in page and "jelena@example.rs" in page
    assert not ledger.is_suppressed("jelena@example.rs")


def test_one_click_post_unsubscribes_without_a_login(client, ledger):
    r = client.post(link(), data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200
    assert "Одјављени сте" in r.get_data(as_text=True)
    assert ledger.is_suppressed("jelena@example.rs")


def test_the_link_opened_again_after_unsubscribing_says_so_rather_than_asks_again(client, ledger):
    url = link(lang="en")
    assert "Unsubscribe from partnership emails?" in client.get(url).get_data(as_text=True)
    client.post(url)
    again = client.get(url).get_data(as_text=True)
    assert "You are unsubscribed" in again and f'action="{url}"' not in again  # no Unsubscribe button
    assert "will receive no further emails about partnerships" in again


def test_a_coordinator_who_left_the_digest_may_still_leave_every_coordinators_email(client, ledger):
    url = "/unsubscribe/" + UnsubscribeTokens(KEY).sign("anna@example.pl", "pl-silesia-ict", "en", kind="digest")
    client.post(url)
    again = client.get(url).get_data(as_text=True)
    assert "You are unsubscribed" in again and f'action="{url}?scope=all"' in again
    client.post(url + "?scope=all")
    assert f'action="{url}?scope=all"' not in client.get(url).get_data(as_text=True), (
        "left every kind: no more to leave"
    )


def test_an_unsubscribe_is_undone_by_the_button_of_the_page_that_says_so(client, ledger):
    url = link()
    done = client.post(url).get_data(as_text=True)
    undo = url.replace("/unsubscribe/", "/resubscribe/")
    assert f'<form method="post" action="{undo}">' in done and "Пријави ме поново" in done
    again = client.post(undo)
    assert again.status_code == 200
    assert "Поново сте пријављени" in again.get_data(as_text=True) and "jelena@example.rs" in again.get_data(
        as_text=True
    )
    assert not ledger.is_suppressed("jelena@example.rs")
    assert ledger.counts()["resubscribes"] == 1
    assert 'action="' + url + '"' in client.get(url).get_data(as_text=True), "the link asks again, as before"
    client.post(undo)  # twice: nothing more to undo
    assert ledger.counts()["resubscribes"] == 1


def test_a_coordinator_who_left_every_kind_comes_back_to_every_kind(client, ledger):
    url = "/unsubscribe/" + UnsubscribeTokens(KEY).sign("anna@example.pl", "pl-silesia-ict", "en", kind="digest")
    done = client.post(url + "?scope=all").get_data(as_text=True)
    undo = url.replace("/unsubscribe/", "/resubscribe/") + "?scope=all"
    assert f'action="{undo}"' in done
    assert "You are subscribed again" in client.post(undo).get_data(as_text=True)
    assert not ledger.is_suppressed("anna@example.pl", "digest") and not ledger.is_suppressed(
        "anna@example.pl", "decisions"
    )


def test_a_forged_link_subscribes_nobody_again(client, ledger):
    ledger.suppress("victim@example.org", "org_b", "2026-12-07T00:00:00+00:00")
    forged = "/resubscribe/" + UnsubscribeTokens("attacker key").sign("victim@example.org", "org_b", "en")
    assert client.post(forged).status_code == 400
    opened = client.get(link(email="victim@example.org").replace("/unsubscribe/", "/resubscribe/"))
    assert opened.status_code == 303 and opened.headers["Location"].startswith(
        "/unsubscribe/"
    )  # a GET: the link's page
    assert ledger.is_suppressed("victim@example.org")


def test_posting_twice_is_harmless(client, ledger):
    assert client.post(link(lang="en")).status_code == 200
    assert client.post(link(lang="en")).status_code == 200
    assert ledger.counts()["unsubscribes"] == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_or_damaged_link_gets_400_and_unsubscribes_nobody(client, ledger, method):
    forged = "/unsubscribe/" + UnsubscribeTokens("attacker key").sign("victim@example.org", "org_b", "en")
    for url in (forged, link()[:-3], "/unsubscribe/garbage"):
        r = getattr(client, method)(url, headers={"Accept-Language": "pl"})
        assert r.status_code == 400
        assert "Ten link jest nieprawidłowy" in r.get_data(as_text=True)
    assert ledger.counts().get("unsubscribes", 0) == 0


def test_pages_carry_security_headers_and_never_leak_the_link_in_a_referer(client):
    r = client.get(link())
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert "form-action 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["Cache-Control"] == "no-store"
    assert r.mimetype == "text/html"


def test_health_answers_ok_when_redis_answers(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json == {"status": "ok"}


def test_an_oversized_body_is_refused(client, ledger):
    r = client.post(link(), data="x" * 20_000, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 413
    assert not ledger.is_suppressed("jelena@example.rs")


@pytest.mark.parametrize(
    "accept, expected",
    [
        ("sr-Latn-RS,sr;q=0.9", "Ovaj link nije ispravan"),
        ("sr-Cyrl-RS", "Овај линк није исправан"),
        ("uk-UA,uk;q=0.9,en;q=0.5", "Посилання недійсне"),
        ("fr-FR", "This link is not valid"),
    ],
)
def test_a_page_without_a_valid_link_is_in_the_browsers_language(client, accept, expected):
    r = client.get("/unsubscribe/garbage", headers={"Accept-Language": accept})
    assert r.status_code == 400 and expected in r.get_data(as_text=True)


def test_a_page_about_a_signed_link_is_in_the_language_of_its_email(client):
    r = client.get(link(lang="hu"), headers={"Accept-Language": "de"})
    assert "Leiratkozás" in r.get_data(as_text=True) and '<html lang="hu">' in r.get_data(as_text=True)
