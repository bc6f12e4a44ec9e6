"""The coordinators' page in a real headless Chromium (Debian's, driven by Playwright), plus the
page's protections checked over plain HTTP."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.matcher.adapters.redis_state import PairWrite, ProfileChange

from .conftest import PASSWORD, ServerThread

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _org(state, org_id, cluster, country, lang, name, caps, goals):
    state.apply(ProfileChange(org_id, 1, {"org_id": org_id, "name": name, "cluster_id": cluster, "country": country,
                                          "language": lang, "capabilities": caps, "goals": goals, "sectors": [],
                                          "website": None}))


@pytest.fixture
def two_pending(matcher_state):
    _org(matcher_state, "org_pl", "pl-silesia-ict", "PL", "pl", "Śląski Klaster ICT",
         "Tworzenie oprogramowania, chmura, szkolenia informatyczne.", "Partnerzy z rolnictwa.")
    _org(matcher_state, "org_rs", "rs-vojvodina-ict", "RS", "sr", "Војвођанска воћарска задруга",
         "Прерада воћа и поврћа.", "Тражимо софтвер за праћење производње.")
    _org(matcher_state, "org_al", "al-tirana-creative", "AL", "sq", "Qendra Kreative Tirana",
         "Dizajn grafik dhe video.", "Partnerë për lojëra digjitale.")
    reason = {"concept": "ict.software", "kind": "activity", "direction": "a_offers_b_seeks", "weight": 0.4,
              "terms_a": ["oprogramowania"], "terms_b": ["софтвер"]}
    for other, cluster, score in (("org_rs", "rs-vojvodina-ict", 0.7), ("org_al", "al-tirana-creative", 0.4)):
        org_a, org_b = sorted(("org_pl", other))
        matcher_state.apply(ProfileChange(f"seed-{other}", 1, None, upserts=[PairWrite(
            f"{org_a}~{org_b}", org_a, org_b, "pl-silesia-ict" if org_a == "org_pl" else cluster,
            cluster if org_a == "org_pl" else "pl-silesia-ict", score,
            [reason if org_a == "org_pl" else {**reason, "direction": "b_offers_a_seeks",
                                                "terms_a": reason["terms_b"], "terms_b": reason["terms_a"]}])]))


@pytest.fixture
def served(matcher_app):
    server = ServerThread(matcher_app)
    yield server
    server.stop()


@pytest.mark.browser
def test_a_coordinator_logs_in_approves_one_match_and_rejects_another_in_a_real_browser(
    served, two_pending, matcher_state
):
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            page.goto(f"{served.url}/login?lang=pl")
            page.fill("input[name=username]", "anna")
            page.fill("input[name=password]", PASSWORD)
            page.click("#login")
            page.wait_for_selector("article.pair")
            assert page.locator("article.pair").count() == 2
            assert "Co Śląski Klaster ICT oferuje" in page.content()
            page.screenshot(path=str(ARTIFACTS / "coordinator-queue.png"), full_page=True)

            page.locator("article[data-pair='org_pl~org_rs'] button.approve").click()
            page.wait_for_selector(".flash")
            al = page.locator("article[data-pair='org_al~org_pl']")
            al.locator("select[name=reason_code]").select_option("different_markets")
            al.locator("input[name=reason_text]").fill("Inny profil działalności")
            al.locator("button.reject").click()
            page.wait_for_selector(".flash")

            page.click("#nav-history")
            page.wait_for_selector("article.pair")
            page.screenshot(path=str(ARTIFACTS / "coordinator-history.png"), full_page=True)
            cookies = {c["name"]: c for c in page.context.cookies()}
        finally:
            browser.close()
    assert matcher_state.get_pair("org_al~org_pl")["state"] == "rejected"
    assert matcher_state.get_pair("org_al~org_pl")["decisions"]["pl-silesia-ict"]["reason_code"] == "different_markets"
    rs_pair = matcher_state.get_pair("org_pl~org_rs")
    assert rs_pair["state"] == "pending" and rs_pair["decisions"]["pl-silesia-ict"]["decision"] == "approve"
    assert cookies["pm_session"]["httpOnly"] is True and cookies["pm_session"]["sameSite"] == "Lax"


def _login(client):
    page = client.get("/login")
    csrf = page.get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]
    r = client.post("/login", data={"username": "anna", "password": PASSWORD, "csrf": csrf})
    assert r.status_code == 302
    return csrf


def test_a_form_post_without_the_csrf_token_is_refused(matcher_app, two_pending, matcher_state):
    client = matcher_app.test_client()
    csrf = _login(client)
    r = client.post("/pairs/org_pl~org_rs/decide", data={"decision": "approve"})
    assert r.status_code == 400
    r = client.post("/pairs/org_pl~org_rs/decide", data={"decision": "approve", "csrf": csrf + "x"})
    assert r.status_code == 400
    assert matcher_state.get_pair("org_pl~org_rs")["decisions"] == {}


def test_pages_send_security_headers_and_a_hardened_cookie(matcher_app, two_pending):
    client = matcher_app.test_client()
    r = client.get("/login")
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    cookie = r.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_wrong_password_shows_an_error_and_no_queue(matcher_app, two_pending):
    client = matcher_app.test_client()
    page = client.get("/login?lang=sr-Cyrl")
    csrf = page.get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]
    r = client.post("/login", data={"username": "anna", "password": "nope nope nope", "csrf": csrf})
    assert r.status_code == 401 and "Погрешно" in r.get_data(as_text=True)
    assert client.get("/queue").status_code == 302


def test_a_coordinator_never_sees_another_clusters_pair_on_the_page(matcher_app, two_pending):
    client = matcher_app.test_client()
    page = client.get("/login")
    csrf = page.get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]
    client.post("/login", data={"username": "besa", "password": PASSWORD, "csrf": csrf})
    assert client.get("/pairs/org_pl~org_rs").status_code == 404
    assert "org_pl~org_rs" not in client.get("/queue").get_data(as_text=True)
