"""The write routes' plain load (write_routes.plain_load) gives what the schema's load gives: it loads
the plainest valid requests itself, and whatever it takes from odd ones equals marshmallow's result;
what it does not take, marshmallow answers (with its errors)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, post_load, validates

from services.profiles.entrypoints import write_routes
from services.profiles.schemas import OrganisationCreateSchema, OrganisationUpdateSchema
from tests.unit.profiles.test_schemas import valid_profile

REGISTRATION, EDIT = OrganisationCreateSchema(), OrganisationUpdateSchema()
QUICK = {REGISTRATION: write_routes.plain_load(REGISTRATION), EDIT: write_routes.plain_load(EDIT)}

# Texts shown to people lose bidirectional controls and invisible characters in a pre_load hook.
shown = st.text(st.sampled_from("ab č Ж\u202e\u200b\u2066\n\t\x00\x1f\ud800 "), max_size=12)
odd_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | shown | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
top_keys = st.sampled_from(sorted(REGISTRATION.fields) + ["unknown", "token_digest", "revision"])
urls = st.sampled_from(["ftp://x.org", "https://", "https://x.org/" + "a" * 500, "http://localhost"])
contact_keys = st.sampled_from(["name", "email", "language", "consent", "share_contact", "id", "consent_at", "x"])


def _with_extras(draw: st.DrawFn) -> dict:
    body = copy.deepcopy(draw(valid_profile))
    if draw(st.booleans()):
        body["website"] = draw(st.sampled_from([None, "https://example.org/a?b=c", "http://x.example.rs"]))
    for contact in body.get("contacts", []):
        if draw(st.booleans()):
            contact["share_contact"] = draw(st.booleans())
    return body


@st.composite
def plain_profiles(draw: st.DrawFn) -> dict:
    return _with_extras(draw)


@st.composite
def odd_profiles(draw: st.DrawFn) -> dict:
    """A valid profile with a few things changed: a value replaced by any JSON value, a field left
    out, an unknown field, in the document or in one of its contact persons."""
    body = _with_extras(draw)
    for _ in range(draw(st.integers(1, 3))):
        listed = body.get("contacts")
        contacts = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
        target = draw(st.sampled_from(contacts)) if contacts and draw(st.booleans()) else body
        key = draw(contact_keys if target is not body else top_keys)
        if key in target and draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(urls if key == "website" and draw(st.booleans()) else odd_values)
    return body


def _marshmallows(schema: Schema, body: dict) -> dict | ValidationError:
    try:
        return schema.load(body)
    except ValidationError as refused:
        return refused


@settings(max_examples=300)
@given(plain_profiles())
def test_the_plainest_valid_registrations_are_loaded_quickly_as_marshmallow_loads_them(body):
    assert QUICK[REGISTRATION](copy.deepcopy(body)) == REGISTRATION.load(body)


@settings(max_examples=300)
@given(plain_profiles(), st.data())
def test_the_plainest_valid_edits_are_loaded_quickly_as_marshmallow_loads_them(body, data):
    change = {key: body[key] for key in data.draw(st.sets(st.sampled_from(sorted(body))))}
    assert QUICK[EDIT](copy.deepcopy(change)) == EDIT.load(change)


@settings(max_examples=1000)
@given(st.sampled_from([REGISTRATION, EDIT]), odd_profiles())
def test_what_the_quick_load_takes_from_odd_documents_marshmallow_loads_alike(schema, body):
    expected = _marshmallows(schema, body)
    try:
        loaded = QUICK[schema](copy.deepcopy(body))
    except write_routes._NotPlain:
        return  # marshmallow answers it, whatever its verdict
    assert not isinstance(expected, ValidationError), expected.messages
    assert loaded == expected
    assert list(loaded) == list(expected)  # the same keys in the same order


@given(st.sampled_from([REGISTRATION, EDIT]), odd_values)
def test_documents_that_are_not_objects_are_left_to_marshmallow(schema, value):
    if isinstance(value, dict):
        return
    with pytest.raises(write_routes._NotPlain):
        QUICK[schema](value)


def test_a_registration_with_bidirectional_controls_is_loaded_neutralised_as_marshmallow_does():
    body = {
        "name": "Klaster \u202eIKT\u202c",
        "cluster_id": "rs-ict",
        "country": "RS",
        "capabilities": "Softver\u200b i obuka.",
        "goals": "Partneri.",
        "contacts": [{"name": "Ana\u2066", "email": "ana@example.rs", "language": "sr", "consent": True}],
    }
    loaded = QUICK[REGISTRATION](copy.deepcopy(body))
    assert loaded == REGISTRATION.load(body)
    assert loaded["name"] == "Klaster IKT" and loaded["contacts"][0]["share_contact"] is False


class _Counted(Schema):
    name = fields.String()

    @post_load
    def _counted(self, data, **_kwargs):
        return {**data, "counted": True}


class _Checked(Schema):
    name = fields.String()

    @validates("name")
    def _name(self, value, **_kwargs):
        return value


@pytest.mark.parametrize("schema", [_Counted(), _Checked(), OrganisationUpdateSchema(partial=True)])
def test_schemas_with_hooks_the_quick_load_does_not_run_get_none(schema):
    with pytest.raises(TypeError):
        write_routes.plain_load(schema)


class _Shouting(fields.String):
    def _validate(self, value):
        if not value.isupper():
            raise ValidationError("Shout.")


class _Odd(Schema):
    yes_only = fields.Boolean(truthy={"yes"}, falsy={"no"})
    shouting = _Shouting()


@pytest.mark.parametrize(
    "document",
    [{"yes_only": True}, {"yes_only": "yes"}, {"yes_only": False}, {"shouting": "ABC"}, {"shouting": "abc"}],
)
def test_fields_that_load_otherwise_than_their_kind_are_loaded_by_marshmallow(document):
    expected = _marshmallows(_Odd(), document)
    try:
        loaded = write_routes.plain_load(_Odd())(document)
    except write_routes._NotPlain:
        return
    assert not isinstance(expected, ValidationError)
    assert loaded == expected
