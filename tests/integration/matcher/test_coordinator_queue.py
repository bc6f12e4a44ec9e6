"""The coordinators' whole queue: a total, pages, filters and search, as bookmarkable query
parameters shared with the API."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from services.matcher.adapters.redis_state import PairWrite, ProfileChange

from .conftest import PASSWORD, seed_profile

pytestmark = pytest.mark.integration

OWN = "org_pl"
COUNTRIES = ("RS", "AL", "ME", "RO", "HU")


def _org(state, org_id, cluster, country, lang, name, sectors=(), offers=()):
    seed_profile(
        state,
        org_id,
        cluster,
        country,
        lang,
        name,
        caps="Usługi IT.",
        goals="Partnerzy.",
        sectors=sectors,
        offers=offers,
    )


@pytest.fixture
def many_pending(matcher_state):
    """45 suggestions for the Polish cluster, with partners in five countries; one of them
    written in Cyrillic."""
    _org(matcher_state, OWN, "pl-silesia-ict", "PL", "pl", "Śląski Klaster ICT")
    reason = {
        "concept": "ict.software",
        "kind": "activity",
        "direction": "shared",
        "weight": 0.3,
        "terms_a": ["oprogramowanie"],
        "terms_b": ["softver"],
    }
    for i in range(45):
        other = f"org_{i:03d}"
        country = COUNTRIES[i % len(COUNTRIES)]
        name = "Војвођанска воћарска задруга" if i == 7 else f"Partner {i:03d} {country}"
        _org(
            matcher_state,
            other,
            f"cluster-{country.lower()}",
            country,
            "sr" if i == 7 else "en",
            name,
            sectors=["agrifood"] if i % 10 == 0 else [],
            offers=["agrifood.dairy"] if i == 13 else [],
        )
        org_a, org_b = sorted((OWN, other))
        clusters = (
            ("pl-silesia-ict", f"cluster-{country.lower()}")
            if org_a == OWN
            else (f"cluster-{country.lower()}", "pl-silesia-ict")
        )
        matcher_state.apply(
            ProfileChange(
                f"seed-{other}",
                1,
                None,
                upserts=[PairWrite(f"{org_a}~{org_b}", org_a, org_b, *clusters, round(0.9 - i * 0.01, 2), [reason])],
            )
        )
    return 45


def _login(client):
    page = client.get("/login")
    csrf = page.get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/login", data={"username": "anna", "password": PASSWORD, "csrf": csrf}).status_code == 302


def _pairs(html: str) -> list[str]:
    return [chunk.split('"')[0] for chunk in html.split('data-pair="')[1:]]


def test_the_whole_queue_pages_through_every_suggestion_with_a_total(matcher_app, many_pending):
    client = matcher_app.test_client()
    _login(client)
    first = client.get("/queue?lang=en").get_data(as_text=True)
    assert "Suggestions found: 45" in first and "Page 1 of 3" in first
    seen = []
    for page in (1, 2, 3):
        html = client.get(f"/queue?page={page}").get_data(as_text=True)
        seen += _pairs(html)
    assert len(seen) == len(set(seen)) == many_pending
    assert _pairs(client.get("/queue?page=99").get_data(as_text=True)) == _pairs(
        client.get("/queue?page=3").get_data(as_text=True)
    )  # past the end: the last page


def test_filters_and_search_are_query_parameters_kept_across_pages(matcher_app, many_pending):
    client = matcher_app.test_client()
    _login(client)
    serbian = client.get("/queue?country=RS&lang=en").get_data(as_text=True)
    assert "Suggestions found: 9" in serbian and len(_pairs(serbian)) == 9
    metas = [m.split("</p>")[0] for m in serbian.split('<p class="meta">')[1:]]
    assert metas and all(m.strip().startswith("Serbia ·") for m in metas), metas[:3]
    found = client.get("/queue?q=vojvod").get_data(as_text=True)  # Latin, no accents, finds Cyrillic
    assert len(_pairs(found)) == 1 and "Војвођанска" in found
    ranged = client.get("/queue?min_score=0.8&max_score=0.85&lang=en").get_data(as_text=True)
    assert "Suggestions found: 6" in ranged
    by_date = client.get("/queue?sort=date&country=HU&lang=en").get_data(as_text=True)
    assert "Suggestions found: 9" in by_date
    paged = client.get("/queue?min_score=0.1&lang=en").get_data(as_text=True)
    assert "page=2&amp;min_score=0.1" in paged or "min_score=0.1&amp;page=2" in paged  # filters kept on the pager


def test_a_filter_value_that_makes_no_sense_is_ignored_not_an_error(matcher_app, many_pending):
    client = matcher_app.test_client()
    _login(client)
    r = client.get("/queue?min_score=lots&country=Serbia&page=x&lang=en")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "Suggestions found: 45" in page
    # said, not silently dropped: the values left out, and the score typed shown back, marked
    found = re.search(r"Not understood, so left out of the filters: ([^<]*)\.</p>", page)
    assert found and sorted(found[1].split(", ")) == ["“Serbia”", "“lots”"]
    assert 'name="min_score" value="lots" inputmode="decimal" size="4" aria-invalid="true"' in page


def test_the_api_answers_the_same_query_with_the_same_total(matcher_app, many_pending, login):
    headers = login("anna")
    r = matcher_app.test_client().get("/v1/suggestions?q=partner&country=ME&page_size=5", headers=headers)
    assert r.status_code == 200 and len(r.json) == 5
    assert json.loads(r.headers["X-Pagination"])["total"] == 8  # 9 in ME, one of them named in Cyrillic
    assert all(s["partner"]["country"] == "ME" for s in r.json)


def test_the_figures_and_the_csv_match_the_decisions_made(matcher_app, many_pending):
    client = matcher_app.test_client()
    page = client.get("/login")
    csrf = page.get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]
    client.post("/login", data={"username": "anna", "password": PASSWORD, "csrf": csrf})
    queue = client.get("/queue").get_data(as_text=True)
    pending = _pairs(queue)
    csrf = queue.split('name="csrf" value="')[1].split('"')[0]  # the new session's form token
    for pid in pending[:3]:
        client.post(
            f"/pairs/{pid}/decide",
            data={
                "decision": "reject",
                "reason_code": "different_markets",
                "reason_text": "Nie nasz rynek",
                "csrf": csrf,
            },
        )
    figures = client.get("/analytics?lang=en").get_data(as_text=True)
    assert '<th scope="row">Suggestions made</th><td>45</td>' in figures
    assert '<th scope="row">rejected</th><td>3</td>' in figures and "Different markets</th><td>3</td>" in figures
    assert "<svg" in figures and figures.count("<rect") == 36
    exported = client.get("/export.csv?state=rejected")
    assert exported.mimetype == "text/csv" and "attachment" in exported.headers["Content-Disposition"]
    assert exported.get_data().startswith('\ufeff"pair_id"'.encode()), "a BOM: spreadsheets read UTF-8"
    rows = exported.get_data(as_text=True).strip().splitlines()
    assert len(rows) == 4 and all("different_markets" in r and "Nie nasz rynek" in r for r in rows[1:])
    queue_csv = client.get("/export.csv?state=pending&country=RS").get_data(as_text=True).strip().splitlines()
    assert len(queue_csv) - 1 == len(_pairs(client.get("/queue?country=RS").get_data(as_text=True)))
    polish = list(
        csv.DictReader(
            io.StringIO(
                client.get("/export.csv?state=pending&country=RS&lang=pl").get_data(as_text=True).lstrip("\ufeff")
            )
        )
    )
    assert polish and {row["partner_country_name"] for row in polish} == {"Serbia"}


def test_the_sector_filter_also_finds_partners_whose_texts_the_reasons_read_in_it(
    matcher_app, matcher_state, many_pending, login
):
    """Partners that state no sector but write it: the pair's reasons say what the matcher read in
    each side's texts. A partner offering logistics, or sharing it, is in it; one only seeking it
    is not, nor is the own organisation's side of a reason."""

    def logistics(direction, terms_a, terms_b):
        return {"concept": "logistics.cold_chain", "kind": "activity", "direction": direction, "weight": 0.2,
                "terms_a": terms_a, "terms_b": terms_b}  # fmt: skip

    # "org_pl" sorts before these: the partner is each pair's org_b
    cases = {
        "org_zz_offers": logistics("b_offers_a_seeks", ["chłodnia"], ["хладњача"]),
        "org_zz_shares": logistics("shared", ["chłodnia"], ["хладњача"]),
        "org_zz_seeks": logistics("a_offers_b_seeks", ["chłodnia"], ["хладњача"]),
        "org_zz_own_only": logistics("shared", ["chłodnia"], []),
    }
    for other, reason in cases.items():
        _org(matcher_state, other, "cluster-rs", "RS", "sr", other)
        matcher_state.apply(
            ProfileChange(
                f"seed-{other}",
                1,
                None,
                upserts=[PairWrite(f"{OWN}~{other}", OWN, other, "pl-silesia-ict", "cluster-rs", 0.5, [reason])],
            )
        )
    client = matcher_app.test_client()
    _login(client)
    found = sorted(_pairs(client.get("/queue?sector=logistics&lang=en").get_data(as_text=True)))
    assert found == [f"{OWN}~org_zz_offers", f"{OWN}~org_zz_shares"]
    r = matcher_app.test_client().get("/v1/suggestions?sector=logistics", headers=login("anna"))
    assert json.loads(r.headers["X-Pagination"])["total"] == 2


def test_the_queue_filters_by_the_sector_a_partner_states(matcher_app, many_pending, login):
    client = matcher_app.test_client()
    _login(client)
    food = client.get("/queue?sector=agrifood&lang=en").get_data(as_text=True)
    assert "Suggestions found: 6" in food  # 0, 10, 20, 30, 40 state the sector; 13 offers a dairy activity
    assert sorted(_pairs(food)) == sorted(f"org_{i:03d}~org_pl" for i in (0, 10, 13, 20, 30, 40))
    r = matcher_app.test_client().get("/v1/suggestions?sector=agrifood", headers=login("anna"))
    assert json.loads(r.headers["X-Pagination"])["total"] == 6


def _csrf(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def test_a_decision_returns_to_the_page_it_was_made_on_with_its_filters(matcher_app, matcher_state, many_pending):
    client = matcher_app.test_client()
    _login(client)
    where = "/queue?country=RS&sort=date&lang=en"
    page = client.get(where).get_data(as_text=True)
    first, second = _pairs(page)[:2]
    assert f'name="next" value="{where.replace("&", "&amp;")}"' in page, "each form says where it was sent from"
    r = client.post(f"/pairs/{first}/decide", data={"decision": "approve", "csrf": _csrf(page), "next": where})
    assert r.status_code == 302 and r.headers["Location"] == where
    assert matcher_state.get_pair(first)["decisions"]["pl-silesia-ict"]["decision"] == "approve"
    back = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Your decision is saved." in back and 'value="RS"' in back

    # never to another site, whatever the form says
    for outside in ("https://evil.example/queue", "//evil.example/queue", "/\\evil.example", "queue", "/queue\r\nX: y"):
        r = client.post(f"/pairs/{second}/withdraw", data={"csrf": _csrf(page), "next": outside})
        assert r.status_code == 302 and r.headers["Location"] == "/queue", outside


@pytest.mark.parametrize("ended", ["logged out in another tab", "ran out on the server"])
def test_a_decision_sent_after_the_session_ended_says_so_and_the_login_returns_to_its_page(
    matcher_app, matcher_state, many_pending, ended
):
    """A pair was open when the session ended: logged out in another tab of the same browser (the
    cookie, its form token with it, is gone), or ended on the server while the cookie stayed (its
    time ran out). The decision is not taken, they are told so, and the login brings them back."""
    tab = matcher_app.test_client()
    _login(tab)
    pair_id = _pairs(tab.get("/queue").get_data(as_text=True))[0]
    where = f"/pairs/{pair_id}?lang=en"
    page = tab.get(where).get_data(as_text=True)
    if ended == "logged out in another tab":
        assert tab.post("/logout", data={"csrf": _csrf(page)}).status_code == 302
    else:
        elsewhere = matcher_app.test_client()
        name = matcher_app.config["SESSION_COOKIE_NAME"]
        elsewhere.set_cookie(name, tab.get_cookie(name).value)
        assert elsewhere.post("/logout", data={"csrf": _csrf(page)}).status_code == 302  # ends it on the server

    r = tab.post(
        f"/pairs/{pair_id}/decide",
        data={"decision": "reject", "reason_code": "different_markets", "csrf": _csrf(page), "next": where},
    )
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=")
    assert matcher_state.get_pair(pair_id)["state"] == "pending" and not matcher_state.get_pair(pair_id)["decisions"]
    login_page = tab.get(r.headers["Location"]).get_data(as_text=True)
    # a warning, not the confirmation's green box
    assert (
        '<p class="flash warning" role="alert">Your session ended, so nothing was saved. Log in and try again.</p>'
        in (login_page)
    )
    assert f'name="next" value="{where}"' in login_page
    r = tab.post("/login", data={"username": "anna", "password": PASSWORD, "csrf": _csrf(login_page), "next": where})
    assert r.status_code == 302 and r.headers["Location"] == where


def test_filters_as_people_type_them_and_the_language_switch_keep_the_view(matcher_app, many_pending):
    client = matcher_app.test_client()
    _login(client)
    typed = client.get("/queue?country=rs&min_score=0,8&lang=en").get_data(as_text=True)
    exact = client.get("/queue?country=RS&min_score=0.8&lang=en").get_data(as_text=True)
    assert "Suggestions found: 3" in exact  # 0.9, 0.85 and 0.8: the first three of the nine in RS
    assert _pairs(typed) == _pairs(exact) and "Suggestions found: 3" in typed
    assert 'href="?country=rs&amp;min_score=0%2C8&amp;lang=pl"' in typed, "the switch keeps the filters"


def test_only_the_pairs_waiting_for_my_decision_leave_out_those_my_cluster_approved(matcher_app, many_pending, login):
    client = matcher_app.test_client()
    _login(client)
    page = client.get("/queue?lang=en").get_data(as_text=True)
    approved = _pairs(page)[:2]
    for pair_id in approved:
        client.post(f"/pairs/{pair_id}/decide", data={"decision": "approve", "csrf": _csrf(page)})
    everything = client.get("/queue?lang=en").get_data(as_text=True)
    assert "Suggestions found: 45" in everything, "pending still: they wait for the other cluster"
    mine = client.get("/queue?mine=1&lang=en").get_data(as_text=True)
    assert "Suggestions found: 43" in mine and not set(approved) & set(_pairs(mine))
    assert 'name="mine" value="1" checked' in mine
    api = matcher_app.test_client().get("/v1/suggestions?mine=true&page_size=50", headers=login("anna"))
    assert json.loads(api.headers["X-Pagination"])["total"] == 43
    assert not set(approved) & {s["pair_id"] for s in api.json}

    client.post(f"/pairs/{approved[0]}/withdraw", data={"csrf": _csrf(page)})
    assert "Suggestions found: 44" in client.get("/queue?mine=1&lang=en").get_data(as_text=True)


def test_languages_are_named_in_their_own_language_not_by_code(matcher_app, many_pending):
    client = matcher_app.test_client()
    _login(client)
    page = client.get("/queue?lang=en").get_data(as_text=True)
    assert (
        '<option value="sr" lang="sr">srpski</option>' in page
        and '<option value="pl" lang="pl">polski</option>' in page
    )
    assert '<span lang="sr">srpski</span>' in page  # the partner written in Serbian
    cyrillic = client.get("/queue?lang=sr-Cyrl").get_data(as_text=True)
    # in the page's script (the language switcher still offers Latin script as "srpski")
    assert '<span lang="sr">српски</span>' in cyrillic and '<option value="sr" lang="sr">српски</option>' in cyrillic


def test_the_partner_country_is_chosen_by_name_in_the_pages_language(matcher_app, many_pending):
    """Typed as a code, "Serbia" became "SE" (Sweden) and found nothing, silently: the filter is a
    list of countries by name."""
    client = matcher_app.test_client()
    _login(client)
    page = client.get("/queue?lang=pl&country=RS").get_data(as_text=True)
    assert '<option value="RS" selected>Serbia</option>' in page and '<option value="SE">Szwecja</option>' in page
    assert 'name="country" value=' not in page, "no free text field for a code"
    # a country the lexicon lacks is there too, named as CLDR names it
    assert '<option value="TN" selected>Tunesien</option>' in client.get("/queue?lang=de&country=TN").get_data(
        as_text=True
    )
    # a code no organisation may have stays chosen, as it was asked for
    assert '<option value="QQ" selected>QQ</option>' in client.get("/queue?country=QQ").get_data(as_text=True)


def test_scores_are_written_as_the_readers_language_writes_numbers(matcher_app, many_pending):
    client = matcher_app.test_client()
    _login(client)
    polish = client.get("/queue?lang=pl").get_data(as_text=True)
    assert re.search(r"Wynik \d+,\d\d</p>", polish) and not re.search(r"Wynik \d+\.\d", polish)
    assert re.search(r"Score \d+\.\d\d</p>", client.get("/queue?lang=en").get_data(as_text=True))
