"""The organisations' pages against a real redis-server and a real SMTP server (the aiosmtpd sink):
an app factory with the pages' settings, and helpers that read forms and mails as a person would."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from partnermatch.smtp import SmtpSettings
from services.notifier.adapters.smtp_sink import SmtpSink
from services.profiles.adapters.redis_store import RedisProfileStore
from services.profiles.bootstrap import ProfilesDeps
from services.profiles.config import ProfilesSettings
from services.profiles.entrypoints.app import create_app
from tests.helpers import wait_until

from ..conftest import ADMIN, SERVICE

SECRET = "pages-test-secret-key-0123456789abcdef"
PUBLIC_URL = "http://pages.partnermatch.test"
CLUSTERS = {
    "rs-vojvodina-ict": ("Klaster IKT Vojvodina", "RS"),
    "pl-silesia-ict": ("Śląski Klaster ICT", "PL"),
    "al-tirana-creative": ("Klasteri Krijues Tirana", "AL"),
}


class InlineBackground:
    """Runs the work at once, so a test knows the mail is sent when the answer arrives."""

    def submit(self, work: Callable[[], Any]) -> None:
        work()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def pages_settings(redis_server, sink) -> Callable[..., ProfilesSettings]:
    def make(**over: Any) -> ProfilesSettings:
        values: dict[str, Any] = {
            "redis_url": redis_server.url,
            "kafka_bootstrap": "unused:9092",
            "admin_token": ADMIN,
            "service_token": SERVICE,
            "secret_key": SECRET,
            "public_url": PUBLIC_URL,
            "smtp": SmtpSettings(port=sink.port, timeout_s=5, sender="partnermatch <noreply@partnermatch.test>"),
        }
        values.update(over)
        return ProfilesSettings(**values)

    return make


@pytest.fixture
def make_app(pages_settings, redis_client):
    """`make_app(**settings)`: the profiles app with its pages, three clusters in Redis. Sign-in
    mail is sent inline unless `background=` says otherwise."""

    def make(background: Any = None, **over: Any):
        deps = ProfilesDeps(store=RedisProfileStore(redis_client))
        deps.background = background or InlineBackground()
        app = create_app(pages_settings(**over), deps)
        api = app.test_client()
        for cluster_id, (name, country) in CLUSTERS.items():
            if api.get(f"/v1/clusters/{cluster_id}").status_code == 404:
                assert (
                    api.post(
                        "/v1/clusters",
                        json={"id": cluster_id, "name": name, "country": country},
                        headers={"Authorization": f"Bearer {ADMIN}"},
                    ).status_code
                    == 201
                )
        return app

    return make


@pytest.fixture
def app(make_app):
    return make_app()


# ---- what a person does -------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form token"
    return found[1]


def registration(**over: Any) -> dict[str, Any]:
    """A complete registration form as a browser posts it."""
    form: dict[str, Any] = {
        "name": "Софтверска кућа Банат",
        "cluster_id": "rs-vojvodina-ict",
        "country": "RS",
        "language": "sr",
        "capabilities": "Развој софтвера и мобилних апликација, обука ИТ кадрова.",
        "goals": "Тражимо партнере из пољопривреде и прехрамбене индустрије за дигитализацију.",
        "website": "https://banat.example.rs",
        "offers": ["ict.software"],
        "seeks": ["agrifood"],
        "seeks_countries": ["PL"],
        "contacts-0-name": "Јелена Петровић",
        "contacts-0-email": "jelena@banat.example.rs",
        "contacts-0-language": "sr-Cyrl",
        "contacts-0-consent": "yes",
        "contacts-0-share_contact": "yes",
    }
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def form_id_of(html: str) -> str:
    found = re.search(r'name="form_id" value="([^"]+)"', html)
    assert found, "the registration form has no id"
    return found[1]


def register(client, lang: str = "sr-Cyrl", **over: Any):
    """Open the form, post it with its hidden fields; the answer (a redirect to /profile when it
    worked)."""
    page = client.get(f"/register?lang={lang}").get_data(as_text=True)
    return client.post(
        "/register", data={**registration(**over), "csrf_token": csrf_of(page), "form_id": form_id_of(page)}
    )


def mails_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return [m.parsed() for m in sink.messages_to(address)]


def signin_link(sink: SmtpSink, address: str, timeout: float = 10.0) -> str:
    """The sign-in link of the newest email to `address`."""
    mail = wait_until(lambda: mails_to(sink, address), timeout, message=f"a sign-in email to {address}")[-1]
    body = mail.get_body(("plain",)).get_content()
    return re.findall(r"https?://\S+/signin/\S+", body)[-1]
