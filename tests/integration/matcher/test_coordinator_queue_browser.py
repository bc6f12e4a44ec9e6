"""The coordinators' whole queue in a real browser (Debian's Chromium through Playwright): 120
suggestions paged through to the end, a country filter and a name search from the form, at 390 px
without sideways scrolling and without serious accessibility violations."""

from __future__ import annotations

import pytest

from services.matcher.adapters.redis_state import PairWrite, ProfileChange
from tests.browser import _AXE_RUN, ARTIFACTS, AXE, WIDTH, chromium, phone

from .conftest import PASSWORD, ServerThread

pytestmark = [pytest.mark.integration, pytest.mark.browser]
COUNTRIES = ("RS", "AL", "ME", "RO", "HU", "BG")


@pytest.fixture
def hundred_and_twenty(matcher_state):
    def org(org_id, cluster, country, lang, name):
        matcher_state.apply(
            ProfileChange(
                org_id,
                1,
                {
                    "org_id": org_id,
                    "name": name,
                    "cluster_id": cluster,
                    "country": country,
                    "language": lang,
                    "capabilities": "Usługi IT.",
                    "goals": "Partnerzy.",
                    "sectors": [],
                    "website": None,
                },
            )
        )

    org("org_pl", "pl-silesia-ict", "PL", "pl", "Śląski Klaster ICT")
    reason = {
        "concept": "ict.software",
        "kind": "activity",
        "direction": "a_offers_b_seeks",
        "weight": 0.3,
        "terms_a": ["oprogramowanie"],
        "terms_b": ["softver"],
    }
    for i in range(120):
        other, country = f"org_{i:03d}", COUNTRIES[i % len(COUNTRIES)]
        name = "Војвођанска воћарска задруга" if i == 77 else f"Partner {i:03d} {country}"
        org(other, f"cluster-{country.lower()}", country, "sr" if i == 77 else "en", name)
        a, b = sorted(("org_pl", other))
        clusters = (
            ("pl-silesia-ict", f"cluster-{country.lower()}")
            if a == "org_pl"
            else (f"cluster-{country.lower()}", "pl-silesia-ict")
        )
        direction = "a_offers_b_seeks" if a == "org_pl" else "b_offers_a_seeks"
        matcher_state.apply(
            ProfileChange(
                f"seed-{other}",
                1,
                None,
                upserts=[
                    PairWrite(
                        f"{a}~{b}", a, b, *clusters, round(0.95 - i * 0.005, 3), [{**reason, "direction": direction}]
                    )
                ],
            )
        )


def _fits_and_passes_axe(page, name: str) -> None:
    page.wait_for_load_state("load")  # with its stylesheet: measured before it, a page is wider
    page.screenshot(path=str(ARTIFACTS / f"coordinator-{name}-390.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, f"{name} scrolls sideways"
    page.evaluate(AXE.read_text(encoding="utf-8"))
    assert page.evaluate(_AXE_RUN) == [], f"{name}: axe-core"


def test_a_coordinator_pages_through_120_suggestions_filters_by_country_and_searches_a_name(
    matcher_app, hundred_and_twenty
):
    served = ServerThread(matcher_app)
    try:
        with chromium() as browser:
            page = phone(browser)
            page.goto(f"{served.url}/login?lang=en")
            page.fill("input[name=username]", "anna")
            page.fill("input[name=password]", PASSWORD)
            page.click("#login")
            page.wait_for_selector("p.total")
            assert "Suggestions found: 120" in page.inner_text("p.total")
            _fits_and_passes_axe(page, "queue-page-1")
            # the first Tab reaches a link past the header and the filters, to the suggestions
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.className") == "skip"
            page.keyboard.press("Enter")
            assert page.evaluate("document.activeElement.id") == "results"
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.hasAttribute('download')"), "the total's CSV link"
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.closest('article.pair') !== null"), "then the first pair"
            seen: list[str] = []
            for number in range(1, 7):
                assert f"Page {number} of 6" in page.inner_text("nav.pager")
                seen += [a.get_attribute("data-pair") for a in page.query_selector_all("article.pair")]
                if number < 6:
                    page.click("a[rel=next]")
                    page.wait_for_url(f"**page={number + 1}**")
            assert len(seen) == len(set(seen)) == 120
            page.select_option("select[name=country]", "ME")  # listed by name: "Montenegro"
            assert page.inner_text("select[name=country] option:checked") == "Montenegro"
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**country=ME**")
            assert "Suggestions found: 20" in page.inner_text("p.total")
            metas = [m.inner_text() for m in page.query_selector_all("article.pair p.meta")]
            assert len(metas) == 20 and all(m.startswith("Montenegro ·") for m in metas)
            _fits_and_passes_axe(page, "queue-filtered")
            page.goto(f"{served.url}/queue?lang=en")
            page.fill("input[name=q]", "vojvod")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**q=vojvod**")
            assert "Suggestions found: 1" in page.inner_text("p.total")
            assert "Војвођанска" in page.inner_text("article.pair h2")
    finally:
        served.stop()
