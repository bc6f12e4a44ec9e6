"""The message catalogues are complete and current, and the shared i18n module reads them, changes
Serbian to Cyrillic and negotiates a page's language as intended."""

from __future__ import annotations

import re

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po
from flask import Flask, request

from partnermatch import i18n
from partnermatch.languages import PROFILE_LANGUAGES, READER_LANGUAGES

# The domains whose catalogues are kept here (the organisations' pages test their own).
OWN_DOMAINS = ("coordinators", "emails")


# ---- the committed catalogues -----------------------------------------------------------------


@pytest.mark.parametrize("domain", OWN_DOMAINS)
def test_every_message_is_translated_into_every_language(domain):
    assert i18n.untranslated(domain) == {}


@pytest.mark.parametrize("domain", OWN_DOMAINS)
def test_every_language_has_a_catalogue_file(domain):
    missing = [lang for lang in i18n.CATALOGUE_LANGUAGES if not i18n.catalogue_path(lang, domain).exists()]
    assert missing == []
    assert set(i18n.CATALOGUE_LANGUAGES) == set(PROFILE_LANGUAGES) - {"en"}


@pytest.mark.parametrize("domain", OWN_DOMAINS)
def test_every_translation_keeps_exactly_the_placeholders_of_its_message(domain):
    assert i18n.placeholder_mismatches(domain) == {}


@pytest.mark.parametrize("domain", OWN_DOMAINS)
def test_the_committed_template_lists_exactly_the_messages_of_the_sources(domain):
    with (i18n.LOCALE_DIR / f"{domain}.pot").open("rb") as fh:
        committed = {m.id for m in read_po(fh) if m.id}
    extracted = {m.id for m in i18n.extract(domain) if m.id}
    assert extracted, "nothing extracted: babel.cfg or i18n.SOURCES point nowhere"
    assert committed == extracted, "run `make messages` and translate what it adds"


@pytest.mark.parametrize("domain", OWN_DOMAINS)
def test_no_catalogue_translates_a_message_the_sources_no_longer_have(domain):
    wanted = {m.id for m in i18n.extract(domain) if m.id}
    for lang in i18n.CATALOGUE_LANGUAGES:
        extra = {m.id for m in i18n.read_catalogue(lang, domain) if m.id} - wanted
        assert extra == set(), lang


@pytest.mark.parametrize("domain", OWN_DOMAINS)
def test_serbian_cyrillic_is_cyrillic_apart_from_placeholders_the_product_name_and_file_formats(domain):
    catalogue = i18n.read_catalogue("sr", domain)
    for message in catalogue:
        if not message.id:
            continue
        cyrillic = i18n.translations("sr-Cyrl", domain).gettext(message.id)
        assert i18n.placeholders(cyrillic) == i18n.placeholders(message.id), message.id
        fixed = re.sub(r"%\(\w+\)s|partnermatch|\b(?:CSV|JSON|PDF)\b", "", cyrillic)
        assert not re.search(r"[A-Za-zčćđšžČĆĐŠŽ]", fixed), (message.id, cyrillic)
        assert cyrillic == i18n.to_cyrillic(message.string)


@pytest.mark.parametrize("domain", OWN_DOMAINS)
def test_every_reader_language_renders_every_message_with_its_values(domain):
    with (i18n.LOCALE_DIR / f"{domain}.pot").open("rb") as fh:
        ids = [m.id for m in read_po(fh) if m.id]
    for lang in READER_LANGUAGES:
        for msgid in ids:
            values = {name: f"<{name}>" for name in re.findall(r"%\((\w+)\)s", msgid)}
            text = i18n.gettext(lang, domain, msgid, **values)
            assert all(v in text for v in values.values()), (lang, msgid, text)
            if lang != "en" and msgid not in _SAME_IN_SOME_LANGUAGES:
                assert text != msgid % values if values else text != msgid, (lang, msgid)


# Words that are the same in English and some languages ("Cluster" in German, "Web" in Czech…).
_SAME_IN_SOME_LANGUAGES = {"Cluster", "Website", "Password", "Language", "Score", "Approved by", "Name"}


# ---- the module: catalogues ---------------------------------------------------------------------


@pytest.fixture
def scratch_locale(tmp_path, monkeypatch):
    """A locale folder of our own with an `emails` template and a Polish catalogue written by the
    test; the cache of read catalogues is emptied before and after."""
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()

    def write(entries, lang="pl", domain="emails"):
        template, catalogue = Catalog(domain=domain), Catalog(locale=lang, domain=domain)
        for msgid, msgstr, fuzzy in entries:
            template.add(msgid)
            catalogue.add(msgid, msgstr, flags=("fuzzy",) if fuzzy else ())
        (tmp_path / lang / "LC_MESSAGES").mkdir(parents=True, exist_ok=True)
        with (tmp_path / f"{domain}.pot").open("wb") as fh:
            write_po(fh, template)
        with i18n.catalogue_path(lang, domain).open("wb") as fh:
            write_po(fh, catalogue)

    yield write
    i18n.translations.cache_clear()


def test_a_fuzzy_entry_is_neither_a_translation_nor_used(scratch_locale):
    scratch_locale([("Unsubscribe", "Wypisz się", False), ("Hello,", "Cześć,", True), ("Country", "", False)])
    assert i18n.untranslated("emails", ["pl"]) == {"pl": ["Hello,", "Country"]}
    assert i18n.gettext("pl", "emails", "Hello,") == "Hello,"
    assert i18n.gettext("pl", "emails", "Unsubscribe") == "Wypisz się"


def test_a_language_without_a_catalogue_lacks_every_message_and_reads_english(scratch_locale):
    scratch_locale([("Unsubscribe", "Wypisz się", False)])
    assert i18n.untranslated("emails", ["de"]) == {"de": ["Unsubscribe"]}
    assert i18n.gettext("de", "emails", "Unsubscribe") == "Unsubscribe"


def test_a_broken_placeholder_is_found(scratch_locale):
    scratch_locale(
        [
            ("Dear %(name)s,", "Dzień dobry %(imie)s,", False),
            ("About %(partner)s", "O organizacji", False),
            ("Approved: %(partner)s", "Zatwierdzone: %(partner)s", False),
            ("Hello,", "Cześć %(name)s,", True),
        ]
    )  # fuzzy: never used, not checked
    assert i18n.placeholder_mismatches("emails", ["pl"]) == {"pl": ["Dear %(name)s,", "About %(partner)s"]}


def test_unknown_domains_and_languages(scratch_locale):
    with pytest.raises(ValueError):
        i18n.translations("pl", "nonsense")
    assert i18n.gettext("xx", "emails", "Unsubscribe") == "Unsubscribe"


def test_serbian_cyrillic_keeps_placeholders_markup_addresses_and_the_product_name():
    text = 'Poštovani/a %(name)s, <a href="https://primer.rs/odjava">odjava</a> &amp; partnermatch {x} lj nj dž'
    assert i18n.to_cyrillic(text) == (
        'Поштовани/а %(name)s, <a href="https://primer.rs/odjava">одјава</a> &amp; partnermatch {x} љ њ џ'
    )


def test_placeholders_are_compared_as_a_sorted_list():
    assert i18n.placeholders("%(b)s and %(a)s, 100%%") == ["%%", "%(a)s", "%(b)s"]
    assert i18n.placeholders("%(a)s %(a)s") != i18n.placeholders("%(a)s")


@pytest.mark.parametrize(
    "tag, lang",
    [
        ("sr-Latn-RS", "sr"),
        ("sr", "sr"),
        ("sr-RS", "sr"),
        ("sr-Cyrl", "sr-Cyrl"),
        ("sr_Cyrl_RS", "sr-Cyrl"),
        ("SR-cyrl", "sr-Cyrl"),
        ("PL", "pl"),
        ("de-AT", "de"),
        ("uk-UA", "uk"),
        ("fr", ""),
        ("", ""),
        (None, ""),
        ("*", ""),
    ],
)
def test_a_language_tag_as_a_reader_language(tag, lang):
    assert i18n.reader_language(tag) == lang


# ---- the module: negotiation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "asked, remembered, accept, expected",
    [
        (None, None, [("sr-Latn-RS", 1.0), ("en", 0.5)], "sr"),
        (None, None, [("sr-Cyrl", 1.0)], "sr-Cyrl"),
        (None, None, [("fr-FR", 1.0), ("de", 0.8), ("pl", 0.9)], "pl"),
        (None, None, [("pl", 0.0), ("hu", 0.2)], "hu"),
        (None, None, [("fr", 1.0)], "en"),
        (None, None, [], "en"),
        (None, "uk", [("de", 1.0)], "uk"),
        ("sq", "uk", [("de", 1.0)], "sq"),
        ("xx", "uk", [("de", 1.0)], "uk"),
        ("xx", "yy", [("de", 1.0)], "de"),
    ],
)
def test_the_asked_language_wins_then_the_remembered_one_then_the_browsers(asked, remembered, accept, expected):
    assert i18n.negotiate(asked, remembered, accept) == expected


def _app() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def page():  # type: ignore[no-untyped-def]
        lang = i18n.page_language(request)
        response = app.make_response(lang)
        i18n.remember(response, request, lang)
        return response

    return app


def test_a_page_reads_the_browsers_language_and_remembers_only_a_chosen_one():
    client = _app().test_client()
    r = client.get("/", headers={"Accept-Language": "sr-Latn-RS,sr;q=0.9,en;q=0.5"})
    assert r.get_data(as_text=True) == "sr" and "Set-Cookie" not in r.headers
    assert client.get("/", headers={"Accept-Language": "sr-Cyrl-RS"}).get_data(as_text=True) == "sr-Cyrl"

    r = client.get("/?lang=uk", headers={"Accept-Language": "de"})
    assert r.get_data(as_text=True) == "uk"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"{i18n.COOKIE}=uk;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    r = client.get("/", headers={"Accept-Language": "de"})
    assert r.get_data(as_text=True) == "uk", "the choice is remembered"
    assert "Set-Cookie" not in client.get("/?lang=uk").headers, "nothing new to remember"
    assert client.get("/?lang=de").get_data(as_text=True) == "de"
    assert client.get("/").get_data(as_text=True) == "de"


def test_a_forged_cookie_is_ignored():
    client = _app().test_client()
    client.set_cookie(i18n.COOKIE, "<script>")
    assert client.get("/", headers={"Accept-Language": "ro"}).get_data(as_text=True) == "ro"


def test_the_switcher_lists_every_reader_language_by_its_native_name():
    entries = i18n.switcher("sr-Cyrl")
    assert [e["code"] for e in entries] == list(READER_LANGUAGES)
    assert {e["code"]: e["name"] for e in entries}["uk"] == "українська"
    assert [e["code"] for e in entries if e["current"]] == ["sr-Cyrl"]


# ---- the module: Jinja -------------------------------------------------------------------------


def test_jinja_templates_translate_with_the_current_language_and_escape_values():
    from jinja2 import Environment

    current = {"lang": "pl"}
    env = Environment(autoescape=True)
    i18n.install(env, "emails", lambda: current["lang"])
    template = env.from_string(
        '{{ _("Approved partnership: %(partner)s", partner=name) }}|{% trans %}Unsubscribe{% endtrans %}'
    )
    assert template.render(name="<b>A&B</b>") == "Zatwierdzone partnerstwo: &lt;b&gt;A&amp;B&lt;/b&gt;|Wypisz się"
    current["lang"] = "sr-Cyrl"
    assert template.render(name="ACME") == "Одобрено партнерство: ACME|Одјави ме"
    current["lang"] = "en"
    assert template.render(name="ACME") == "Approved partnership: ACME|Unsubscribe"


def test_a_name_that_ends_with_a_full_stop_ends_the_sentence_with_one():
    """ "Sp. z o.o.", "Kft.", "d.o.o.", "s.r.o." end most of our organisations' names."""
    from jinja2 import Environment

    deleting = "Yes, delete %(name)s for good."
    assert i18n.gettext("sq", "organisations", deleting, name="Ferma Bio sh.p.k.") == (
        "Po, fshije përgjithmonë Ferma Bio sh.p.k."
    )
    assert i18n.gettext("pl", "organisations", deleting, name="Bio Sp. z o.o.") == "Tak, usuń Bio Sp. z o.o. na zawsze."
    assert i18n.gettext("sq", "organisations", deleting, name="Ferma Bio") == "Po, fshije përgjithmonë Ferma Bio."
    current = {"lang": "de"}
    env = Environment(autoescape=True)
    i18n.install(env, "organisations", lambda: current["lang"])
    page = env.from_string("{{ _(message, name=name) }}")
    assert page.render(message=deleting, name="Dunav <d.o.o.>") == "Ja, Dunav &lt;d.o.o.&gt; endgültig löschen."
    assert page.render(message="Erase %(name)s.", name="Dunav d.o.o.") == "Erase Dunav d.o.o."


def test_dates_and_times_are_written_as_the_readers_language_writes_them():
    stamp = "2026-12-07T07:02:00.000+00:00"
    assert [i18n.day(lang, stamp) for lang in ("pl", "de", "hu", "en")] == [
        "7 gru 2026",
        "07.12.2026",
        "2026. dec. 7.",
        "Dec 7, 2026",
    ]
    assert i18n.day("pl", "2026-09-21", "short") == "21.09.2026"
    assert i18n.moment("de", stamp) == "07.12.2026, 07:02 UTC"
    assert i18n.moment("pl", "2026-12-07T07:02:00") == "7 gru 2026, 07:02 UTC"  # no zone written: UTC
    assert i18n.day("pl", None) == "" and i18n.moment("pl", "") == ""
    assert i18n.day("pl", "soon") == "soon" and i18n.moment("pl", "soon") == "soon"  # no date: as written
