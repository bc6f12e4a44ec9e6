"""The coordinators' page in a real headless Chromium (Debian's, driven by Playwright), plus the
page's protections checked over plain HTTP."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from services.matcher.adapters.profiles_client import ProfilesAuthClient
from services.matcher.adapters.redis_state import PairWrite, ProfileChange

from .conftest import ADMIN, PASSWORD, ServerThread, seed_profile

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _org(state, org_id, cluster, country, lang, name, caps, goals):
    seed_profile(state, org_id, cluster, country, lang, name, caps=caps, goals=goals)


@pytest.fixture
def two_pending(matcher_state):
    _org(
        matcher_state,
        "org_pl",
        "pl-silesia-ict",
        "PL",
        "pl",
        "Śląski Klaster ICT",
        "Tworzenie oprogramowania, chmura, szkolenia informatyczne.",
        "Partnerzy z rolnictwa.",
    )
    _org(
        matcher_state,
        "org_rs",
        "rs-vojvodina-ict",
        "RS",
        "sr",
        "Војвођанска воћарска задруга",
        "Прерада воћа и поврћа.",
        "Тражимо софтвер за праћење производње.",
    )
    _org(
        matcher_state,
        "org_al",
        "al-tirana-creative",
        "AL",
        "sq",
        "Qendra Kreative Tirana",
        "Dizajn grafik dhe video.",
        "Partnerë për lojëra digjitale.",
    )
    reason = {
        "concept": "ict.software",
        "kind": "activity",
        "direction": "a_offers_b_seeks",
        "weight": 0.4,
        "terms_a": ["oprogramowania"],
        "terms_b": ["софтвер"],
    }
    for other, cluster, score in (("org_rs", "rs-vojvodina-ict", 0.7), ("org_al", "al-tirana-creative", 0.4)):
        org_a, org_b = sorted(("org_pl", other))
        matcher_state.apply(
            ProfileChange(
                f"seed-{other}",
                1,
                None,
                upserts=[
                    PairWrite(
                        f"{org_a}~{org_b}",
                        org_a,
                        org_b,
                        "pl-silesia-ict" if org_a == "org_pl" else cluster,
                        cluster if org_a == "org_pl" else "pl-silesia-ict",
                        score,
                        [
                            reason
                            if org_a == "org_pl"
                            else {
                                **reason,
                                "direction": "b_offers_a_seeks",
                                "terms_a": reason["terms_b"],
                                "terms_b": reason["terms_a"],
                            }
                        ],
                    )
                ],
            )
        )


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


def _csrf(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def _login(client, username: str = "anna"):
    """Log anna (or another) in; the form token of her new session (a login issues a new one)."""
    csrf = _csrf(client.get("/login").get_data(as_text=True))
    r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": csrf})
    assert r.status_code == 302
    after = _csrf(client.get("/queue").get_data(as_text=True))
    assert after != csrf
    return after


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


def test_the_page_opens_in_the_browsers_language(matcher_app, two_pending):
    client = matcher_app.test_client()
    page = client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.8"}).get_data(as_text=True)
    assert '<html lang="de">' in page
    assert "<title>Partnerschaftsvorschläge · partnermatch</title>" in page
    assert "Benutzername" in page and "Passwort" in page and ">Anmelden</button>" in page
    for accept, lang, username in (
        ("sr-Latn-RS,sr;q=0.9", "sr", "Korisničko ime"),
        ("sr-Cyrl-RS", "sr-Cyrl", "Корисничко име"),
        ("uk,ru;q=0.8", "uk", "Ім’я користувача"),
        ("fr-FR,fr;q=0.9", "en", "Username"),
    ):
        page = client.get("/login", headers={"Accept-Language": accept}).get_data(as_text=True)
        assert f'<html lang="{lang}">' in page and username in page, accept


def test_the_switcher_offers_every_language_by_its_native_name_and_remembers_the_choice(matcher_app, two_pending):
    client = matcher_app.test_client()
    r = client.get("/login?lang=uk", headers={"Accept-Language": "de"})
    page = r.get_data(as_text=True)
    switcher = page.split('<nav class="langs"')[1].split("</nav>")[0]
    assert 'aria-label="Мова"' in switcher
    assert switcher.count('<a href="?lang=') == 17
    for code, name in (("pl", "polski"), ("sr-Cyrl", "српски"), ("sq", "shqip"), ("de", "Deutsch"), ("en", "English")):
        assert f'<a href="?lang={code}" lang="{code}" hreflang="{code}">{name}</a>' in switcher
    assert '<a href="?lang=uk" lang="uk" hreflang="uk" aria-current="true">українська</a>' in switcher
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("pm_lang="))
    assert cookie.startswith("pm_lang=uk;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie

    page = client.get("/login", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="uk">' in page and "Ім’я користувача" in page, "the choice outlives the page"


def test_a_coordinator_reviews_and_decides_in_german_from_the_browsers_language(matcher_app, two_pending):
    client = matcher_app.test_client()  # anna stated no language: her pages follow the browser
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de-CH,de;q=0.9"
    csrf = _login(client)
    queue = client.get("/queue").get_data(as_text=True)
    assert "<h1>Offen</h1>" in queue
    assert "Was Śląski Klaster ICT anbietet und Војвођанска воћарска задруга sucht" in queue
    assert '<option value="different_markets">Andere Märkte</option>' in queue
    assert ">Genehmigen</button>" in queue and ">Ablehnen</button>" in queue
    r = client.post("/pairs/org_pl~org_rs/decide", data={"decision": "approve", "csrf": csrf}, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "Ihre Entscheidung ist gespeichert." in page
    assert "wartet auf den anderen Cluster" in page
    r = client.post(
        "/pairs/org_pl~org_rs/decide",
        data={"decision": "reject", "reason_code": "other", "csrf": csrf},
        follow_redirects=True,
    )  # another decision than the one recorded: refused
    assert "Über diesen Vorschlag wurde bereits entschieden." in r.get_data(as_text=True)
    pair = client.get("/pairs/org_pl~org_rs").get_data(as_text=True)
    assert "Beide Profile" in pair and "Zurück zur Liste" in pair and "Land: Polen" in pair


def test_the_history_names_each_state_in_the_readers_language(matcher_app, two_pending):
    client = matcher_app.test_client()
    csrf = _login(client)
    client.post(
        "/pairs/org_al~org_pl/decide?lang=sq", data={"decision": "reject", "reason_code": "no_capacity", "csrf": csrf}
    )
    history = client.get("/history").get_data(as_text=True)
    assert '<html lang="sq">' in history and "<h1>Të vendosura</h1>" in history
    assert '<p class="state state-rejected">refuzuar</p>' in history


def test_no_rejection_reason_is_chosen_for_the_coordinator(matcher_app, two_pending):
    client = matcher_app.test_client()
    _login(client)
    html = client.get("/queue").get_data(as_text=True)
    select = html.split('<select name="reason_code" required>')[1].split("</select>")[0]
    first = select.split("<option")[1]
    assert 'value=""' in first and "selected" in first and "disabled" in first
    assert select.count("selected") == 1


def test_errors_of_the_page_are_pages_in_the_readers_language_never_json(matcher_app, two_pending):
    client = matcher_app.test_client()
    _login(client)
    missing = client.get("/pairs/org_pl~org_nowhere?lang=pl")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "nie istnieje" in missing.get_data(as_text=True)
    refused = client.post("/pairs/org_pl~org_rs/decide", data={"decision": "approve"})  # no CSRF token
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    assert "reload" in refused.get_data(as_text=True) or "odśwież" in refused.get_data(as_text=True)
    # an address no page has ("/queue/", mistyped), in the browser's language, not the API's JSON
    browser = {"Accept": "text/html,*/*;q=0.8", "Accept-Language": "sr-Cyrl-RS,sr;q=0.9"}
    for path in ("/queue/", "/nope"):
        mistyped = matcher_app.test_client().get(path, headers=browser)
        assert mistyped.status_code == 404 and mistyped.mimetype == "text/html", path
        assert "не постоји" in mistyped.get_data(as_text=True), path
    assert client.get("/v1/nothing", headers=browser).json["code"] == 404  # the API's stay JSON


def test_deciding_a_pair_withdrawn_meanwhile_says_so_on_the_queue(matcher_app, two_pending, matcher_state):
    client = matcher_app.test_client()
    csrf = _login(client)
    matcher_state.apply(ProfileChange("org_rs", 2, None, withdrawals=[("org_pl~org_rs", "profile deleted")]))
    r = client.post("/pairs/org_pl~org_rs/decide", data={"decision": "approve", "csrf": csrf}, follow_redirects=True)
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert "no longer waiting for a decision" in r.get_data(as_text=True)
    assert matcher_state.get_pair("org_pl~org_rs") is None, "withdrawn: no record kept, no decision written"


def test_a_deleted_organisation_shows_as_such_in_the_history(matcher_app, two_pending, matcher_state):
    client = matcher_app.test_client()
    csrf = _login(client)
    client.post("/pairs/org_al~org_pl/decide", data={"decision": "reject", "reason_code": "no_capacity", "csrf": csrf})
    matcher_state.apply(ProfileChange("org_al", 2, None))
    history = client.get("/history?lang=en").get_data(as_text=True)
    assert "None" not in history and "deleted organisation" in history
    # neither the history nor the pair's page shows its id, or an empty country, cluster and text
    pair = client.get("/pairs/org_al~org_pl?lang=pl").get_data(as_text=True)
    for page in (history, pair, client.get("/history?lang=pl").get_data(as_text=True)):
        assert "org_al" not in page.replace("org_al~org_pl", "")
        assert "· ·" not in page and '<p class="meta"> ·' not in page
    assert "usunięta organizacja" in pair and pair.count('<p class="meta">') == 1  # the Polish side's only
    # its erased texts are quoted no more in the reasons; the Polish side's words are
    assert "софтвер" not in pair and "oprogramowania" in pair


def test_each_card_shows_both_clusters_decisions_with_who_when_reason_and_comment(matcher_app, two_pending):
    anna = matcher_app.test_client()
    csrf = _login(anna)
    before = anna.get("/pairs/org_al~org_pl?lang=en").get_data(as_text=True)
    assert "Tirana Creative Hub has not decided yet." in before and "Silesia ICT Cluster has not decided yet." in before
    anna.post("/pairs/org_al~org_pl/decide", data={"decision": "approve", "csrf": csrf})
    besa = matcher_app.test_client()
    token = _csrf(besa.get("/login").get_data(as_text=True))
    besa.post("/login", data={"username": "besa", "password": PASSWORD, "csrf": token})
    seen_by_besa = besa.get("/queue?lang=en").get_data(as_text=True)
    token = _csrf(seen_by_besa)
    assert "Silesia ICT Cluster approved (anna, " in seen_by_besa  # the other side's approval, before deciding
    besa.post(
        "/pairs/org_al~org_pl/decide",
        data={"decision": "reject", "reason_code": "no_capacity", "reason_text": "Full until June", "csrf": token},
    )
    seen_by_anna = anna.get("/history?lang=pl").get_data(as_text=True)
    assert "Tirana Creative Hub odrzucił (besa, " in seen_by_anna and "Obecnie brak możliwości" in seen_by_anna
    assert "<q>Full until June</q>" in seen_by_anna
    assert "Silesia ICT Cluster zatwierdził (anna, " in seen_by_anna


def test_a_coordinator_withdraws_an_approval_on_the_page(matcher_app, two_pending, matcher_state):
    client = matcher_app.test_client()
    csrf = _login(client)
    client.post("/pairs/org_pl~org_rs/decide", data={"decision": "approve", "csrf": csrf})
    card = client.get("/queue?lang=en").get_data(as_text=True)
    assert "Withdraw the cluster's approval" in card
    done = client.post("/pairs/org_pl~org_rs/withdraw", data={"csrf": csrf}, follow_redirects=True)
    assert "Your cluster&#39;s approval is withdrawn." in done.get_data(as_text=True)
    assert 'class="flash" role="status">Your cluster&#39;s approval is withdrawn.' in done.get_data(as_text=True)
    assert matcher_state.get_pair("org_pl~org_rs")["decisions"] == {}
    again = client.post("/pairs/org_pl~org_rs/withdraw", data={"csrf": csrf}, follow_redirects=True)
    assert "Your cluster has no approval to withdraw." in again.get_data(as_text=True)
    client.post("/pairs/org_pl~org_rs/decide", data={"decision": "reject", "reason_code": "other", "csrf": csrf})
    final = client.post("/pairs/org_pl~org_rs/withdraw", data={"csrf": csrf}, follow_redirects=True)
    assert "can no longer be withdrawn: the other cluster has decided" in final.get_data(as_text=True)


def test_clusters_are_named_as_profiles_names_them_and_by_their_ids_while_it_cannot_answer(
    matcher_app, two_pending, profiles
):
    anna = matcher_app.test_client()
    _login(anna)
    queue = anna.get("/queue?lang=en").get_data(as_text=True)
    assert "anna · Silesia ICT Cluster" in queue  # her own, beside her name
    assert "Albania · Tirana Creative Hub ·" in queue  # the partner's
    pair = anna.get("/pairs/org_al~org_pl?lang=en").get_data(as_text=True)
    assert "Cluster: Tirana Creative Hub" in pair and "Cluster: Silesia ICT Cluster" in pair
    assert "Country: Albania · Language: shqip" in pair  # names, not codes
    assert "Kraj: Albania" in anna.get("/pairs/org_al~org_pl?lang=pl").get_data(as_text=True)

    # profiles gone: the names read last, or the ids for a client that has read none
    auth = ProfilesAuthClient(profiles.url, names_ttl_s=0)
    assert auth.cluster_names()["al-tirana-creative"] == "Tirana Creative Hub"
    auth.base_url = "http://127.0.0.1:9"  # nothing listens there
    calls = []
    call = auth._call
    auth._call = lambda *args, **kw: calls.append(args) or call(*args, **kw)  # type: ignore[method-assign]
    assert auth.cluster_names()["al-tirana-creative"] == "Tirana Creative Hub", "the names read last are kept"
    assert len(calls) == 1, "they were asked for again, and profiles did not answer"
    fresh = ProfilesAuthClient("http://127.0.0.1:9", timeout_s=0.5)
    calls = []
    call = fresh._call
    fresh._call = lambda *args, **kw: calls.append(args) or call(*args, **kw)  # type: ignore[method-assign]
    assert fresh.cluster_names() == {} and fresh.cluster_names() == {}
    assert len(calls) == 1, "profiles is not asked again at every page while it cannot answer"


def test_a_cluster_added_after_the_names_were_read_is_named_at_once(matcher_app, two_pending, profiles):
    """The names are read every five minutes; a cluster they lack (added since) has them read again
    at once, at most every few seconds however many pages ask for it."""
    matcher_app.extensions["partnermatch.matcher"].auth.unknown_retry_s = 0  # not a few seconds: at once
    anna = matcher_app.test_client()
    _login(anna)
    assert "Silesia ICT Cluster" in anna.get("/queue?lang=en").get_data(as_text=True)  # the names read
    admin = {"Authorization": f"Bearer {ADMIN}"}
    body = {"id": "hu-pannon-agri", "name": "Pannon Agrár Klaszter", "country": "HU"}
    assert profiles.client.post("/v1/clusters", headers=admin, json=body).status_code == 201
    assert (
        profiles.client.post(
            "/v1/clusters/hu-pannon-agri/coordinators",
            headers=admin,
            json={"username": "zsofia", "password": PASSWORD, "name": "Zsófia", "email": "zsofia@example.org"},
        ).status_code
        == 201
    )
    zsofia = matcher_app.test_client()
    _login(zsofia, "zsofia")
    assert "zsofia · Pannon Agrár Klaszter" in zsofia.get("/queue?lang=hu").get_data(as_text=True)

    auth = ProfilesAuthClient(profiles.url)
    calls = []
    call = auth._call
    auth._call = lambda *args, **kw: calls.append(args) or call(*args, **kw)  # type: ignore[method-assign]
    for _ in range(3):
        assert auth.cluster_names("nobody-has-this")["hu-pannon-agri"] == "Pannon Agrár Klaszter"
    assert len(calls) == 1, "a cluster nobody has is not asked for at every page"


def test_each_page_has_its_own_title(matcher_app, two_pending):
    """Tabs and the history of a browser, and a screen reader's first words, tell the pages apart."""
    client = matcher_app.test_client()
    titles = {"/login?lang=en": client.get("/login?lang=en").get_data(as_text=True)}
    _login(client)
    for path in ("/queue?lang=en", "/history?lang=en", "/analytics?lang=en", "/pairs/org_al~org_pl?lang=en"):
        titles[path] = client.get(path).get_data(as_text=True)
    found = {path: re.search(r"<title>(.*?)</title>", html)[1] for path, html in titles.items()}
    assert found == {
        "/login?lang=en": "Partnership suggestions · partnermatch",
        "/queue?lang=en": "Pending · Partnership suggestions · partnermatch",
        "/history?lang=en": "Decided · Partnership suggestions · partnermatch",
        "/analytics?lang=en": "Figures of Silesia ICT Cluster · partnermatch",
        "/pairs/org_al~org_pl?lang=en": "Śląski Klaster ICT ↔ Qendra Kreative Tirana · partnermatch",  # own first
    }


def test_a_decision_sent_twice_a_double_click_is_said_saved_once(matcher_app, two_pending):
    client = matcher_app.test_client()
    csrf = _login(client)
    for _ in range(2):  # the second answers as the first did: saved
        sent = client.post("/pairs/org_pl~org_rs/decide", data={"decision": "approve", "csrf": csrf})
        assert sent.status_code == 302
    page = client.get("/queue?lang=en").get_data(as_text=True)
    assert page.count("Your decision is saved.") == 1
