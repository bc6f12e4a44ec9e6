"""What the partnership email says, in which language; profile texts cannot break its HTML."""

from __future__ import annotations

import re

import pytest

from partnermatch import i18n
from partnermatch.languages import READER_LANGUAGES
from services.notifier import render
from services.notifier.render import (
    Coordinator,
    PartnerProfile,
    PartnershipEmail,
    SharedContact,
    email_language,
    reasons_for_side,
    render_page,
    render_partnership_email,
)

PARTNER = PartnerProfile(
    name="Śląski Klaster ICT",
    country="PL",
    cluster="Silesia ICT cluster",
    language="pl",
    capabilities="Tworzymy oprogramowanie dla rolnictwa.\nSzkolenia dla 40 firm.",
    goals="Szukamy partnerów z Serbii.",
    website="https://klaster.example.pl",
)


def email(**over) -> PartnershipEmail:
    values = {
        "recipient_name": "Jelena Petrović",
        "organisation_name": "Klaster IKT Novi Sad",
        "partner": PARTNER,
        "unsubscribe_url": "http://127.0.0.1:8083/unsubscribe/tok",
        "they_offer_you_seek": ("rolnictwo",),
        "you_offer_they_seek": ("softver",),
        "shared": ("obuka",),
        "coordinators": (Coordinator("Anna Nowak", "anna@example.pl", "Silesia ICT cluster"),),
    }
    values.update(over)
    return PartnershipEmail(**values)


SUBJECT_START = {
    "en": "Approved partnership",
    "pl": "Zatwierdzone partnerstwo",
    "sr": "Odobreno partnerstvo",
    "sr-Cyrl": "Одобрено партнерство",
    "hr": "Odobreno partnerstvo",
    "bs": "Odobreno partnerstvo",
    "sl": "Odobreno partnerstvo",
    "mk": "Одобрено партнерство",
    "bg": "Одобрено партньорство",
    "ru": "Партнёрство одобрено",
    "uk": "Партнерство схвалено",
    "cs": "Schválené partnerství",
    "sk": "Schválené partnerstvo",
    "ro": "Parteneriat aprobat",
    "hu": "Jóváhagyott partnerség",
    "sq": "Partneritet i miratuar",
    "de": "Genehmigte Partnerschaft",
}


def test_an_email_is_written_in_every_reader_language():
    assert set(SUBJECT_START) == set(READER_LANGUAGES)


@pytest.mark.parametrize("lang", list(SUBJECT_START))
def test_email_is_written_in_the_contacts_language(lang):
    out = render_partnership_email(email(), lang)
    assert out.language == lang
    assert out.subject == f"{SUBJECT_START[lang]}: Śląski Klaster ICT"
    for heading in ("Why this match", "Approved by"):
        assert i18n.gettext(lang, "emails", heading) + "\n" in out.text
        assert f">{i18n.gettext(lang, 'emails', heading)}<" in out.html
    assert f'<html lang="{lang}">' in out.html


# A few words a reader of the language finds in the email, written without looking at the catalogue.
KNOWN_WORDS = {
    "pl": ("Koordynatorzy obu klastrów zatwierdzili partnerstwo", "Dlaczego to dopasowanie", "Wypisz się"),
    "sq": ("Koordinatorët e të dy klasterëve miratuan", "Pse kjo përputhje", "Çregjistrohuni"),
    "uk": ("Координатори обох кластерів схвалили партнерство", "Що пропонує", "Відписатися"),
    "de": ("Die Koordinatoren beider Cluster haben eine Partnerschaft", "genehmigt", "abbestellen"),
}


@pytest.mark.parametrize("lang", list(KNOWN_WORDS))
def test_a_partnership_email_is_really_in_the_readers_language(lang):
    out = render_partnership_email(email(), lang)
    for words in KNOWN_WORDS[lang]:
        assert words in out.text and words in out.html, words
    assert "The coordinators" not in out.text and "Unsubscribe" not in out.html


def test_serbian_cyrillic_email_is_in_cyrillic_script_and_latin_serbian_is_not():
    cyr = render_partnership_email(email(), "sr-Cyrl")
    latin = render_partnership_email(email(), "sr")
    assert "Поштовани/а Jelena Petrović," in cyr.text
    assert "Координатори оба кластера одобрили су партнерство" in cyr.text
    assert "Poštovani/a Jelena Petrović," in latin.text
    assert "на платформи partnermatch." in cyr.text, "the product's name stays as written"
    # The fixed words are Cyrillic: what is left in Latin script are the profiles' own words.
    fixed = cyr.text
    for own in (
        "Jelena Petrović",
        "Klaster IKT Novi Sad",
        "Śląski Klaster ICT",
        "Silesia ICT cluster",
        "Anna Nowak",
        "Tworzymy oprogramowanie dla rolnictwa.",
        "Szkolenia dla 40 firm.",
        "Szukamy partnerów z Serbii.",
        "rolnictwo",
        "softver",
        "obuka",
        "partnermatch",
        "https://klaster.example.pl",
        "http://127.0.0.1:8083/unsubscribe/tok",
        "anna@example.pl",
        "PL",
    ):
        fixed = fixed.replace(own, "")
    assert not re.search(r"[A-Za-zčćđšžČĆĐŠŽ]", fixed), fixed


@pytest.mark.parametrize("requested", ["fr", "it", None, "", "xx", "EN"])
def test_other_languages_fall_back_to_english(requested):
    out = render_partnership_email(email(), requested)
    assert out.language == "en"
    assert out.subject.startswith("Approved partnership")


def test_serbian_cyrillic_is_recognised_however_it_is_spelled():
    assert email_language("sr-Cyrl") == "sr-Cyrl"
    assert email_language("sr-cyrl") == "sr-Cyrl"
    assert email_language("sr_Cyrl") == "sr-Cyrl"
    assert email_language("sr") == "sr"


def test_the_contacts_language_comes_first_then_the_organisations_then_english():
    assert email_language("uk", "pl") == "uk"
    assert email_language(None, "pl") == "pl"
    assert email_language("", "hu") == "hu"
    assert email_language("fr", "de") == "de"
    assert email_language("fr", None) == "en"
    assert email_language() == "en"


def test_the_partners_shared_contacts_replace_the_advice_to_ask_a_coordinator():
    shared = (SharedContact("Piotr Wiśniewski", "piotr@klaster.example.pl"),)
    out = render_partnership_email(email(partner_contacts=shared), "pl")
    assert "Jak skontaktować się z Śląski Klaster ICT" in out.text
    assert "  Piotr Wiśniewski <piotr@klaster.example.pl>" in out.text
    assert 'href="mailto:piotr@klaster.example.pl"' in out.html
    assert "napisz do jednego z koordynatorów" not in out.text + out.html
    assert "Anna Nowak <anna@example.pl>" in out.text, "the coordinators are still named"

    without = render_partnership_email(email(), "pl")
    assert "Jak skontaktować się" not in without.text + without.html
    assert "napisz do jednego z koordynatorów" in without.text
    assert "napisz do jednego z koordynatorów" in without.html


def test_the_email_links_to_the_readers_partnerships_page_and_the_partners_website():
    url = "https://partnermatch.example.org/partnerships"
    out = render_partnership_email(email(partnerships_url=url), "uk")
    assert f"Усі партнерства організації Klaster IKT Novi Sad: {url}" in out.text
    assert f'<a href="{url}">Усі партнерства організації Klaster IKT Novi Sad</a>' in out.html
    assert "Вебсайт: https://klaster.example.pl" in out.text
    assert '<a href="https://klaster.example.pl">' in out.html
    assert "партнерства організації" not in render_partnership_email(email(), "uk").text
    hostile = render_partnership_email(email(partnerships_url="javascript:alert(1)"), "en")
    assert "javascript:" not in hostile.html + hostile.text


def test_shared_contacts_are_escaped_in_html_and_one_line_in_text():
    shared = (SharedContact('Eve <script>"x"\r\nBcc: y', "eve@example.org"),)
    out = render_partnership_email(email(partner_contacts=shared), "en")
    assert "<script>" not in out.html and "Eve &lt;script&gt;&#34;x&#34; Bcc: y" in out.html
    assert '  Eve <script>"x" Bcc: y <eve@example.org>' in out.text


def test_partner_texts_are_escaped_in_html_and_verbatim_in_plain_text():
    hostile = PartnerProfile(
        name='Evil <img src=x onerror="alert(1)"> & Co',
        country="RS",
        cluster="<b>cluster</b>",
        language="sr",
        capabilities="<script>alert('x')</script>\nline two & more",
        goals='"quoted" <i>goal</i>',
        website="javascript:alert(1)",
    )
    out = render_partnership_email(
        email(partner=hostile, recipient_name="<Bob>", they_offer_you_seek=("<u>x</u>",)), "en"
    )
    assert "<script>" not in out.html and "<img" not in out.html and "<i>" not in out.html
    assert "<b>cluster" not in out.html and "<u>" not in out.html and "<Bob>" not in out.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;<br>" in out.html
    assert "Evil &lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; Co" in out.html
    assert "javascript:" not in out.html, "only http(s) websites become links"
    assert "<script>alert('x')</script>" in out.text, "the plain text part shows the text as written"


def test_partner_texts_stay_in_their_original_language_with_a_lang_attribute():
    out = render_partnership_email(email(), "sq")
    assert "Tworzymy oprogramowanie dla rolnictwa." in out.text
    assert '<p lang="pl">Tworzymy oprogramowanie dla rolnictwa.<br>' in out.html
    assert "Çfarë ofron (teksti origjinal)" in out.text


def test_coordinators_name_and_email_are_in_the_email():
    out = render_partnership_email(email(), "pl")
    assert "Anna Nowak <anna@example.pl> (Silesia ICT cluster)" in out.text
    assert 'href="mailto:anna@example.pl"' in out.html


def test_unsubscribe_link_is_in_both_parts():
    out = render_partnership_email(email(), "ru")
    assert "Отписаться от писем о партнёрствах: http://127.0.0.1:8083/unsubscribe/tok" in out.text
    assert '<a href="http://127.0.0.1:8083/unsubscribe/tok">' in out.html


def test_names_with_line_breaks_become_one_line_in_the_subject():
    out = render_partnership_email(
        email(partner=PartnerProfile("ACME\r\nBcc: evil@example.org", "RS", "c", "sr", "x", "y")),
        "en",
    )
    assert "\n" not in out.subject and "\r" not in out.subject
    assert out.subject == "Approved partnership: ACME Bcc: evil@example.org"


def test_reasons_are_grouped_from_the_readers_side_with_the_partners_words_first():
    reasons = [
        {
            "concept": None,
            "kind": "term",
            "direction": "a_offers_b_seeks",
            "weight": 0.4,
            "terms_a": ["oprogramowanie"],
            "terms_b": ["softver"],
        },
        {
            "concept": None,
            "kind": "term",
            "direction": "b_offers_a_seeks",
            "weight": 0.6,
            "terms_a": ["rolnictwo"],
            "terms_b": ["poljoprivreda"],
        },
        {
            "concept": None,
            "kind": "term",
            "direction": "shared",
            "weight": 0.1,
            "terms_a": ["ai"],
            "terms_b": ["ai"],
        },
    ]
    partner_offers, own_offers, shared = reasons_for_side(reasons, "a", "en")
    assert partner_offers == ("poljoprivreda ↔ rolnictwo",)
    assert own_offers == ("softver ↔ oprogramowanie",)
    assert shared == ("ai",)  # the same word on both sides is shown once
    partner_offers_b, own_offers_b, _ = reasons_for_side(reasons, "b", "en")
    assert partner_offers_b == ("oprogramowanie ↔ softver",)
    assert own_offers_b == ("rolnictwo ↔ poljoprivreda",)


def test_reason_words_are_not_transliterated_for_a_cyrillic_reader():
    lines = reasons_for_side(
        [
            {
                "concept": None,
                "kind": "term",
                "direction": "shared",
                "weight": 1,
                "terms_a": ["rolnictwo"],
                "terms_b": ["poljoprivreda"],
            }
        ],
        "a",
        "sr-Cyrl",
    )
    assert lines[2] == ("poljoprivreda ↔ rolnictwo",)


def test_reason_falls_back_to_concept_and_terms_when_the_concept_labels_cannot_be_read(monkeypatch):
    def unreadable(concept_id):
        raise OSError("lexicon missing")

    monkeypatch.setattr(render.vocabulary, "concept_labels", unreadable)
    line = render.describe_reason({"concept": "agri.farming", "terms_a": ["rolnictwo"], "terms_b": ["farm"]}, "pl")
    assert line == "agri.farming (rolnictwo ↔ farm)"
    assert render.describe_reason({"concept": "agri.farming"}, "pl") == "agri.farming"


def test_unsubscribe_pages_escape_the_address_and_post_to_the_same_link():
    page = render_page("confirm", "pl", email='a"<b>@example.org', action="/unsubscribe/abc")
    assert "a&#34;&lt;b&gt;@example.org" in page
    assert '<form method="post" action="/unsubscribe/abc">' in page
    assert "Wypisz się" in page
    done = render_page("done", "sr-Cyrl", email="x@example.org", action="/unsubscribe/abc")
    # no second Unsubscribe: the one form subscribes again, by the same link
    assert (
        '<form method="post" action="/resubscribe/abc"><button type="submit">Пријави ме поново</button></form>' in done
    )
    assert done.count("<form") == 1
    assert "<form" not in render_page("again", "sr-Cyrl", email="x@example.org", action="/resubscribe/abc")
    assert "Одјављени сте" in render_page("done", "sr-Cyrl", email="x@example.org")


@pytest.mark.parametrize("lang", [lang for lang in READER_LANGUAGES if lang != "en"])
def test_every_unsubscribe_page_is_in_every_reader_language(lang):
    for kind in render.PAGE_KINDS:
        page = render_page(kind, lang, email="x@example.org", action="/unsubscribe/abc")
        english = render_page(kind, "en", email="x@example.org", action="/unsubscribe/abc")
        title = re.search(r"<h1>(.*)</h1>", page).group(1)
        assert title != re.search(r"<h1>(.*)</h1>", english).group(1), (lang, kind)
        assert f'<html lang="{lang}">' in page
        assert ("x@example.org" in page) == (kind != "invalid")


def test_an_unknown_page_is_a_programming_error():
    with pytest.raises(ValueError):
        render_page("welcome", "pl")


@pytest.mark.parametrize("lang", ["en", "pl", "sr-Cyrl", "de"])
def test_a_name_ending_with_a_full_stop_ends_a_sentence_with_one(lang):
    from dataclasses import replace

    partner = replace(PARTNER, name="Softmedia sp. z o.o.")
    rendered = render_partnership_email(email(partner=partner, organisation_name="Agro & Co d.o.o."), lang)
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "o.o.." not in part, (lang, part)
    assert "Softmedia sp. z o.o." in rendered.text and "Agro &amp; Co d.o.o." in rendered.html
