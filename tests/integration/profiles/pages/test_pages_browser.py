"""The organisations' pages in a real headless Chromium (Debian's, driven by Playwright), with the
sign-in link read from a real SMTP server. Every page is checked at 390 px: nothing scrolls
sideways, tap targets are at least 44 px, axe-core finds no serious or critical violation; each is
kept as a screenshot in test-artifacts/."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from services.profiles.adapters.redis_store import RedisProfileStore
from services.profiles.bootstrap import ProfilesDeps
from services.profiles.entrypoints.app import create_app
from tests.browser import check, chromium, phone
from tests.helpers import wait_until

from ..conftest import ADMIN
from .conftest import CLUSTERS, mails_to, signin_link

pytestmark = [pytest.mark.integration, pytest.mark.browser]


class _Served:
    """The app on a loopback port, its public URL that port (sign-in links point at it)."""

    def __init__(self, make: Any) -> None:
        holder: dict[str, Any] = {}
        self.server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        holder["app"] = self.app = make(self.url)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


class _Partnerships:
    """The matcher's answer for the page: one approved partnership with the Polish cluster's
    organisation (whatever asks), so 'my partnerships' shows a partner and its shared contact."""

    def __init__(self) -> None:
        self.partner_id = ""

    def partnerships(self, org_id: str, lang: str = "en") -> list[dict[str, Any]]:
        return [
            {
                "pair_id": "~".join(sorted((org_id, self.partner_id))),
                "state": "approved",
                "score": 0.71,
                "suggested_ms": 1_796_000_000_000,
                "decided_ms": 1_796_100_000_000,
                "reason": "Śląski Klaster ICT — oprogramowanie ↔ софтвер",
                "partner": {"org_id": self.partner_id, "cluster_id": "pl-silesia-ict"},
            }
        ]


@pytest.fixture
def served(pages_settings, redis_client, sink):
    matcher = _Partnerships()

    def make(url: str):
        deps = ProfilesDeps(store=RedisProfileStore(redis_client), matcher=matcher)  # type: ignore[arg-type]
        return create_app(pages_settings(public_url=url), deps)

    running = _Served(make)
    api = running.app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    for cluster_id, (name, country) in CLUSTERS.items():
        api.post("/v1/clusters", json={"id": cluster_id, "name": name, "country": country}, headers=admin)
    partner = api.post(
        "/v1/organisations",
        json={
            "name": "Śląski Dom Oprogramowania",
            "cluster_id": "pl-silesia-ict",
            "country": "PL",
            "language": "pl",
            "capabilities": "Oprogramowanie dla rolnictwa.",
            "goals": "Szukamy partnerów w Serbii.",
            "website": "https://oprogramowanie.example.pl",
            "contacts": [
                {
                    "name": "Anna Nowak",
                    "email": "anna@oprogramowanie.example.pl",
                    "language": "pl",
                    "consent": True,
                    "share_contact": True,
                }
            ],
        },
    )
    assert partner.status_code == 201
    matcher.partner_id = partner.json["organisation"]["id"]
    yield running
    running.stop()


@pytest.fixture
def browser():
    with chromium() as launched:
        yield launched


def _fill_registration(page, name: str, email: str, contact_language: str, caps: str, goals: str) -> None:
    page.fill("#name", name)
    page.select_option("#cluster_id", "rs-vojvodina-ict")
    page.select_option("#country", "RS")
    page.fill("#capabilities", caps)
    page.fill("#goals", goals)
    page.fill("#contacts-0-name", name.split()[0] + " Kontakt")
    page.fill("#contacts-0-email", email)
    page.select_option("#contacts-0-language", contact_language)
    page.check("input[name=contacts-0-consent]")


def _sign_in_by_mail(page, served, sink, email: str, lang: str) -> None:
    page.goto(f"{served.url}/signin?lang={lang}")
    page.fill("#email", email)
    page.click("#send-link")
    page.wait_for_selector("#sent")
    link = signin_link(sink, email)
    assert link.startswith(served.url)
    page.goto(link)
    page.wait_for_selector("#confirm-signin")
    return link


def test_an_organisation_registers_signs_in_by_mail_edits_downloads_and_deletes_in_serbian_cyrillic(
    served, browser, sink, redis_client
):
    email = "jelena@banat.example.rs"
    page = phone(browser)
    page.goto(f"{served.url}/?lang=sr-Cyrl")
    assert "Пронађите партнере" in page.content()
    check(page, "start-sr-Cyrl")
    page.click("#start-register")
    page.wait_for_selector("#register")
    check(page, "register-sr-Cyrl")

    _fill_registration(
        page, "Софтверска кућа Банат", email, "sr-Cyrl", "Развој софтвера и мобилних апликација, обука ИТ кадрова.", ""
    )
    page.check("input[name=contacts-0-share_contact]")
    agrifood = page.locator("#seeks details").filter(has=page.locator("input[value=agrifood]"))
    agrifood.locator("summary").click()
    page.check("#seeks input[value=agrifood]")
    page.click("#register")
    page.wait_for_selector("#error-summary")
    assert "Попуните ово поље." in page.inner_text("#error-summary")
    assert page.input_value("#capabilities").startswith("Развој софтвера")
    assert page.is_checked("input[name=contacts-0-share_contact]")
    check(page, "register-errors-sr-Cyrl")
    page.fill("#goals", "Тражимо партнере из пољопривреде и прехрамбене индустрије за дигитализацију.")
    page.click("#register")
    page.wait_for_selector("#save")
    assert "Ваша организација је регистрована" in page.inner_text(".flash")
    check(page, "profile-sr-Cyrl")

    page.click("#signout")
    page.wait_for_selector("#start-signin")
    page.click("#start-signin")
    page.wait_for_selector("#send-link")
    check(page, "signin-sr-Cyrl")
    page.fill("#email", email)
    page.click("#send-link")
    page.wait_for_selector("#sent")
    check(page, "signin-sent-sr-Cyrl")
    [mail] = wait_until(lambda: mails_to(sink, email), message="the sign-in email")
    assert mail["Content-Language"] == "sr-Cyrl"
    page.goto(signin_link(sink, email))
    page.wait_for_selector("#confirm-signin")
    check(page, "signin-link-sr-Cyrl")
    page.click("#confirm-signin")
    page.wait_for_selector("#save")

    page.fill("#goals", "Тражимо партнере из Пољске за заједнички пројекат.")
    page.click("#save")
    page.wait_for_selector(".flash")
    assert page.inner_text(".flash") == "Сачувано."
    org_id = next(
        iter(
            k.decode().rsplit(":", 1)[1]
            for k in redis_client.keys("{profiles}:org:*")
            if json.loads(redis_client.get(k))["name"] == "Софтверска кућа Банат"
        )
    )
    stored = json.loads(redis_client.get(f"{{profiles}}:org:{org_id}"))
    assert stored["goals"] == "Тражимо партнере из Пољске за заједнички пројекат." and stored["seeks"] == ["agrifood"]

    page.click("#nav-partnerships")
    page.wait_for_selector("article.partnership")
    assert "anna@oprogramowanie.example.pl" in page.content()
    check(page, "partnerships-sr-Cyrl")

    page.goto(f"{served.url}/profile")
    with page.expect_download() as download:
        page.click("#download")
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert exported["organisation"]["id"] == org_id and exported["organisation"]["contacts"][0]["email"] == email
    assert exported["organisation"]["contacts"][0]["share_contact_wording"]

    page.click("#delete")
    page.wait_for_selector("#confirm-delete")
    check(page, "delete-sr-Cyrl")
    page.check("#confirm")
    page.click("#confirm-delete")
    page.wait_for_selector("#start-register")
    assert "обрисани" in page.inner_text(".flash")
    assert served.app.test_client().get(f"/v1/organisations/{org_id}").status_code == 404
    page.goto(f"{served.url}/profile")
    page.wait_for_selector("#send-link")  # signed out: the session went with the organisation


@pytest.mark.parametrize(
    "lang, name, caps, goals, heading",
    [
        (
            "sq",
            "Qendra Kreative Vojvodina",
            "Dizajn grafik dhe prodhim video.",
            "Kërkojmë partnerë në Shqipëri.",
            "Gjeni partnerë",
        ),
        (
            "pl",
            "Wojwodiński Dom Mediów",
            "Produkcja wideo i grafika.",
            "Szukamy partnerów w Polsce.",
            "Znajdź partnerów",
        ),
    ],
)
def test_registering_and_signing_in_work_in_albanian_and_polish(
    served, browser, sink, lang, name, caps, goals, heading
):
    email = f"kontakt-{lang}@media.example.rs"
    page = phone(browser)
    page.goto(f"{served.url}/?lang={lang}")
    assert heading in page.content()
    check(page, f"start-{lang}")
    page.click("#start-register")
    page.wait_for_selector("#register")
    check(page, f"register-{lang}")
    _fill_registration(page, name, email, lang, caps, goals)
    page.click("#register")
    page.wait_for_selector("#save")
    page.click("#signout")
    page.wait_for_selector("#start-signin")
    _sign_in_by_mail(page, served, sink, email, lang)
    check(page, f"signin-link-{lang}")
    page.click("#confirm-signin")
    page.wait_for_selector("#save")
    assert page.input_value("#name") == name and page.get_attribute("html", "lang") == lang


def test_the_pages_work_with_the_keyboard_alone_and_show_where_the_focus_is(served, browser, sink):
    page = phone(browser)
    page.goto(f"{served.url}/?lang=en")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    focused: list[list[Any]] = []
    while not focused or focused[-1][0] != "start-signin":  # brand, language, register, sign in
        assert len(focused) < 6, focused
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
            return [e.id || e.textContent.trim(), s.outlineStyle, parseFloat(s.outlineWidth)]; }""")
        )
    assert all(style != "none" and width >= 2 for _name, style, width in focused), focused
    page.keyboard.press("Enter")
    page.wait_for_selector("#email")
    page.focus("#email")
    page.keyboard.type("nobody@media.example.rs")
    page.keyboard.press("Enter")
    page.wait_for_selector("#sent")
    assert mails_to(sink, "nobody@media.example.rs") == []


def test_enter_in_a_field_registers_and_saves_never_adds_a_contact_row(served, browser, sink):
    """The form's first submit button is what Enter sends: it registers (and, on the profile,
    saves), not "Add another contact person", which comes before the visible button."""
    page = phone(browser)
    page.goto(f"{served.url}/register?lang=en")
    _fill_registration(page, "Banat Soft", "enter@banat.example.rs", "sr", "Razvoj softvera.", "Tražimo partnere.")
    page.focus("#contacts-0-email")
    page.keyboard.press("Enter")
    page.wait_for_selector("#save")
    assert page.locator("#contacts-1-name").count() == 0
    page.fill("#name", "Banat Soft d.o.o.")
    page.focus("#name")
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash")
    page.reload()
    assert page.input_value("#name") == "Banat Soft d.o.o." and page.locator("#contacts-1-name").count() == 0


def test_a_refused_form_opens_at_its_list_of_mistakes_and_says_so_in_its_title(served, browser):
    page = phone(browser)
    page.goto(f"{served.url}/register?lang=en")
    page.fill("#name", "Banat Soft")
    page.click("#register")
    page.wait_for_selector("#error-summary")
    assert page.title().startswith("Please correct the marked fields. · Register your organisation")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('#error-summary') !== null"), "its first link next"
    check(page, "register-refused")
