"""The organisations' pages speak every reader language: the "organisations" catalogue is complete,
current and keeps its placeholders, and the API schemas' messages reach the page translated."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po
from marshmallow import ValidationError

from partnermatch import i18n
from partnermatch.languages import READER_LANGUAGES
from services.profiles import page_text
from services.profiles.forms import OrgForm
from services.profiles.schemas import OrganisationCreateSchema

DOMAIN = "organisations"
# Words that are the same in English and some languages.
SAME_IN_SOME_LANGUAGES = {"Cluster", "Name", "Profile", "Website (optional)"}


def _ids() -> list[str]:
    with (i18n.LOCALE_DIR / f"{DOMAIN}.pot").open("rb") as fh:
        return [m.id for m in read_po(fh) if m.id]


def test_every_message_is_translated_into_every_language():
    assert i18n.untranslated(DOMAIN) == {}


def test_every_translation_keeps_exactly_the_placeholders_of_its_message():
    assert i18n.placeholder_mismatches(DOMAIN) == {}


def test_the_committed_template_lists_exactly_the_messages_of_the_sources():
    extracted = {m.id for m in i18n.extract(DOMAIN) if m.id}
    assert extracted and set(_ids()) == extracted, "run `make messages MESSAGE_DOMAINS=organisations`"
    for lang in i18n.CATALOGUE_LANGUAGES:
        assert {m.id for m in i18n.read_catalogue(lang, DOMAIN) if m.id} == extracted, lang


def test_every_reader_language_renders_every_message_with_its_values_and_its_own_words():
    for lang in READER_LANGUAGES:
        for msgid in _ids():
            values = {name: f"<{name}>" for name in re.findall(r"%\((\w+)\)s", msgid)}
            text = i18n.gettext(lang, DOMAIN, msgid, **values)
            assert all(v in text for v in values.values()), (lang, msgid, text)
            if lang != "en" and msgid not in SAME_IN_SOME_LANGUAGES:
                assert text != (msgid % values if values else msgid), (lang, msgid)


def test_serbian_cyrillic_is_cyrillic_apart_from_placeholders_and_the_product_name():
    for msgid in _ids():
        text = i18n.translations("sr-Cyrl", DOMAIN).gettext(msgid)
        assert not re.search(r"[A-Za-zčćđšžČĆĐŠŽ]", re.sub(r"%\(\w+\)s|partnermatch", "", text)), (msgid, text)


def _schema_messages(body: dict) -> dict:
    try:
        OrganisationCreateSchema().load(body)
    except ValidationError as exc:
        return exc.messages  # type: ignore[return-value]
    return {}


BAD = {
    "name": "two\nlines",
    "cluster_id": "Not A Cluster",
    "country": "ZZ",
    "language": "xx",
    "capabilities": "   ",
    "sectors": ["ict", "nope", "energy", "health", "wood", "metal"],
    "offers": ["nope"],
    "seeks_countries": ["ZZ"],
    "website": "banat",
    "contacts": [
        {"name": "", "email": "x", "language": "xx", "consent": True},
        {"name": "A", "email": "a@example.org", "language": "sr", "consent": True},
        {"name": "B", "email": "A@example.org", "language": "sr", "consent": True},
    ],
}


@pytest.mark.parametrize("lang", ["sq", "pl", "sr-Cyrl", "uk"])
def test_every_message_the_schemas_give_reaches_the_page_translated(lang):
    english = {
        text
        for texts in page_text.page_errors(_schema_messages(BAD), lambda m, **v: m % v if v else m, [0, 1, 2]).values()
        for text in texts
    }
    translated = page_text.page_errors(
        _schema_messages(BAD), lambda m, **v: i18n.gettext(lang, DOMAIN, m, **v), [0, 1, 2]
    )
    fields = {
        "name",
        "cluster_id",
        "country",
        "language",
        "capabilities",
        "goals",
        "sectors",
        "offers",
        "seeks_countries",
        "website",
        "contacts-0-name",
        "contacts-0-email",
        "contacts-0-language",
    }
    assert fields <= set(translated)
    assert not english & {text for texts in translated.values() for text in texts}
    assert page_text.CHECK not in english, "a schema message the page does not know"


def test_the_schemas_own_rule_on_duplicate_emails_reaches_the_contacts_list():
    body = {
        **{k: v for k, v in BAD.items() if k != "contacts"},
        "name": "Ok",
        "cluster_id": "rs-ict",
        "country": "RS",
        "capabilities": "a",
        "goals": "b",
        "sectors": ["ict"],
        "offers": ["ict"],
        "seeks_countries": ["PL"],
        "website": "https://ok.example",
        "language": "sr",
        "contacts": BAD["contacts"][1:],
    }
    errors = page_text.page_errors(_schema_messages(body), lambda m, **v: m, [3, 4])
    assert errors == {
        "contacts": [page_text.page_message("contacts", "Each contact needs its own email address.", lambda m, **v: m)]
    }


def test_a_name_of_invisible_characters_only_is_told_once_to_be_filled_in():
    body = {  # invisible characters are taken out, as they are never shown: the name is empty
        "name": "\u200b\u2066",
        "cluster_id": "rs-ict",
        "country": "RS",
        "capabilities": "Razvoj softvera",
        "goals": "Partneri u Poljskoj",
        "contacts": [{"name": "Ana", "email": "ana@example.rs", "language": "sr", "consent": True}],
    }
    errors = page_text.page_errors(_schema_messages(body), lambda m, **v: m % v if v else m)
    assert errors == {"name": [page_text.FILL_IN]}


def test_errors_of_contacts_go_back_to_the_row_they_were_typed_in():
    form = OrgForm.from_form(
        _Form(
            {
                "contacts-0-name": "",
                "contacts-0-email": "",
                "contacts-3-name": "Ana",
                "contacts-3-email": "bad",
                "contacts-3-language": "sr",
            }
        )
    )
    body, rows = form.to_api(editing=False)
    assert len(body["contacts"]) == 1 and rows == [1]
    errors = page_text.page_errors(_schema_messages(body), lambda m, **v: m % v if v else m, rows)
    assert "contacts-1-email" in errors


class _Form(dict):
    def getlist(self, key):
        value = self.get(key)
        return value if isinstance(value, list) else ([] if value is None else [value])
