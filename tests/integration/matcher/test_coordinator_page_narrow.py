"""The coordinators' page on a phone: at 390 px nothing scrolls sideways (it was 749 px wide), on
the queue, a pair and the decided history, with long names and reasons in several scripts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from partnermatch.languages import READER_LANGUAGES
from services.matcher.adapters.redis_state import PairWrite, ProfileChange

from .conftest import PASSWORD, ServerThread, seed_profile

pytestmark = [pytest.mark.integration, pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTH = 390
# Elements that stick out of their card (a grid column too narrow for its words does, without
# making the page wider).
_OUTSIDE_CARDS = """() => [...document.querySelectorAll('article.pair')].flatMap(card => {
  const edge = card.getBoundingClientRect().right;
  return [...card.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > edge + 0.5)
    .map(e => e.tagName + ' ' + e.textContent.trim().slice(0, 40));
})"""

# the words of the matched elements that the layout split over two lines
_WORDS_BROKEN = """(selector) => [...document.querySelectorAll(selector)].flatMap(cell => {
  const text = cell.firstChild;
  if (!text || text.nodeType !== Node.TEXT_NODE) return [];
  const found = [];
  for (const m of text.data.matchAll(/\\S+/g)) {
    const range = document.createRange();
    range.setStart(text, m.index);
    range.setEnd(text, m.index + m[0].length);
    if (range.getClientRects().length > 1) found.push(m[0]);
  }
  return found;
})"""


def _org(state, org_id, cluster, country, lang, name, caps, goals):
    seed_profile(state, org_id, cluster, country, lang, name, caps=caps, goals=goals)


@pytest.fixture
def long_pending(matcher_state):
    _org(
        matcher_state,
        "org_pl",
        "pl-silesia-ict",
        "PL",
        "pl",
        "Śląskie Stowarzyszenie Producentów Oprogramowania Rolniczego i Spożywczego",
        "Tworzenie oprogramowania dla gospodarstw, chmura, szkolenia informatyczne.",
        "Partnerzy z rolnictwa i przetwórstwa spożywczego.",
    )
    _org(
        matcher_state,
        "org_rs",
        "rs-vojvodina-ict",
        "RS",
        "sr",
        "Војвођанска воћарска и повртарска задруга произвођача органске хране",
        "Прерада воћа и поврћа, хладњаче, органска производња.",
        "Тражимо софтвер за праћење производње и следљивост.",
    )
    reason = {
        "concept": "ict.software",
        "kind": "activity",
        "direction": "a_offers_b_seeks",
        "weight": 0.4,
        "terms_a": ["oprogramowania", "informatycznych-rozwiązań-dla-przetwórstwa"],
        "terms_b": ["софтвер", "праћење-производње-и-следљивост"],
    }
    matcher_state.apply(
        ProfileChange(
            "seed",
            1,
            None,
            upserts=[
                PairWrite("org_pl~org_rs", "org_pl", "org_rs", "pl-silesia-ict", "rs-vojvodina-ict", 0.7, [reason])
            ],
        )
    )


def test_the_coordinators_page_does_not_scroll_sideways_on_a_phone(matcher_app, long_pending):
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    served = ServerThread(matcher_app)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            try:
                page = browser.new_page(viewport={"width": WIDTH, "height": 844})
                page.goto(f"{served.url}/login?lang=sr-Cyrl")
                broken: dict[str, list[str]] = {}
                widths = {"login": page.evaluate("document.documentElement.scrollWidth")}
                page.fill("input[name=username]", "anna")
                page.fill("input[name=password]", PASSWORD)
                page.click("#login")
                page.wait_for_selector("article.pair")
                page.wait_for_load_state("load")
                widths["queue"] = page.evaluate("document.documentElement.scrollWidth")
                # every filter field ends where its label does: text fields and lists line up
                sticking_out = page.evaluate(
                    """() => [...document.querySelectorAll('form.filters label > input, form.filters label > select')]
                        .filter(f => f.getBoundingClientRect().right
                                     > f.parentElement.getBoundingClientRect().right + 0.5)
                        .map(f => f.name)"""
                )
                assert sticking_out == [], sticking_out
                page.screenshot(path=str(ARTIFACTS / "coordinator-queue-390.png"), full_page=True)
                page.click("article.pair h2 a")
                page.wait_for_selector(".profiles")
                page.wait_for_load_state("load")
                widths["pair"] = page.evaluate("document.documentElement.scrollWidth")
                outside = page.evaluate(_OUTSIDE_CARDS)
                page.screenshot(path=str(ARTIFACTS / "coordinator-pair-390.png"), full_page=True)
                page.click("#nav-history")
                page.wait_for_url("**/history**")
                page.wait_for_load_state("load")  # measured unstyled, the page was wider (459 px) once
                widths["history"] = page.evaluate("document.documentElement.scrollWidth")
                page.click("#nav-analytics")
                page.wait_for_selector("figure.chart svg")
                page.wait_for_load_state("load")
                widths["figures"] = page.evaluate("document.documentElement.scrollWidth")
                page.screenshot(path=str(ARTIFACTS / "coordinator-figures-390.png"), full_page=True)
                # the week table's headers break between words, never inside one: in every
                # language the page reads, its columns fit 390 px
                for lang in READER_LANGUAGES:
                    page.goto(f"{served.url}/analytics?lang={lang}")
                    page.wait_for_load_state("load")
                    widths[f"figures {lang}"] = page.evaluate("document.documentElement.scrollWidth")
                    broken[lang] = page.evaluate(_WORDS_BROKEN, "table.weeks th")
            finally:
                browser.close()
    finally:
        served.stop()
    assert all(width <= WIDTH for width in widths.values()), widths
    assert {lang: words for lang, words in broken.items() if words} == {}, "words split over two lines"
    assert outside == []
