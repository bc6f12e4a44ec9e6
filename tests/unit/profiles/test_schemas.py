"""Property-based tests of the profiles API schemas: valid input loads unchanged, anything else is a ValidationError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from partnermatch.display import has_visible_text
from partnermatch.languages import PROFILE_LANGUAGES, READER_LANGUAGES
from partnermatch.vocabulary import need_ids
from services.profiles.domain import COUNTRIES, SECTORS, Principal, can_edit_org, can_read_private
from services.profiles.schemas import CoordinatorCreateSchema, OrganisationCreateSchema, OrganisationUpdateSchema

# Letters of the scripts our users write in, plus punctuation and whitespace inside texts.
SCRIPTS = st.characters(
    codec="utf-8",
    categories=["L", "M", "N", "P", "S", "Zs"],
)
# Valid texts show something: not only spaces, nor a combining mark alone ("꣠"), which draws nothing
line = st.text(SCRIPTS, min_size=1, max_size=80).filter(has_visible_text)
text = st.text(st.one_of(SCRIPTS, st.sampled_from("\n\t")), min_size=1, max_size=400).filter(has_visible_text)

valid_profile = st.fixed_dictionaries(
    {
        "name": line,
        "cluster_id": st.from_regex(r"^[a-z0-9][a-z0-9-]{1,20}[a-z0-9]$", fullmatch=True),
        "country": st.sampled_from(["PL", "RS", "AL", "ME", "RU", "CZ", "RO", "HU", "DE", "XK"]),
        "capabilities": text,
        "goals": text,
    },
    optional={
        "language": st.sampled_from(PROFILE_LANGUAGES),
        "sectors": st.lists(st.sampled_from(SECTORS), max_size=5),
        "offers": st.lists(st.sampled_from(sorted(need_ids())), max_size=10),
        "seeks": st.lists(st.sampled_from(sorted(need_ids())), max_size=10),
        "seeks_countries": st.lists(st.sampled_from(sorted(COUNTRIES)), max_size=10),
        "contacts": st.lists(
            st.fixed_dictionaries(
                {
                    "name": line,
                    "email": st.emails(),
                    "language": st.sampled_from(READER_LANGUAGES),
                    "consent": st.booleans(),
                }
            ),
            max_size=3,
            unique_by=lambda c: c["email"].lower(),
        ),
    },
)


@given(valid_profile)
def test_a_valid_profile_loads_unchanged_in_any_script(body):
    loaded = OrganisationCreateSchema().load(body)
    for key in ("name", "capabilities", "goals", "cluster_id", "country"):
        assert loaded[key] == body[key]
    for key in ("offers", "seeks", "seeks_countries"):
        assert loaded.get(key) == (list(dict.fromkeys(body[key])) if key in body else None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_arbitrary_input_is_either_loaded_or_a_validation_error(body):
    for schema in (OrganisationCreateSchema(), OrganisationUpdateSchema()):
        try:
            schema.load(body)
        except ValidationError as exc:
            assert isinstance(exc.messages, dict)


@given(valid_profile, st.sampled_from(["name", "capabilities", "goals"]), st.sampled_from(["", "  ", "\n\t"]))
def test_blank_texts_are_rejected_whatever_else_is_valid(body, field, blank):
    with pytest.raises(ValidationError) as err:
        OrganisationCreateSchema().load({**body, field: blank})
    assert field in err.value.messages


@given(valid_profile, st.text(min_size=1, max_size=10).map(lambda s: "x_" + s))
def test_unknown_fields_are_rejected(body, extra):
    with pytest.raises(ValidationError) as err:
        OrganisationCreateSchema().load({**body, extra: "value"})
    assert extra in err.value.messages


def test_only_the_organisation_itself_or_the_admin_may_edit_it():
    org = {"id": "org_1"}
    assert can_edit_org(Principal("admin"), "org_1")
    assert can_edit_org(Principal("organisation", org_id="org_1"), "org_1")
    assert not can_edit_org(Principal("organisation", org_id="org_2"), "org_1")
    assert not can_edit_org(Principal("coordinator", cluster_id="c"), "org_1")
    assert not can_edit_org(Principal("service"), "org_1")
    assert not can_edit_org(None, "org_1")
    assert can_read_private(Principal("service"), org) and not can_read_private(None, org)
    assert not can_read_private(Principal("coordinator", cluster_id="c"), org)


# ---- structured needs ---------------------------------------------------------------------------

MINIMAL = {"name": "N", "cluster_id": "rs-ict", "country": "RS", "capabilities": "c", "goals": "g"}


def test_needs_are_optional_and_absent_when_not_given():
    loaded = OrganisationCreateSchema().load(MINIMAL)
    assert not {"offers", "seeks", "seeks_countries"} & set(loaded)


def test_needs_load_in_their_order_with_repeats_counted_once():
    loaded = OrganisationCreateSchema().load(
        {
            **MINIMAL,
            "offers": ["ict.software", "ict", "ict.software"],
            "seeks": ["agrifood", "logistics.cold_chain"],
            "seeks_countries": ["PL", "DE", "PL"],
        }
    )
    assert loaded["offers"] == ["ict.software", "ict"]
    assert loaded["seeks"] == ["agrifood", "logistics.cold_chain"]
    assert loaded["seeks_countries"] == ["PL", "DE"]


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("offers", "rocket-science"),
        ("seeks", "coop.rnd"),
        ("seeks", "ICT"),
        ("seeks_countries", "Serbia"),
        ("seeks_countries", "rs"),
    ],
)
def test_an_unknown_need_is_an_error_naming_the_field_and_the_value(field, bad):
    good = {"offers": "ict", "seeks": "agrifood", "seeks_countries": "PL"}[field]
    with pytest.raises(ValidationError) as err:
        OrganisationUpdateSchema().load({field: [good, bad]})
    assert list(err.value.messages) == [field]
    assert list(err.value.messages[field]) == [1]  # the position of the bad item
    assert repr(bad) in err.value.messages[field][1][0]


def test_cooperation_vocabulary_is_not_a_need_only_sectors_and_activities_are():
    assert {"ict", "ict.software", "agrifood", "logistics.cold_chain"} <= need_ids()
    assert not {i for i in need_ids() if i.startswith("coop.")}


@pytest.mark.parametrize("field", ["offers", "seeks", "seeks_countries"])
def test_at_most_ten_different_needs_but_repeats_do_not_count(field):
    pool = sorted(need_ids()) if field != "seeks_countries" else sorted(COUNTRIES)
    OrganisationUpdateSchema().load({field: pool[:10] + pool[:10]})
    with pytest.raises(ValidationError) as err:
        OrganisationUpdateSchema().load({field: pool[:11]})
    assert field in err.value.messages


@pytest.mark.parametrize("bad", ["ict", None, [1], [["ict"]], {"a": "ict"}])
def test_needs_must_be_lists_of_strings(bad):
    for field in ("offers", "seeks", "seeks_countries"):
        with pytest.raises(ValidationError) as err:
            OrganisationUpdateSchema().load({field: bad})
        assert field in err.value.messages


def test_an_empty_list_clears_the_needs_on_an_update():
    assert OrganisationUpdateSchema().load({"offers": [], "seeks": [], "seeks_countries": []}) == {
        "offers": [],
        "seeks": [],
        "seeks_countries": [],
    }


def test_the_sectors_a_profile_names_are_the_lexicons():
    from partnermatch.vocabulary import get_vocabulary

    assert set(SECTORS) == set(get_vocabulary().sectors)


# ---- text shown to people has no hidden layout characters -----------------------------------

RLO, PDF, LRI, PDI, ZWSP, SHY = "\u202e", "\u202c", "\u2066", "\u2069", "\u200b", "\u00ad"


def test_bidi_overrides_and_invisible_characters_are_removed_from_everything_shown():
    body = {
        "name": f"Klaster {RLO}TCI{PDF} Beograd{ZWSP}",
        "cluster_id": "rs-beograd-ict",
        "country": "RS",
        "capabilities": f"Razvoj{SHY} softvera {LRI}i obuka{PDI}.",
        "goals": "Tražimo partnere\u200e iz poljoprivrede.",
        "contacts": [{"name": f"Ana{RLO} Jović", "email": "ana@example.rs", "language": "sr", "consent": True}],
    }
    loaded = OrganisationCreateSchema().load(body)
    assert loaded["name"] == "Klaster TCI Beograd"
    assert loaded["capabilities"] == "Razvoj softvera i obuka."
    assert loaded["goals"] == "Tražimo partnere iz poljoprivrede."
    assert loaded["contacts"][0]["name"] == "Ana Jović"
    assert OrganisationUpdateSchema().load({"name": f"{RLO}Nova"})["name"] == "Nova"


def test_a_name_made_only_of_invisible_characters_is_blank():
    with pytest.raises(ValidationError) as err:
        OrganisationUpdateSchema().load({"name": f"{ZWSP}{RLO}{PDF}"})
    assert "name" in err.value.messages


@pytest.mark.parametrize(
    "blank",
    [
        "\u200d",  # zero-width joiner (kept in text: emoji sequences use it)
        "\u200c\u200d",  # non-joiner and joiner
        "\u3164",  # Hangul filler, a "letter" that draws nothing
        "\u2800 \u2800",  # Braille blanks
        "\u034f",  # combining grapheme joiner, a mark with nothing to sit on
        "\u115f\u1160",  # Hangul choseong and jungseong fillers
    ],
)
def test_a_name_or_text_of_characters_that_draw_nothing_is_blank(blank):
    for field in ("name", "goals"):
        with pytest.raises(ValidationError) as err:
            OrganisationUpdateSchema().load({field: blank})
        assert err.value.messages[field] == ["Text must not be empty."]


def test_text_with_joiners_between_letters_is_kept_as_written():
    assert OrganisationUpdateSchema().load({"name": "Studio 👩\u200d💻 Tirana"})["name"] == "Studio 👩\u200d💻 Tirana"
    assert OrganisationUpdateSchema().load({"name": "ИТ\u3164Клaстер"})["name"] == "ИТ\u3164Клaстер"
    # an emoji newer than this Python's Unicode, and a private-use character, may draw: not blank
    for drawn in ("\U0001fa77", "\ue000"):
        assert OrganisationUpdateSchema().load({"name": drawn})["name"] == drawn


def test_a_coordinators_password_is_kept_exactly_as_typed():
    loaded = CoordinatorCreateSchema().load(
        {"username": "ana.j", "password": f"tajna{SHY}lozinka{RLO}1", "name": f"Ana{RLO}", "email": "ana@example.rs"}
    )
    assert loaded["password"] == f"tajna{SHY}lozinka{RLO}1"
    assert loaded["name"] == "Ana"


def test_an_address_is_kept_as_mail_reaches_it():
    from partnermatch.mail import LocalPartNotAscii, mail_address

    assert mail_address("jelena@banat.example.rs") == "jelena@banat.example.rs"
    assert mail_address("ivan@пример.срб") == "ivan@xn--e1afmkfd.xn--90a3ac"
    assert mail_address("olga@почта.рф") == "olga@xn--80a1acny.xn--p1ai"
    assert mail_address("no address") == "no address"  # the validator's to refuse
    with pytest.raises(LocalPartNotAscii):
        mail_address("јелена@banat.example.rs")
    with pytest.raises(ValueError):
        mail_address("x@" + "д" * 70 + ".срб")  # a label IDNA cannot write (over 63 bytes)
    # IDNA 2008 as browsers write it, not Python's IDNA 2003 codec (strasse.de is another domain)
    assert mail_address("anna@straße.de") == "anna@xn--strae-oqa.de"
    # UTS 46 maps away what cannot be seen (a zero-width space, a soft hyphen) and folds case: one domain
    assert mail_address("jelena@e\u200bxa\u00admple.СРБ") == mail_address("jelena@example.срб")
    with pytest.raises(ValueError):
        mail_address("jelena@-пример.срб")  # a label may not begin with a hyphen


def test_a_sign_in_looks_an_address_up_in_each_way_it_may_be_stored():
    from services.profiles.domain import address_forms

    assert address_forms(" ivan@xn--e1afmkfd.xn--90a3ac ") == ["ivan@xn--e1afmkfd.xn--90a3ac", "ivan@пример.срб"]
    assert address_forms("ivan@пример.срб") == ["ivan@пример.срб", "ivan@xn--e1afmkfd.xn--90a3ac"]
    assert address_forms("jelena@banat.example.rs") == ["jelena@banat.example.rs"]


def test_an_address_kept_in_idna_reads_in_its_own_script_and_goes_back_the_same():
    from partnermatch.mail import mail_address, readable_address

    for typed in ("ivan@пример.срб", "a@straße.de", "anna@example.pl"):
        assert mail_address(readable_address(mail_address(typed))) == mail_address(typed)
    assert readable_address("ivan@xn--e1afmkfd.xn--90a3ac") == "ivan@пример.срб"
    assert readable_address("anna@example.pl") == "anna@example.pl"
    assert readable_address("x@xn--zz--broken") == "x@xn--zz--broken"  # no IDNA: as it is
