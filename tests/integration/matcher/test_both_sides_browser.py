"""Both clusters' coordinators in real browsers (Debian's Chromium through Playwright, 390 px each):
one side's approval is on the other side's card before it decides; the rejection that follows,
with its reason and comment, is in both histories; the figures page and the downloaded CSV say
what was decided. Every page fits the phone and passes axe-core."""

from __future__ import annotations

import csv
import io

import pytest

from services.matcher.adapters.redis_state import PairWrite, ProfileChange
from tests.browser import check, chromium, phone

from .conftest import PASSWORD, ServerThread, seed_profile

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _org(state, org_id, cluster, country, lang, name):
    seed_profile(
        state, org_id, cluster, country, lang, name, caps="Tworzenie oprogramowania.", goals="Partnerzy z rolnictwa."
    )


@pytest.fixture
def two_pairs(matcher_state):
    """org_pl (anna's cluster) suggested with org_al (besa's) and with org_rs (marko's)."""
    _org(matcher_state, "org_pl", "pl-silesia-ict", "PL", "pl", "Śląski Klaster ICT")
    _org(matcher_state, "org_al", "al-tirana-creative", "AL", "sq", "Qendra Kreative Tirana")
    _org(matcher_state, "org_rs", "rs-vojvodina-ict", "RS", "sr", "Војвођанска воћарска задруга")
    reason = {
        "concept": "ict.software",
        "kind": "activity",
        "weight": 0.4,
        "terms_a": ["oprogramowania"],
        "terms_b": ["softuer"],
    }
    matcher_state.apply(
        ProfileChange(
            "seed",
            1,
            None,
            upserts=[
                PairWrite(
                    "org_al~org_pl",
                    "org_al",
                    "org_pl",
                    "al-tirana-creative",
                    "pl-silesia-ict",
                    0.6,
                    [
                        {
                            **reason,
                            "direction": "b_offers_a_seeks",
                            "terms_a": ["softuer"],
                            "terms_b": ["oprogramowania"],
                        }
                    ],
                ),
                PairWrite(
                    "org_pl~org_rs",
                    "org_pl",
                    "org_rs",
                    "pl-silesia-ict",
                    "rs-vojvodina-ict",
                    0.7,
                    [{**reason, "direction": "a_offers_b_seeks"}],
                ),
            ],
        )
    )


def _sign_in(page, url: str, username: str, lang: str) -> None:
    page.goto(f"{url}/login?lang={lang}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.wait_for_selector("article.pair")


def _approve(page, pair_id: str) -> None:
    page.locator(f"article[data-pair='{pair_id}'] button.approve").click()
    page.wait_for_selector(".flash")


def test_each_side_sees_the_others_approval_and_rejection_and_the_figures_and_csv_agree(
    matcher_app, two_pairs, matcher_state
):
    served = ServerThread(matcher_app)
    try:
        with chromium() as browser:
            anna, besa, marko = phone(browser), phone(browser), phone(browser)  # three separate sessions
            _sign_in(anna, served.url, "anna", "pl")
            _approve(anna, "org_al~org_pl")
            _approve(anna, "org_pl~org_rs")

            _sign_in(besa, served.url, "besa", "en")
            card = besa.locator("article[data-pair='org_al~org_pl']")
            assert "Silesia ICT Cluster approved (anna, " in card.inner_text()  # before besa decides
            assert "Tirana Creative Hub has not decided yet." in card.inner_text()
            check(besa, "coordinator-other-side-approved")
            card.locator("button.reject").click()  # no reason chosen: the browser keeps the form
            assert matcher_state.get_pair("org_al~org_pl")["state"] == "pending"
            card.locator("select[name=reason_code]").select_option("no_capacity")
            card.locator("input[name=reason_text]").fill("Full until June")
            card.locator("button.reject").click()
            besa.wait_for_selector(".flash")
            besa.click("#nav-history")
            besa.wait_for_selector("article.pair")
            seen_by_besa = besa.locator("article[data-pair='org_al~org_pl']").inner_text()
            assert "Tirana Creative Hub rejected (besa, " in seen_by_besa and "No capacity now" in seen_by_besa
            assert "Silesia ICT Cluster approved (anna, " in seen_by_besa and "Full until June" in seen_by_besa
            check(besa, "coordinator-history-both-sides")

            _sign_in(marko, served.url, "marko", "en")
            _approve(marko, "org_pl~org_rs")

            anna.click("#nav-history")
            anna.wait_for_selector("article[data-pair='org_al~org_pl']")
            seen_by_anna = anna.locator("article[data-pair='org_al~org_pl']").inner_text()
            assert "Tirana Creative Hub odrzucił (besa, " in seen_by_anna and "Obecnie brak możliwości" in seen_by_anna
            assert "Full until June" in seen_by_anna and "Silesia ICT Cluster zatwierdził (anna, " in seen_by_anna
            assert (
                "Vojvođanski IKT klaster zatwierdził (marko, "
                in anna.locator("article[data-pair='org_pl~org_rs']").inner_text()
            )
            check(anna, "coordinator-history-pl")

            anna.goto(f"{served.url}/analytics?lang=en")
            figures = {
                row.locator("th").inner_text(): row.locator("td").inner_text()
                for row in anna.locator("table.figures tr").all()
            }
            check(anna, "coordinator-figures-decided")
            with anna.expect_download() as download:
                anna.click("text=Download the history (CSV)")
            exported = list(csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    finally:
        served.stop()
    assert figures["Suggestions made"] == "2" and figures["Waiting for a decision"] == "0"
    assert figures["approved"] == "1" and figures["rejected"] == "1" and figures["No capacity now"] == "1"
    assert figures["Acceptance rate"] == "50%"
    rows = {row["pair_id"]: row for row in exported}
    assert set(rows) == {"org_al~org_pl", "org_pl~org_rs"}
    assert (
        rows["org_al~org_pl"]["state"],
        rows["org_al~org_pl"]["own_decision"],
        rows["org_al~org_pl"]["partner_decision"],
        rows["org_al~org_pl"]["partner_coordinator"],
        rows["org_al~org_pl"]["partner_reason"],
        rows["org_al~org_pl"]["partner_comment"],
    ) == ("rejected", "approve", "reject", "besa", "no_capacity", "Full until June")
    assert (
        rows["org_pl~org_rs"]["state"],
        rows["org_pl~org_rs"]["own_coordinator"],
        rows["org_pl~org_rs"]["partner_coordinator"],
    ) == ("approved", "anna", "marko")
