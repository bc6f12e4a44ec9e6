"""An organisation's own pages in a real browser (Debian's Chromium driven by Playwright) against the
whole system on loopback: profiles under gunicorn with its relay, the real matcher and review app,
the notifier and the mail sink. Register in Serbian Cyrillic → sign in by the emailed link → edit →
a suggestion appears under "my partnerships" → both coordinators approve → the partner with its
shared contact → download my data → delete, after which the address gets no sign-in link."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.browser import check, chromium, phone
from tests.helpers import wait_until

from .conftest import call, mails

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
PASSWORD = "coordinator password e2e pages"
ICT, FOOD = "rs-vojvodina-ict", "pl-podlasie-food"
MARIJA = "marija.stankovic@datapolje.example.rs"
KATARZYNA = "katarzyna.wisniewska@mleczarnia.example.pl"
NOBODY = "nikola@nepoznato.example.rs"
NO_CONTACT = "sign-in link asked for an address of no contact person"


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    # INFO, so the profiles log says when a sign-in request for an unknown address was handled
    return {"LOG_LEVEL": "INFO"}


@pytest.fixture(scope="module")
def browser():
    # module-scoped and asked for first, so a missing Chromium or axe-core skips before the stack starts
    with chromium() as launched:
        yield launched


def _mails_to(system, address: str) -> list:
    return [m for m in mails(system.mail) if m["To"].addresses[0].addr_spec == address]


def _text(mail) -> str:
    return mail.get_body(("plain",)).get_content()


def _no_contact_answers(system) -> int:
    return (system.state / "logs" / "profiles.log").read_text(encoding="utf-8").count(NO_CONTACT)


def _ask_for_link(page, profiles: str, address: str) -> str:
    page.goto(f"{profiles}/signin?lang=sr-Cyrl")
    page.fill("#email", address)
    page.click("#send-link")
    page.wait_for_selector("#sent")
    return page.inner_text("#sent").replace(address, "<address>")


def test_an_organisation_registers_in_serbian_cyrillic_meets_its_approved_partner_and_leaves(browser, system):
    profiles, review = system.urls["profiles"], system.urls["review"]
    admin = system.env["PARTNERMATCH_ADMIN_TOKEN"]
    for cluster, name, country, coordinator, lang in (
        (ICT, "ИКТ кластер Војводине", "RS", "dragana", "sr-Cyrl"),
        (FOOD, "Podlaski Klaster Spożywczy", "PL", "tomasz", "pl"),
    ):
        assert (
            call("POST", f"{profiles}/v1/clusters", {"id": cluster, "name": name, "country": country}, admin)[0] == 201
        )
        assert (
            call(
                "POST",
                f"{profiles}/v1/clusters/{cluster}/coordinators",
                {
                    "username": coordinator,
                    "password": PASSWORD,
                    "name": coordinator.title(),
                    "email": f"{coordinator}@coordinators.example.org",
                    "language": lang,
                },
                admin,
            )[0]
            == 201
        )

    # register organisation A through the page, in Serbian Cyrillic
    page = phone(browser)
    page.goto(f"{profiles}/?lang=sr-Cyrl")
    page.click("#start-register")
    page.wait_for_selector("#register")
    page.fill("#name", "ДатаПоље д.о.о.")
    page.select_option("#cluster_id", ICT)
    page.select_option("#country", "RS")
    page.fill(
        "#capabilities",
        "Развијамо софтвер по мери, веб и мобилне апликације и системе за праћење "
        "производње и следљивост. Тим од 25 програмера, искуство са IoT сензорима "
        "и повезивањем са ERP системима.",
    )
    page.fill(
        "#goals",
        "Тражимо партнере из агро-прехрамбеног сектора: млекаре, прерађиваче воћа и поврћа "
        "и задруге којима треба дигитализација производње, за заједничке пројекте.",
    )
    # the language changed halfway: the form comes back in Polish with what was typed, then in
    # Serbian again
    for lang in ("pl", "sr-Cyrl"):
        page.click("header .langs summary")
        with page.expect_navigation():
            page.click(f"header .langs button[value={lang}]")
        assert page.get_attribute("html", "lang") == lang and page.input_value("#name") == "ДатаПоље д.о.о."
        assert page.input_value("#cluster_id") == ICT and page.input_value("#goals").startswith("Тражимо партнере")
    assert "Zarejestruj" not in page.inner_text("#register")
    page.click("header .langs summary")  # open: its buttons look and measure as links would
    check(page, "e2e-register-languages-sr-Cyrl")
    page.click("header .langs summary")
    page.locator("#seeks details").filter(has=page.locator("input[value=agrifood]")).locator("summary").click()
    page.check("#seeks input[value=agrifood]")
    page.fill("#contacts-0-name", "Марија Станковић")
    page.fill("#contacts-0-email", MARIJA)
    page.select_option("#contacts-0-language", "sr-Cyrl")
    page.check("input[name=contacts-0-consent]")
    page.check("input[name=contacts-0-share_contact]")
    check(page, "e2e-register-sr-Cyrl")
    page.click("#register")
    page.wait_for_selector("#save")

    # sign out, sign in by the link the mail sink kept
    page.click("#signout")
    page.wait_for_selector("#start-signin")
    _ask_for_link(page, profiles, MARIJA)
    [signin_mail] = wait_until(lambda: _mails_to(system, MARIJA), timeout=20, message="the sign-in email")
    assert signin_mail["Content-Language"] == "sr-Cyrl"
    link = re.findall(r"https?://\S+/signin/\S+", _text(signin_mail))[-1]
    assert link.startswith(f"{profiles}/signin/")
    page.goto(link)
    page.click("#confirm-signin")
    page.wait_for_selector("#save")
    assert page.input_value("#name") == "ДатаПоље д.о.о."

    # edit: the website and a sharper goal
    page.fill("#website", "https://datapolje.example.rs")
    page.fill("#goals", page.input_value("#goals") + " Посебно нас занимају млекаре из Пољске.")
    page.click("#save")
    page.wait_for_selector(".flash")
    assert page.inner_text(".flash") == "Сачувано."
    assert page.input_value("#website") == "https://datapolje.example.rs"

    # organisation B, in another cluster, through the API
    status, created = call(
        "POST",
        f"{profiles}/v1/organisations",
        {
            "name": "Mleczarnia Podlaska",
            "cluster_id": FOOD,
            "country": "PL",
            "language": "pl",
            "capabilities": "Przetwarzamy mleko od 1200 rolników: sery dojrzewające, jogurty i masło; mamy własne "
            "laboratorium jakości i chłodnie.",
            "goals": "Szukamy firmy informatycznej, która wdroży oprogramowanie do śledzenia produkcji i "
            "identyfikowalności partii mleka od rolnika do sklepu.",
            "website": "https://mleczarnia.example.pl",
            "contacts": [
                {
                    "name": "Katarzyna Wiśniewska",
                    "email": KATARZYNA,
                    "language": "pl",
                    "consent": True,
                    "share_contact": True,
                }
            ],
        },
    )
    assert status == 201
    partner_id = created["organisation"]["id"]

    def partnership(state: str):
        page.goto(f"{profiles}/partnerships")
        found = page.locator(f"article.partnership.state-{state}")
        return found if found.count() == 1 else None

    waiting = wait_until(
        lambda: partnership("waiting"), timeout=60, interval=0.5, message="the suggestion on 'my partnerships'"
    )
    pair_id = waiting.get_attribute("data-pair")
    assert partner_id in pair_id.split("~")
    assert "Mleczarnia Podlaska" in waiting.inner_text() and "Чека координаторе" in waiting.inner_text()
    assert waiting.locator(".meta").inner_text() == "Пољска · Podlaski Klaster Spożywczy"
    assert KATARZYNA not in page.content(), "no partner's contact before both coordinators approve"
    reason = waiting.locator(".reason").inner_text()
    assert " тражи: " in reason and " нуди " in reason, reason  # the need met, as a Cyrillic sentence
    assert "poljoprivreda" not in reason, reason  # A's sought sector stands in A's script
    check(page, "e2e-partnerships-waiting-sr-Cyrl")

    for who in ("dragana", "tomasz"):
        status, session = call("POST", f"{profiles}/v1/auth/login", {"username": who, "password": PASSWORD})
        assert status == 200
        assert (
            call("POST", f"{review}/v1/suggestions/{pair_id}/decision", {"decision": "approve"}, session["token"])[0]
            == 200
        )

    approved = wait_until(
        lambda: partnership("approved"),
        timeout=20,
        interval=0.5,
        message="the approved partnership on 'my partnerships'",
    )
    shown = approved.inner_text()
    assert "Mleczarnia Podlaska" in shown and "Одобрили координатори оба кластера" in shown
    assert "Katarzyna Wiśniewska" in shown
    assert approved.locator(f'a[href="mailto:{KATARZYNA}"]').count() == 1
    assert approved.locator('a[href="https://mleczarnia.example.pl"]').count() == 1
    check(page, "e2e-partnerships-approved-sr-Cyrl")

    # the partnership email names the partner's shared contact and links to "my partnerships"
    told = wait_until(
        lambda: [m for m in _mails_to(system, MARIJA) if "Mleczarnia Podlaska" in _text(m)],
        timeout=30,
        message="the partnership email to A's contact",
    )
    assert KATARZYNA in _text(told[0]) and f"{profiles}/partnerships" in _text(told[0])

    # download my data
    page.goto(f"{profiles}/profile")
    with page.expect_download() as download:
        page.click("#download")
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    organisation = exported["organisation"]
    assert organisation["name"] == "ДатаПоље д.о.о." and organisation["website"] == "https://datapolje.example.rs"
    assert organisation["goals"].endswith("млекаре из Пољске.") and organisation["id"] in pair_id.split("~")
    [contact] = organisation["contacts"]
    assert (contact["name"], contact["email"], contact["consent"], contact["share_contact"]) == (
        "Марија Станковић",
        MARIJA,
        True,
        True,
    )

    # delete, after the confirmation
    page.click("#delete")
    page.wait_for_selector("#confirm-delete")
    check(page, "e2e-delete-sr-Cyrl")
    page.check("#confirm")
    page.click("#confirm-delete")
    page.wait_for_selector("#start-register")
    assert "обрисани" in page.inner_text(".flash")
    assert call("GET", f"{profiles}/v1/organisations/{organisation['id']}")[0] == 404

    # the address no longer signs in: the same neutral answer as for an address never registered, no mail
    mails_before = len(_mails_to(system, MARIJA))
    assert _ask_for_link(page, profiles, MARIJA) == _ask_for_link(page, profiles, NOBODY)
    wait_until(
        lambda: _no_contact_answers(system) >= 2,
        timeout=20,
        message="both sign-in requests handled as addresses of nobody",
    )
    assert len(_mails_to(system, MARIJA)) == mails_before
    assert _mails_to(system, NOBODY) == []
