"""The organisations' pages over plain HTTP (Flask's test client against real Redis and a real SMTP
server): one set of rules with the API, sign-in links, sessions, and the protections."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlsplit

import pytest

from partnermatch import events, i18n
from services.profiles.adapters.signin_mailer import Background
from services.profiles.domain import CONSENT_WORDING, SHARE_CONTACT_WORDING
from services.profiles.entrypoints import pages
from tests.helpers import wait_until

from ..conftest import SERVICE
from .conftest import PUBLIC_URL, csrf_of, form_id_of, mails_to, register, registration, signin_link

pytestmark = pytest.mark.integration

JELENA = "jelena@banat.example.rs"


def _path(link: str) -> str:
    parts = urlsplit(link)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _ask_link(client, email: str, lang: str = "sr-Cyrl"):
    csrf = csrf_of(client.get(f"/signin?lang={lang}").get_data(as_text=True))
    # Buffered: the response is closed, as a server does, and the mail goes out after it.
    return client.post("/signin", data={"email": email, "csrf_token": csrf}, buffered=True)


def _sign_in(client, sink, email: str = JELENA):
    assert _ask_link(client, email).status_code == 200
    path = _path(signin_link(sink, email))
    page = client.get(path)
    assert page.status_code == 200
    return client.post(path, data={"csrf_token": csrf_of(page.get_data(as_text=True))})


def _client_at(app, address: str):
    """A browser at another client address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _stored_org(redis_client):
    [key] = list(redis_client.keys("{profiles}:org:*"))
    return json.loads(redis_client.get(key))


# ---- language -----------------------------------------------------------------------------------


def test_the_start_page_opens_in_the_browsers_language_and_remembers_a_choice(app):
    client = app.test_client()
    page = client.get("/", headers={"Accept-Language": "sq-AL,sq;q=0.9,en;q=0.5"})
    assert page.status_code == 200 and 'lang="sq"' in page.get_data(as_text=True)
    assert "Regjistroni organizatën" in page.get_data(as_text=True)
    chosen = client.get("/?lang=pl", headers={"Accept-Language": "sq"})
    assert "pm_lang=pl" in chosen.headers["Set-Cookie"]
    assert "Zarejestruj organizację" in client.get("/", headers={"Accept-Language": "sq"}).get_data(as_text=True)
    assert "Региструјте" in client.get("/?lang=sr-Cyrl").get_data(as_text=True)


# ---- register -----------------------------------------------------------------------------------


def test_registering_opens_a_session_and_stores_each_consent_with_its_time_and_wording(app, redis_client):
    client = app.test_client()
    answer = register(client)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/profile")
    org = _stored_org(redis_client)
    [contact] = org["contacts"]
    assert org["name"] == "Софтверска кућа Банат" and org["offers"] == ["ict.software"]
    assert org["seeks"] == ["agrifood"] and org["seeks_countries"] == ["PL"] and org["language"] == "sr"
    assert contact["consent"] is True and contact["share_contact"] is True and contact["language"] == "sr-Cyrl"
    assert contact["consent_wording"] == CONSENT_WORDING and contact["share_contact_wording"] == SHARE_CONTACT_WORDING
    assert contact["consent_at"] and contact["share_contact_at"]
    profile = client.get("/profile")
    assert profile.status_code == 200 and JELENA in profile.get_data(as_text=True)
    [event] = [events.decode(d[b"value"]) for _i, d in redis_client.xrange("{profiles}:outbox")]
    assert event.event_type == events.PROFILE_UPSERTED and JELENA not in json.dumps(event.to_dict())


def test_a_registration_form_sent_twice_makes_one_organisation_and_opens_it_both_times(make_app, redis_client):
    """A double click sends the form twice, both times with the browser's cookie as it was: one
    organisation, one event, and both answers open it; the limit counts it once."""
    app = make_app(register_rate_limit="2 per minute")
    first = app.test_client()
    page = first.get("/register?lang=sr-Cyrl").get_data(as_text=True)
    form = {**registration(), "csrf_token": csrf_of(page), "form_id": form_id_of(page)}
    second = app.test_client()  # the second click: the same browser, its cookie from before the first answer
    second.set_cookie("pm_org_session", first.get_cookie("pm_org_session").value)
    answers = [client.post("/register", data=form) for client in (first, second)]
    assert [a.status_code for a in answers] == [302, 302]
    assert all(a.headers["Location"].endswith("/profile") for a in answers)
    [org] = [json.loads(redis_client.get(k)) for k in redis_client.keys("{profiles}:org:*")]
    for client in (first, second):
        profile = client.get("/profile")
        assert profile.status_code == 200 and JELENA in profile.get_data(as_text=True)
    assert len(redis_client.xrange("{profiles}:outbox")) == 1
    assert org["name"] == "Софтверска кућа Банат"

    # another browser sending that form's id (it has no cookie of the first) makes an organisation
    # of its own and never opens the first one
    other = app.test_client()
    theirs = other.get("/register").get_data(as_text=True)
    answer = other.post(
        "/register",
        data={
            **registration(**{"contacts-0-email": "other@banat.example.rs"}),
            "csrf_token": csrf_of(theirs),
            "form_id": form["form_id"],
        },
    )
    assert answer.status_code == 302 and len(redis_client.keys("{profiles}:org:*")) == 2
    assert JELENA not in other.get("/profile").get_data(as_text=True)
    # the double click counted once: the limit of two is reached only now
    assert register(app.test_client(), **{"contacts-0-email": "third@banat.example.rs"}).status_code == 429


def test_a_registration_form_sent_again_later_or_after_a_deletion_opens_nothing_and_makes_nothing(
    app, redis_client, monkeypatch
):
    """A copy of the browser's cookie from before registering, with the form's id, does not open the
    organisation once the moment of a double click has passed, nor make the deleted one again."""
    first = app.test_client()
    page = first.get("/register").get_data(as_text=True)
    form = {**registration(), "csrf_token": csrf_of(page), "form_id": form_id_of(page)}
    old_cookie = first.get_cookie("pm_org_session").value
    assert first.post("/register", data=form).status_code == 302

    monkeypatch.setattr(pages, "FORM_SENT_AGAIN_MS", 0)  # the moment has passed
    later = app.test_client()
    later.set_cookie("pm_org_session", old_cookie)
    answer = later.post("/register", data=form, headers={"Accept-Language": "pl"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/signin")
    told = later.get("/signin", headers={"Accept-Language": "pl"}).get_data(as_text=True)
    assert "Ten formularz został już wysłany: organizacja jest zarejestrowana." in told  # why, in the page's language
    assert later.get("/profile").status_code != 200 and len(redis_client.keys("{profiles}:org:*")) == 1

    monkeypatch.setattr(pages, "FORM_SENT_AGAIN_MS", 120_000)
    csrf = csrf_of(first.get("/profile/delete").get_data(as_text=True))
    assert first.post("/profile/delete", data={"csrf_token": csrf, "confirm": "yes"}).status_code == 302
    assert redis_client.keys("{profiles}:org:*") == []
    again = app.test_client()
    again.set_cookie("pm_org_session", old_cookie)
    answer = again.post("/register", data=form)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/signin")
    assert redis_client.keys("{profiles}:org:*") == [], "the deleted organisation is not made again"


def test_the_form_sent_again_after_back_opens_the_organisation_and_costs_nothing_of_the_limit(make_app, redis_client):
    """Back after registering, then Register again: the browser's cookie is the new session's, so the
    form's token no longer holds; the organisation it made opens. A form sent again too late is not
    counted either, and the second click of the registration that reached the limit opens it."""
    app = make_app(register_rate_limit="2 per minute")
    client = app.test_client()
    page = client.get("/register").get_data(as_text=True)
    form = {**registration(), "csrf_token": csrf_of(page), "form_id": form_id_of(page)}
    old_cookie = client.get_cookie("pm_org_session").value
    assert client.post("/register", data=form).status_code == 302
    again = client.post("/register", data=form)  # Back, then Register
    assert again.status_code == 302 and again.headers["Location"].endswith("/profile")
    assert "registered" in client.get("/profile?lang=en").get_data(as_text=True)
    assert len(redis_client.keys("{profiles}:org:*")) == 1

    late = app.test_client()
    late.set_cookie("pm_org_session", old_cookie)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pages, "FORM_SENT_AGAIN_MS", 0)
        assert late.post("/register", data=form).headers["Location"].endswith("/signin")  # not counted

    last = app.test_client()  # the registration that reaches the limit, clicked twice
    page = last.get("/register").get_data(as_text=True)
    form = {
        **registration(**{"contacts-0-email": "last@banat.example.rs"}),
        "csrf_token": csrf_of(page),
        "form_id": form_id_of(page),
    }
    second = app.test_client()
    second.set_cookie("pm_org_session", last.get_cookie("pm_org_session").value)
    assert last.post("/register", data=form).status_code == 302
    opened = second.post("/register", data=form)  # over the limit now, but it made nothing new
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/profile")
    assert "last@banat.example.rs" in second.get("/profile").get_data(as_text=True)
    assert len(redis_client.keys("{profiles}:org:*")) == 2
    assert register(app.test_client(), **{"contacts-0-email": "more@banat.example.rs"}).status_code == 429


def test_a_refused_registration_says_what_is_wrong_in_the_pages_language_and_keeps_everything_typed(app, redis_client):
    client = app.test_client()
    answer = register(client, lang="pl", goals="", **{"contacts-0-email": "jelena-at-banat", "website": "banat"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "Uzupełnij to pole." in html  # goals
    assert "Podaj adres e-mail, np. name@example.org." in html
    assert "Podaj pełny adres strony, np. https://example.org." in html
    typed = ("Софтверска кућа Банат", "Развој софтвера и мобилних апликација", "jelena-at-banat", "Јелена Петровић")
    assert all(text in html for text in typed)
    assert 'value="ict.software" checked' in html and 'value="PL" checked' in html
    assert redis_client.keys("{profiles}:org:*") == []


def test_the_page_and_the_api_refuse_the_same_input(app):
    client = app.test_client()
    too_many = [f"{s}" for s in ("ict", "energy", "health", "tourism", "wood", "metal")]
    answer = register(client, lang="en", sectors=too_many)
    assert answer.status_code == 422 and "Choose at most 5." in answer.get_data(as_text=True)
    body = {
        "name": "X",
        "cluster_id": "rs-vojvodina-ict",
        "country": "RS",
        "capabilities": "a",
        "goals": "b",
        "sectors": too_many,
    }
    api = client.post("/v1/organisations", json=body)
    assert api.status_code == 422 and "sectors" in api.json["errors"]["json"]


def test_a_registration_needs_a_contact_person_to_sign_in_with(app):
    answer = register(app.test_client(), lang="de", **{"contacts-0-name": "", "contacts-0-email": ""})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "Fügen Sie mindestens eine Kontaktperson hinzu" in html


def test_adding_a_contact_row_keeps_what_was_typed(app):
    client = app.test_client()
    csrf = csrf_of(client.get("/register").get_data(as_text=True))
    page = client.post("/register", data={**registration(), "csrf_token": csrf, "add_contact": "1"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="contacts-1-email"' in html and "Јелена Петровић" in html


def test_switching_the_language_on_the_form_keeps_what_was_typed_and_saves_nothing(app, redis_client):
    """The switcher on the registration form sends the form (formaction "?lang=pl"): the same form
    comes back in Polish with everything typed and its own id, remembered for the next pages."""
    client = app.test_client()
    page = client.get("/register?lang=sr-Cyrl").get_data(as_text=True)
    assert 'form="org-form"' in page and 'name="switch_lang"' in page and 'value="pl"' in page
    typed = {**registration(goals="Тражимо млекаре."), "csrf_token": csrf_of(page), "form_id": form_id_of(page)}
    answer = client.post("/register?lang=pl", data={**typed, "switch_lang": "pl"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and 'lang="pl"' in html and "Zarejestruj organizację" in html
    assert "Софтверска кућа Банат" in html and "Тражимо млекаре." in html and "jelena@banat.example.rs" in html
    assert form_id_of(html) == typed["form_id"] and "pm_lang=pl" in answer.headers["Set-Cookie"]
    assert 'class="error' not in html  # not sent yet: nothing is marked
    assert redis_client.keys("{profiles}:org:*") == [] and redis_client.xrange("{profiles}:outbox") == []
    assert "Zarejestruj organizację" in client.get("/register").get_data(as_text=True)


def test_switching_the_language_on_the_profile_keeps_the_unsaved_changes_unsaved(app, redis_client):
    client = app.test_client()
    assert register(client).status_code == 302
    page = client.get("/profile").get_data(as_text=True)
    form = {**registration(name="Banat Soft"), "csrf_token": csrf_of(page)}
    answer = client.post("/profile?lang=de", data={**form, "switch_lang": "de"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and 'lang="de"' in html and 'value="Banat Soft"' in html
    assert _stored_org(redis_client)["name"] == "Софтверска кућа Банат"
    assert len(redis_client.xrange("{profiles}:outbox")) == 1  # the registration's event only


# ---- CSRF, cookies, headers ---------------------------------------------------------------------


def test_a_form_post_without_its_token_is_refused_and_changes_nothing(app, redis_client, sink):
    client = app.test_client()
    for path, form in (("/register", registration()), ("/signin", {"email": JELENA})):
        assert client.post(path, data=form).status_code == 400
        assert client.post(path, data={**form, "csrf_token": "forged"}).status_code == 400
    assert redis_client.keys("{profiles}:org:*") == [] and sink.messages == []
    assert register(client).status_code == 302
    for path in ("/profile", "/profile/delete", "/signout"):
        assert client.post(path, data={"confirm": "yes", "name": "Changed"}).status_code == 400
    org = _stored_org(redis_client)
    assert org["name"] == "Софтверска кућа Банат" and client.get("/profile").status_code == 200


def test_a_stale_registration_form_comes_back_with_everything_typed(app):
    client = app.test_client()
    answer = client.post("/register?lang=pl", data={**registration(), "csrf_token": "expired"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "Formularz wygasł" in html and "Софтверска кућа Банат" in html


def test_the_json_api_needs_no_form_token_and_gets_no_cookie(app):
    client = app.test_client()
    r = client.post(
        "/v1/organisations",
        json={
            "name": "X",
            "cluster_id": "rs-vojvodina-ict",
            "country": "RS",
            "capabilities": "Software.",
            "goals": "Partners.",
        },
    )
    assert r.status_code == 201 and "Set-Cookie" not in r.headers
    assert client.post("/v1/organisations", data={"name": "X"}).status_code == 415


def test_pages_send_a_content_security_policy_without_inline_code_and_hardened_cookies(app, make_app):
    client = app.test_client()
    page = client.get("/register")
    csp = page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Referrer-Policy"] == "same-origin"
    assert "<script" not in page.get_data(as_text=True) and " style=" not in page.get_data(as_text=True)
    cookie = register(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = make_app(public_url="https://orgs.partnermatch.example").test_client()
    cookie = register(secure).headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


# ---- sign in ------------------------------------------------------------------------------------


def test_a_known_and_an_unknown_address_get_the_same_answer_and_only_the_known_one_a_mail(app, sink):
    register(app.test_client())
    known, unknown = _ask_link(app.test_client(), JELENA), _ask_link(app.test_client(), "nobody@banat.example.rs")
    assert known.status_code == unknown.status_code == 200
    assert known.get_data(as_text=True).replace(JELENA, "@") == unknown.get_data(as_text=True).replace(
        "nobody@banat.example.rs", "@"
    )
    assert len(mails_to(sink, JELENA)) == 1 and mails_to(sink, "nobody@banat.example.rs") == []


def test_the_signin_mail_is_sent_after_the_answer_outside_the_request(make_app, sink):
    app = make_app(background=Background())
    register(app.test_client())
    client = app.test_client()
    csrf = csrf_of(client.get("/signin").get_data(as_text=True))
    answer = client.post("/signin", data={"email": JELENA, "csrf_token": csrf})
    assert answer.status_code == 200
    time.sleep(0.5)  # nothing to wait for: no mail may come while the answer is open
    assert mails_to(sink, JELENA) == []
    answer.close()  # what the server does once the answer is sent
    assert signin_link(sink, JELENA).startswith(f"{PUBLIC_URL}/signin/")


def test_the_signin_mail_is_in_the_contacts_language_and_links_to_the_public_address(app, sink):
    register(app.test_client())
    client = app.test_client()
    # Asked through another Host header: the link still points to the configured public address.
    csrf = csrf_of(client.get("/signin", base_url="http://evil.example").get_data(as_text=True))
    answer = client.post(
        "/signin", data={"email": JELENA.upper(), "csrf_token": csrf}, base_url="http://evil.example", buffered=True
    )
    assert answer.status_code == 200
    [mail] = mails_to(sink, JELENA)
    body = mail.get_body(("plain",)).get_content()
    assert mail["Content-Language"] == "sr-Cyrl" and "Поштовани/а Јелена Петровић" in body
    assert "Ваш линк за пријаву" in str(mail["Subject"])
    link = signin_link(sink, JELENA)
    assert link.startswith(f"{PUBLIC_URL}/signin/") and "evil.example" not in body and link.endswith("?lang=sr-Cyrl")


def test_an_address_with_a_domain_in_cyrillic_gets_its_link_however_it_is_typed(app, sink, redis_client):
    """ "ivan@пример.срб" is kept with its domain as mail servers write it (IDNA), so a link reaches it,
    asked for as typed or as a browser's email field sends it."""
    assert register(app.test_client(), **{"contacts-0-email": "Ivan@Пример.срб"}).status_code == 302
    stored = _stored_org(redis_client)["contacts"][0]["email"]
    assert stored == "Ivan@xn--e1afmkfd.xn--90a3ac"
    for typed in ("ivan@пример.срб", "ivan@xn--e1afmkfd.xn--90a3ac"):
        assert _ask_link(app.test_client(), typed).status_code == 200
    wait_until(lambda: len(mails_to(sink, stored)) == 2, 10, message="a link for each way of typing it")


def test_the_profile_form_shows_an_address_in_cyrillic_as_typed_and_saving_it_changes_nothing(app, redis_client):
    client = app.test_client()
    assert register(client, **{"contacts-0-email": "ivan@пример.срб"}).status_code == 302
    before = _stored_org(redis_client)
    page = client.get("/profile").get_data(as_text=True)
    assert 'value="ivan@пример.срб"' in page and "xn--" not in page  # not the IDNA form mail servers use
    form = registration(
        **{"contacts-0-id": before["contacts"][0]["id"], "contacts-0-email": "ivan@пример.срб", "goals": "Nove."}
    )
    form.pop("cluster_id")
    saved = client.post("/profile", data={**form, "csrf_token": csrf_of(page)})
    assert saved.status_code == 302 and urlsplit(saved.headers["Location"]).path == "/profile"
    after = _stored_org(redis_client)
    assert after["contacts"][0]["email"] == "ivan@xn--e1afmkfd.xn--90a3ac" and after["goals"] == "Nove."
    assert after["contacts"][0]["id"] == before["contacts"][0]["id"], "the same contact, still signed in"


def test_a_contact_stored_with_its_domain_in_cyrillic_before_idna_still_gets_its_link(app, sink):
    """Addresses were kept as typed before they were kept in their IDNA form: such a contact still
    gets a link, asked for either way."""
    from services.profiles import services as profile_services

    store = app.extensions["partnermatch.profiles"].store
    old_form = "ivan@пример.срб"
    profile_services.register_org(
        store,
        {
            "name": "Банат",
            "cluster_id": "rs-vojvodina-ict",
            "country": "RS",
            "language": "sr",
            "capabilities": "Софтвер.",
            "goals": "Партнери.",
            "contacts": [{"name": "Иван", "email": old_form, "language": "sr-Cyrl", "consent": True}],
        },
    )
    for typed in ("ivan@xn--e1afmkfd.xn--90a3ac", old_form):
        assert _ask_link(app.test_client(), typed).status_code == 200
    # sent to the domain as IDNA, the form mail servers take
    delivered = "ivan@xn--e1afmkfd.xn--90a3ac"
    wait_until(lambda: len(mails_to(sink, delivered)) == 2, 10, message="a link for each way of asking")


def test_other_spellings_of_one_address_share_its_sign_in_limit(make_app, sink):
    app = make_app(signin_rate_limit="2 per minute")
    spellings = ("ivan@пример.срб", "ivan@xn--e1afmkfd.xn--90a3ac", "IVAN@ПРИМЕР.СРБ")
    answers = [_ask_link(_client_at(app, f"192.0.2.{30 + i}"), typed).status_code for i, typed in enumerate(spellings)]
    assert answers == [200, 200, 429]


def test_an_address_with_other_letters_before_the_at_is_refused_in_the_readers_language(app, redis_client):
    answer = register(app.test_client(), lang="pl", **{"contacts-0-email": "јелена@пример.срб"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and redis_client.keys("{profiles}:org:*") == []
    assert "Nie możemy jeszcze wysyłać poczty na adres z nielacińskimi literami przed znakiem @" in page
    body = {
        "name": "Банат",
        "cluster_id": "rs-vojvodina-ict",
        "country": "RS",
        "capabilities": "Софтвер.",
        "goals": "Партнери.",
        "contacts": [{"name": "Јелена", "email": "јелена@пример.срб", "language": "sr-Cyrl", "consent": True}],
    }
    api = app.test_client().post("/v1/organisations", json=body)
    assert api.status_code == 422
    assert "non-Latin letters before the @" in json.dumps(api.json["errors"])


def test_a_signin_link_opens_a_session_once_and_never_again(app, sink):
    register(app.test_client())
    client = app.test_client()
    assert _ask_link(client, JELENA).status_code == 200
    path = _path(signin_link(sink, JELENA))
    for _ in range(2):  # opening it (a mail scanner, a second look) does not use it up
        page = client.get(path)
        assert page.status_code == 200 and "Софтверска кућа Банат" in page.get_data(as_text=True)
    csrf = csrf_of(page.get_data(as_text=True))
    assert client.post(path, data={"csrf_token": csrf}).headers["Location"].endswith("/profile")
    assert JELENA in client.get("/profile").get_data(as_text=True)
    other = app.test_client()
    assert other.get(path).status_code == 410
    csrf = csrf_of(other.get("/signin").get_data(as_text=True))
    assert other.post(path, data={"csrf_token": csrf}).status_code == 410
    assert other.get("/profile").status_code == 302


def test_the_page_an_email_linked_to_opens_once_signed_in(app, sink):
    """A partnership email links to /partnerships: signed out, the link leads to sign in, and the
    sign-in link then opens the partnerships, not the profile."""
    register(app.test_client())
    client = app.test_client()
    assert urlsplit(client.get("/partnerships").headers["Location"]).path == "/signin"
    assert _ask_link(client, JELENA).status_code == 200
    path = _path(signin_link(sink, JELENA))
    csrf = csrf_of(client.get(path).get_data(as_text=True))
    assert urlsplit(client.post(path, data={"csrf_token": csrf}).headers["Location"]).path == "/partnerships"
    assert client.get("/partnerships").status_code == 200


def test_a_signin_link_expires(make_app, sink):
    app = make_app(signin_link_ttl_s=1)
    register(app.test_client())
    client = app.test_client()
    _ask_link(client, JELENA)
    path = _path(signin_link(sink, JELENA))
    time.sleep(2.2)  # the link's own clock: nothing to poll for
    page = client.get(path)
    assert page.status_code == 410
    csrf = csrf_of(client.get("/signin").get_data(as_text=True))
    assert client.post(path, data={"csrf_token": csrf}).status_code == 410


def test_a_forged_or_damaged_link_opens_nothing(app, sink):
    register(app.test_client())
    client = app.test_client()
    _ask_link(client, JELENA)
    path = _path(signin_link(sink, JELENA)).split("?")[0]
    for bad in (path[:-3] + "abc", "/signin/" + "x" * 40, "/signin/" + "y" * 2000):
        assert client.get(bad).status_code == 410
    assert client.get(path).status_code == 200


def test_signing_out_ends_the_session_on_the_server_too(app, sink):
    register(app.test_client())
    client = app.test_client()
    assert _sign_in(client, sink).status_code == 302
    stolen = client.get_cookie("pm_org_session").value
    page = client.get("/profile")
    assert page.status_code == 200
    assert client.post("/signout", data={"csrf_token": csrf_of(page.get_data(as_text=True))}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("pm_org_session", stolen)
    assert replay.get("/profile").status_code == 302
    assert replay.get("/profile/data").status_code == 302


# ---- signed in ----------------------------------------------------------------------------------


def test_editing_the_profile_uses_the_apis_rules_and_keeps_unchanged_consents(app, redis_client):
    client = app.test_client()
    register(client)
    before = _stored_org(redis_client)["contacts"][0]
    form = registration(
        goals="Tražimo partnere iz Poljske.",
        **{
            "contacts-0-id": before["id"],
            "contacts-0-share_contact": None,
            "contacts-1-name": "Marko Marković",
            "contacts-1-email": "marko@banat.example.rs",
            "contacts-1-language": "sr",
            "contacts-1-consent": "yes",
        },
    )
    form.pop("cluster_id")
    csrf = csrf_of(client.get("/profile").get_data(as_text=True))
    bad = client.post("/profile", data={**form, "contacts-1-email": "marko", "csrf_token": csrf})
    assert bad.status_code == 422 and "Tražimo partnere iz Poljske." in bad.get_data(as_text=True)
    assert client.post("/profile", data={**form, "csrf_token": csrf}).status_code == 302
    org = _stored_org(redis_client)
    jelena, marko = org["contacts"]
    assert org["goals"] == "Tražimo partnere iz Poljske." and org["revision"] == 2
    assert jelena["consent_at"] == before["consent_at"] and jelena["share_contact"] is False
    assert jelena["share_contact_at"] >= before["share_contact_at"] and marko["share_contact"] is False


def test_emptying_a_required_field_of_the_profile_is_refused_not_saved_as_unchanged(app, redis_client):
    """Left out of the edit, an emptied field kept its old text while the page said "Saved."."""
    client = app.test_client()
    register(client)
    before = _stored_org(redis_client)
    form = registration(**{"contacts-0-id": before["contacts"][0]["id"]}, goals="", name="   ")
    form.pop("cluster_id")
    page = client.get("/profile?lang=en").get_data(as_text=True)
    answer = client.post("/profile?lang=en", data={**form, "csrf_token": csrf_of(page)})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "Please correct the marked fields." in html
    assert html.count("Please fill this in.") >= 2  # the name and the goals, each by its field
    assert _stored_org(redis_client)["revision"] == before["revision"]


def test_my_data_is_everything_stored_about_the_organisation_but_its_credential(app, redis_client):
    client = app.test_client()
    register(client)
    download = client.get("/profile/data")
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    exported = json.loads(download.get_data(as_text=True))
    stored = _stored_org(redis_client)
    stored.pop("token_digest")
    assert exported["organisation"] == stored and exported["cluster"]["id"] == "rs-vojvodina-ict"
    assert "token_digest" not in download.get_data(as_text=True)


def test_deleting_needs_a_confirmation_then_erases_the_organisation_and_its_sessions(app, redis_client):
    client = app.test_client()
    register(client)
    org_id = _stored_org(redis_client)["id"]
    page = client.get("/profile/delete")
    csrf = csrf_of(page.get_data(as_text=True))
    assert client.post("/profile/delete", data={"csrf_token": csrf}).status_code == 422
    assert redis_client.exists(f"{{profiles}}:org:{org_id}")
    assert client.post("/profile/delete", data={"csrf_token": csrf, "confirm": "yes"}).status_code == 302
    assert client.get(f"/v1/organisations/{org_id}").status_code == 404
    assert client.get("/profile").status_code == 302
    assert redis_client.keys("{profiles}:web-session:*") == []
    deleted = [events.decode(d[b"value"]) for _i, d in redis_client.xrange("{profiles}:outbox")][-1]
    assert deleted.event_type == events.PROFILE_DELETED


def test_my_partnerships_needs_a_session_and_says_when_the_matcher_cannot_answer(app):
    client = app.test_client()
    assert client.get("/partnerships").status_code == 302
    register(client, lang="en")
    page = client.get("/partnerships")
    assert page.status_code == 200 and "cannot be shown right now" in page.get_data(as_text=True)


class _Waiting:
    """The matcher's answer: one pair with `partner_id`, waiting for the coordinators (or in `state`)."""

    def __init__(self, partner_id: str, state: str = "waiting") -> None:
        self.partner_id = partner_id
        self.state = state

    def partnerships(self, org_id: str, lang: str = "en") -> list[dict]:
        return [
            {
                "pair_id": "~".join(sorted((org_id, self.partner_id))),
                "state": self.state,
                "reason": None,
                "partner": {"org_id": self.partner_id, "cluster_id": "pl-silesia-ict"},
            }
        ]


def test_my_partnerships_names_the_partner_s_country_in_the_page_s_language(app):
    client = app.test_client()
    register(client)
    partner = client.post(
        "/v1/organisations",
        json={
            "name": "Mleczarnia Podlaska",
            "cluster_id": "pl-silesia-ict",
            "country": "PL",
            "capabilities": "Sery.",
            "goals": "Oprogramowanie.",
        },
    )
    app.extensions["partnermatch.profiles"].matcher = _Waiting(partner.json["organisation"]["id"])
    meta = re.search(r'<p class="meta">([^<]*)</p>', client.get("/partnerships?lang=sr-Cyrl").get_data(as_text=True))
    assert meta and meta[1] == "Пољска · Śląski Klaster ICT"  # not the code "PL"
    assert "Polska ·" in client.get("/partnerships?lang=pl").get_data(as_text=True)


def test_an_approved_partner_without_a_shared_contact_says_who_can_put_you_in_touch(app):
    client = app.test_client()
    register(client)
    body = {
        "name": "Mleczarnia",
        "cluster_id": "pl-silesia-ict",
        "country": "PL",
        "capabilities": "Sery.",
        "goals": "IT.",
    }
    partner = client.post("/v1/organisations", json=body)  # no contact person: none shares
    tip = "Your cluster's coordinator can put you in touch."
    for state, told in (("approved", True), ("waiting", False)):
        app.extensions["partnermatch.profiles"].matcher = _Waiting(partner.json["organisation"]["id"], state)
        assert (tip in client.get("/partnerships?lang=en").get_data(as_text=True)) is told, state


def test_no_page_shows_contact_data_without_a_session(app, redis_client):
    register(app.test_client())
    org_id = _stored_org(redis_client)["id"]
    anonymous = app.test_client()
    for path in (
        "/",
        "/register",
        "/signin",
        "/profile",
        "/profile/data",
        "/profile/delete",
        "/partnerships",
        "/signin/nonsense",
        f"/v1/organisations/{org_id}",
        "/v1/organisations",
    ):
        answer = anonymous.get(path)
        assert answer.status_code in (200, 302, 410), path
        assert JELENA not in answer.get_data(as_text=True) and "Јелена" not in answer.get_data(as_text=True), path
    assert anonymous.get(f"/v1/organisations/{org_id}/contacts").status_code == 401
    service = {"Authorization": f"Bearer {SERVICE}"}
    assert anonymous.get(f"/v1/organisations/{org_id}/contacts", headers=service).status_code == 200


# ---- rate limits --------------------------------------------------------------------------------


def test_registrations_from_one_address_are_limited(make_app, redis_client):
    app = make_app(register_rate_limit="2 per minute")
    client = app.test_client()
    for i in range(2):
        assert register(client, **{"contacts-0-email": f"c{i}@banat.example.rs"}).status_code == 302
    limited = register(client, lang="pl", **{"contacts-0-email": "c9@banat.example.rs"})
    # When the window lets go, in the reader's words (Retry-After in seconds, at most a minute here)
    wait = int(limited.headers["Retry-After"])
    assert limited.status_code == 429 and 0 < wait <= 61
    said = re.search(
        r"Zbyt wiele prób z tego miejsca\. Spróbuj ponownie za (\d+) (sekund|minut)", limited.get_data(as_text=True)
    )
    assert said is not None, limited.get_data(as_text=True)
    assert "Софтверска кућа Банат" in limited.get_data(as_text=True)  # the form comes back as typed
    # a form with a mistake gets it marked too, beside the wait
    wrong = register(client, lang="pl", **{"contacts-0-email": "not-an-address"}).get_data(as_text=True)
    assert "Spróbuj ponownie za" in wrong and "name@example.org" in wrong  # the example of a valid address
    elsewhere = _client_at(app, "192.0.2.7")
    assert register(elsewhere, **{"contacts-0-email": "c8@banat.example.rs"}).status_code == 302
    assert len(redis_client.keys("{profiles}:org:*")) == 3


def test_only_registrations_made_count_toward_the_limit_not_forms_sent_back(make_app, redis_client):
    """A person fixing mistakes, or adding contact rows, sends the form many times: none of those
    counts, so the limit still lets them register."""
    app = make_app(register_rate_limit="2 per minute")
    client = app.test_client()
    for _ in range(4):
        assert register(client, name="").status_code == 422  # a required field left empty
        assert register(client, add_contact="1").status_code == 200
    for i in range(2):
        assert register(client, **{"contacts-0-email": f"c{i}@banat.example.rs"}).status_code == 302
    assert register(client, **{"contacts-0-email": "c9@banat.example.rs"}).status_code == 429
    assert len(redis_client.keys("{profiles}:org:*")) == 2


def test_a_limit_of_an_hour_says_so_in_the_readers_language(make_app):
    """The hour-long registration limit names the hour, not "a few minutes" (Cyrillic Serbian)."""
    app = make_app(register_rate_limit="1 per hour")
    client = app.test_client()
    assert register(client, **{"contacts-0-email": "c1@banat.example.rs"}).status_code == 302
    limited = register(client, lang="sr-Cyrl", **{"contacts-0-email": "c2@banat.example.rs"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 50 * 60
    assert "Покушајте поново за 1 сат." in limited.get_data(as_text=True)


def test_a_429_without_a_known_limit_still_answers_in_words(make_app):
    app = make_app(register_rate_limit="1 per hour")
    client = app.test_client()
    assert register(client, **{"contacts-0-email": "c1@banat.example.rs"}).status_code == 302
    del app.extensions[pages.LIMITER]  # the page cannot ask which limit was broken
    limited = register(client, lang="de", **{"contacts-0-email": "c2@banat.example.rs"})
    assert limited.status_code == 429
    assert "Warten Sie einige Minuten und versuchen Sie es erneut." in limited.get_data(as_text=True)


def test_signin_requests_are_limited_per_client_and_per_address_known_or_not(make_app, sink):
    app = make_app(signin_rate_limit="2 per minute")
    register(app.test_client())
    for i, address in enumerate((JELENA, "nobody@banat.example.rs")):
        for n in range(2):
            client = _client_at(app, f"192.0.2.{10 * i + n}")
            assert _ask_link(client, address).status_code == 200
        third = _client_at(app, f"192.0.2.{10 * i + 5}")
        refused = _ask_link(third, address)  # another client, the same address: said so, not "from here"
        assert refused.status_code == 429
        assert "Затражено је превише линкова за пријаву за ову адресу." in refused.get_data(as_text=True)
    same_client = _client_at(app, "192.0.2.99")
    answers = [_ask_link(same_client, f"other{n}@banat.example.rs") for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "Превише покушаја одавде." in answers[-1].get_data(as_text=True)
    assert len(mails_to(sink, JELENA)) == 2


def test_the_rate_limits_leave_the_api_alone(make_app):
    app = make_app(register_rate_limit="1 per minute")
    client = app.test_client()
    body = {"name": "X", "cluster_id": "rs-vojvodina-ict", "country": "RS", "capabilities": "a", "goals": "b"}
    assert all(client.post("/v1/organisations", json=body).status_code == 201 for _ in range(3))


def test_a_contact_of_two_organisations_gets_one_mail_with_both_links(app, sink):
    register(app.test_client())
    register(app.test_client(), name="Друга фирма")
    _ask_link(app.test_client(), JELENA)
    [mail] = mails_to(sink, JELENA)
    body = mail.get_body(("plain",)).get_content()
    assert "Софтверска кућа Банат" in body and "Друга фирма" in body
    assert len(re.findall(r"/signin/\S+", body)) == 2


def test_a_contact_person_removed_from_the_organisation_loses_their_session_and_links(app, sink, redis_client):
    marko = "marko@banat.example.rs"
    register(
        app.test_client(),
        **{
            "contacts-1-name": "Marko Marković",
            "contacts-1-email": marko,
            "contacts-1-language": "sr",
            "contacts-1-consent": "yes",
        },
    )
    markos_browser = app.test_client()
    assert _sign_in(markos_browser, sink, marko).status_code == 302
    assert markos_browser.get("/profile").status_code == 200
    spare = app.test_client()
    assert _ask_link(spare, marko).status_code == 200
    unused_link = _path(signin_link(sink, marko))
    org = _stored_org(redis_client)
    jelena = {k: org["contacts"][0][k] for k in ("name", "email", "language", "consent", "share_contact")}
    from ..conftest import ADMIN

    r = app.test_client().patch(
        f"/v1/organisations/{org['id']}", json={"contacts": [jelena]}, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert r.status_code == 200 and len(r.json["contacts"]) == 1
    assert markos_browser.get("/profile").status_code == 302  # signed out: no longer theirs
    page = spare.get(unused_link)
    confirmed = spare.post(unused_link, data={"csrf_token": csrf_of(page.get_data(as_text=True))})
    assert confirmed.status_code != 302 and spare.get("/profile").status_code == 302


def test_removing_yourself_as_a_contact_saves_and_says_why_you_are_signed_out(app, sink, redis_client):
    marko = "marko@banat.example.rs"
    register(
        app.test_client(),
        **{"contacts-1-name": "Marko Marković", "contacts-1-email": marko, "contacts-1-language": "sr"},
    )
    org = _stored_org(redis_client)
    browser = app.test_client()
    assert _sign_in(browser, sink, marko).status_code == 302
    form = registration(
        goals="Tražimo partnere iz Poljske.",
        **{
            "contacts-0-id": org["contacts"][0]["id"],
            "contacts-1-id": org["contacts"][1]["id"],
            "contacts-1-name": "Marko Marković",
            "contacts-1-email": marko,
            "contacts-1-language": "sr",
            "contacts-1-remove": "yes",
        },
    )
    form.pop("cluster_id")
    page = browser.get("/profile?lang=en").get_data(as_text=True)
    saved = browser.post("/profile?lang=en", data={**form, "csrf_token": csrf_of(page)})
    assert saved.status_code == 302 and urlsplit(saved.headers["Location"]).path == "/"
    assert [c["email"] for c in _stored_org(redis_client)["contacts"]] == [JELENA]
    assert _stored_org(redis_client)["goals"] == "Tražimo partnere iz Poljske."
    start = browser.get("/?lang=en").get_data(as_text=True)
    assert "Saved. You are no longer a contact person of this organisation, so your session has ended." in start
    assert browser.get("/profile").status_code == 302


def test_correcting_ones_own_address_keeps_one_signed_in_as_that_address(app, redis_client, sink):
    """The person signed in changes their own row's address: saved, still signed in (a new session
    for the new address, the old one ended), and told where sign-in links go now."""
    assert register(app.test_client()).status_code == 302
    org = _stored_org(redis_client)
    browser = app.test_client()
    others = set(redis_client.keys("{profiles}:web-session:*"))  # the registering browser's
    assert _sign_in(browser, sink, JELENA).status_code == 302
    old_sessions = set(redis_client.keys("{profiles}:web-session:*")) - others
    assert len(old_sessions) == 1
    form = registration(
        **{"contacts-0-id": org["contacts"][0]["id"], "contacts-0-email": "Jelena.Nova@banat.example.rs"}
    )
    form.pop("cluster_id")
    page = browser.get("/profile?lang=en").get_data(as_text=True)
    saved = browser.post("/profile?lang=en", data={**form, "csrf_token": csrf_of(page)})
    assert saved.status_code == 302 and urlsplit(saved.headers["Location"]).path == "/profile"
    profile = browser.get("/profile?lang=en")
    assert profile.status_code == 200
    assert "Saved. Sign-in links now go to Jelena.Nova@banat.example.rs." in profile.get_data(as_text=True)
    [contact] = _stored_org(redis_client)["contacts"]
    assert contact["email"] == "Jelena.Nova@banat.example.rs"
    assert not old_sessions & set(redis_client.keys("{profiles}:web-session:*")), "the old session is ended"
    [moved] = set(redis_client.keys("{profiles}:web-session:*")) - others
    assert 0 < redis_client.ttl(moved) <= app.config["PM_SETTINGS"].page_session_ttl_s, "no extra time"


def test_the_profiles_dates_are_written_as_the_readers_language_writes_them(app, redis_client):
    client = app.test_client()
    assert register(client).status_code == 302
    created = _stored_org(redis_client)["created_at"]
    meta = re.search(r'<p class="meta">([^<]*)</p>', client.get("/profile?lang=pl").get_data(as_text=True))
    written = i18n.day("pl", created)  # "7 gru 2026"
    assert meta and meta[1] == f"Zarejestrowano {written}; ostatnia zmiana {written}."
    assert created[:10] not in client.get("/profile?lang=de").get_data(as_text=True)  # no ISO date anywhere


def test_taking_a_colleagues_address_or_posting_ones_own_id_twice_moves_no_session(app, redis_client, sink):
    """Only one's own row, with an address no contact had, moves the session: a person who removes
    a colleague and writes the colleague's address into their own row is no longer a contact, and
    is signed out, as is one who posts a second row with their own id."""
    marko = "marko@banat.example.rs"
    marko_row = {"contacts-1-name": "Marko", "contacts-1-email": marko, "contacts-1-language": "sr"}
    assert register(app.test_client(), **marko_row).status_code == 302
    org = _stored_org(redis_client)
    jelena_id, marko_id = (c["id"] for c in org["contacts"])
    browser = app.test_client()
    assert _sign_in(browser, sink, JELENA).status_code == 302
    takeover = registration(
        **{
            "contacts-0-id": jelena_id,
            "contacts-0-email": marko,
            "contacts-1-id": marko_id,
            "contacts-1-name": "Marko",
            "contacts-1-email": "marko.old@banat.example.rs",
            "contacts-1-language": "sr",
            "contacts-1-remove": "yes",
        }
    )
    takeover.pop("cluster_id")
    page = browser.get("/profile?lang=en").get_data(as_text=True)
    saved = browser.post("/profile?lang=en", data={**takeover, "csrf_token": csrf_of(page)})
    assert saved.status_code == 302 and urlsplit(saved.headers["Location"]).path == "/", "signed out"
    assert browser.get("/profile").status_code == 302

    twice = app.test_client()
    assert _sign_in(twice, sink, marko).status_code == 302
    org = _stored_org(redis_client)
    [only] = org["contacts"]
    doubled = registration(
        **{
            "contacts-0-id": only["id"],
            "contacts-0-email": "someone.else@banat.example.rs",
            "contacts-1-id": only["id"],
            "contacts-1-name": "Marko",
            "contacts-1-email": marko,
            "contacts-1-language": "sr",
        }
    )
    doubled.pop("cluster_id")
    page = twice.get("/profile?lang=en").get_data(as_text=True)
    saved = twice.post("/profile?lang=en", data={**doubled, "csrf_token": csrf_of(page)})
    assert "Sign-in links now go to" not in twice.get("/profile?lang=en").get_data(as_text=True)


def test_a_text_too_long_is_told_with_the_other_mistakes_not_after_them(make_app):
    app = make_app(max_text_chars=100)
    answer = register(app.test_client(), lang="en", capabilities="Razvoj softvera. " * 10, website="banat")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "At most 100 characters." in page and "Enter a full web address, such as https://example.org." in page


def test_numbers_in_the_forms_messages_are_written_as_the_readers_language_writes_them(make_app):
    app = make_app(max_text_chars=20000)
    for lang, written in (("pl", "20\xa0000"), ("de", "20.000"), ("en", "20,000")):
        page = register(app.test_client(), lang=lang, capabilities="Razvoj softvera. " * 1200).get_data(as_text=True)
        assert f" {written} " in page, lang


def test_a_mistyped_address_of_the_pages_is_a_page_in_the_readers_language(make_app):
    """ "/profile/" or a bookmark of a form's address used to answer the API's JSON, in English."""
    client = make_app().test_client()
    browser = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "Accept-Language": "pl-PL,pl;q=0.9"}
    for path, status in (("/profile/", 404), ("/nope", 404), ("/signout", 405)):
        r = client.get(path, headers=browser)
        assert r.status_code == status and r.mimetype == "text/html", path
        assert "Ta strona nie istnieje" in r.get_data(as_text=True), path
        assert '<html lang="pl">' in r.get_data(as_text=True), path  # a screen reader's voice
        assert 'hreflang="sr-Cyrl"' in r.get_data(as_text=True), path  # and the language switcher
    api = client.get("/v1/nothing", headers=browser)  # the API answers as the API, whoever asks
    assert api.status_code == 404 and api.json["message"]
    for accept in ("*/*", "application/json"):  # curl, monitors, scripts: the JSON as before
        r = client.get("/health/", headers={"Accept": accept})
        assert r.status_code == 404 and r.json["code"] == 404, accept
