"""The event contract's quick check: whatever it accepts, marshmallow accepts; whatever marshmallow
refuses, producers are still refused with marshmallow's own errors."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from partnermatch import events
from tests.contract.test_event_contract import EXAMPLES

SCHEMAS = sorted(events.PAYLOADS.items())
ENVELOPE = {
    "event_id": "6f1c1a52-3c1e-4b38-9d55-0a7f6c2f9b10",
    "event_type": "profile.deleted",
    "version": 1,
    "occurred_at": "2026-11-23T09:30:00+00:00",
    "producer": "p",
    "payload": {},
}

# Values of every JSON type and their near misses: what a producer's bug or a hostile document holds.
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=70),
    st.sampled_from(
        [
            "",
            "2026-11-23T09:30:00+00:00",
            "2026-11-23T09:30:00",
            "2026-11-23 09:30:00Z",
            "2026-13-23T09:30:00+00:00",
            "20261123T093000+0100",
            "6F1C1A52-3C1E-4B38-9D55-0A7F6C2F9B10",
            "6f1c1a523c1e4b389d550a7f6c2f9b10",
            "{6f1c1a52-3c1e-4b38-9d55-0a7f6c2f9b10}",
            "approve",
            "reject",
            "profile.deleted",
            "Profile.Deleted",
            "1",
            "1.5",
            "NaN",
        ]
    ),
    st.lists(st.one_of(st.text(max_size=5), st.integers(), st.none()), max_size=12),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)


def _mutated(document: dict[str, Any], draw: st.DrawFn, names: list[str]) -> dict[str, Any]:
    """`document` with a few fields (of `names`, or new ones) set to odd values or left out, nested
    documents included."""
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        name = draw(st.sampled_from([*names, "unknown_field"]))
        action = draw(st.sampled_from(["set", "drop", "nested"]))
        if action == "drop":
            doc.pop(name, None)
        elif action == "nested" and isinstance(doc.get(name), list) and doc[name] and isinstance(doc[name][0], dict):
            inner = doc[name][0]
            key = draw(st.sampled_from([*inner, "unknown_field"]))
            if draw(st.booleans()):
                inner[key] = draw(odd_values)
            else:
                inner.pop(key, None)
        else:
            doc[name] = draw(odd_values)
    return doc


@st.composite
def payloads(draw: st.DrawFn) -> tuple[tuple[str, int], type[Schema], dict[str, Any]]:
    (key, schema) = draw(st.sampled_from(SCHEMAS))
    return key, schema, _mutated(EXAMPLES[key], draw, list(schema().fields))


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    return _mutated(ENVELOPE, draw, list(ENVELOPE))


@pytest.mark.parametrize(("key", "schema"), SCHEMAS)
def test_every_example_payload_passes_the_quick_check(key, schema):
    assert events.quick_check(schema) is not None
    assert events.quick_check(schema)(EXAMPLES[key]) is True
    assert events.quick_check(events.EnvelopeSchema)({**ENVELOPE, "payload": EXAMPLES[key]}) is True


@settings(max_examples=3000, deadline=None)
@given(payloads())
def test_a_payload_the_quick_check_accepts_is_valid_and_errors_are_marshmallows(case):
    _key, schema, payload = case
    marshmallows = schema().validate(payload)
    if events.quick_check(schema)(payload):
        assert marshmallows == {}
    assert events.validation_errors(schema, payload) == marshmallows


@settings(max_examples=2000, deadline=None)
@given(envelopes())
def test_an_envelope_the_quick_check_accepts_is_valid(envelope):
    if events.quick_check(events.EnvelopeSchema)(envelope):
        assert events.EnvelopeSchema().validate(envelope) == {}
    assert events.validation_errors(events.EnvelopeSchema, envelope) == events.EnvelopeSchema().validate(envelope)


@settings(max_examples=1000, deadline=None)
@given(payloads())
def test_new_event_refuses_what_marshmallow_refuses_with_its_errors(case):
    (event_type, version), schema, payload = case
    if events.CURRENT_VERSION[event_type] != version:
        return
    marshmallows = schema().validate(payload)
    if marshmallows:
        with pytest.raises(ValidationError) as refused:
            events.new_event(event_type, payload, "p")
        assert refused.value.messages == marshmallows
    else:
        assert events.new_event(event_type, payload, "p").payload == payload


def test_a_schema_with_what_the_quick_check_does_not_know_gets_none():
    class WithHook(Schema):
        name = fields.String()

        @validates_schema
        def _never(self, data, **kwargs):
            raise ValidationError("no")

    class WithOtherValidator(Schema):
        name = fields.String(validate=validate.ContainsOnly(["a"]))

    class WithOtherKey(Schema):
        name = fields.String(data_key="Name")

    class WithEmail(Schema):
        email = fields.Email()

    for schema in (WithHook, WithOtherValidator, WithOtherKey, WithEmail):
        assert events.quick_check(schema) is None
        assert events.validation_errors(schema, {"name": "b", "email": "x"}) != {}


def test_new_event_keeps_a_json_copy_of_the_payload():
    """What new_event keeps is the payload as JSON has it (tuples as lists, datetimes as ISO
    strings), in containers of its own: a producer changing its dictionaries afterwards changes
    nothing queued."""
    when = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    reason = {"concept": None, "kind": "sector", "direction": "both", "weight": 1, "terms_a": ("sery",), "terms_b": []}
    payload = {**EXAMPLES[(events.MATCH_SUGGESTED, 1)], "reasons": [reason], "score": 0.5}
    decided = {**EXAMPLES[(events.MATCH_APPROVED, 1)]}
    decided["decisions"] = [{**decided["decisions"][0], "decided_at": when}]

    suggested = events.new_event(events.MATCH_SUGGESTED, payload, "p").payload
    approved = events.new_event(events.MATCH_APPROVED, decided, "p").payload

    assert suggested["reasons"] == [{**reason, "terms_a": ["sery"]}]
    assert approved["decisions"][0]["decided_at"] == "2026-12-05T09:30:00+00:00"
    reason["terms_b"].append("mleko")
    payload["reasons"].append(reason)
    assert suggested["reasons"] == [{**reason, "terms_a": ["sery"], "terms_b": []}]
    assert suggested is not payload and suggested["reasons"][0] is not reason


def _decoded_by_marshmallow(raw: bytes) -> events.Envelope | str:
    """What decode answered before it had a quick path: json's reading, marshmallow's judgement
    (the envelope, or the message it is refused with)."""
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            return "envelope is not a JSON object"
        return events.decode_document(doc)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"not JSON: {exc}"
    except events.UndecodableEvent as exc:
        return str(exc)


def _decoded(raw: bytes) -> events.Envelope | str:
    try:
        return events.decode(raw)
    except events.UndecodableEvent as exc:
        return str(exc)


@st.composite
def whole_events(draw: st.DrawFn) -> dict[str, Any]:
    """Envelopes of every event type with their example payloads, each part possibly mutated."""
    (event_type, version), schema, payload = draw(payloads())
    envelope = {**ENVELOPE, "event_type": event_type, "version": version}
    if draw(st.booleans()):
        envelope = _mutated(envelope, draw, [name for name in ENVELOPE if name != "payload"])
    return {**envelope, "payload": payload} if draw(st.integers(0, 9)) else envelope


@settings(max_examples=3000, deadline=None)
@given(whole_events())
def test_decode_answers_as_marshmallow_does(document):
    """Valid or not, decode's envelope (or its refusal) is the one json and marshmallow give; an
    envelope it reads quickly has the same fields, types included."""
    raw = json.dumps(document).encode()
    quick, slow = _decoded(raw), _decoded_by_marshmallow(raw)
    assert quick == slow
    if isinstance(quick, events.Envelope):
        assert isinstance(slow, events.Envelope)
        assert type(quick.event_id) is type(slow.event_id) is str
        assert quick.occurred_at == slow.occurred_at and quick.occurred_at.tzinfo is not None
        assert json.dumps(quick.payload, sort_keys=True) == json.dumps(slow.payload, sort_keys=True)


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_every_example_event_is_read_quickly(key):
    """The events producers write are the ones decode reads without marshmallow."""
    raw = json.dumps({**ENVELOPE, "event_type": key[0], "version": key[1], "payload": EXAMPLES[key]}).encode()
    document = json.loads(raw)
    assert events._decoded_quickly(document) == events.decode_document(document)
    assert events.decode(raw) == events.decode_document(document)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 123456789012345678901234567890}',
        b'{"a": "\\ud800"}',
        b'{"a": 1, "a": 2}',
        b"\xef\xbb\xbf{}",
        '{"a": 1}'.encode("utf-16"),
        b'{"a": 1e400}',
        b"\xff\xfe",
        b"[]",
        b"",
        b"  {}  ",
        b'{"a": 1} x',
    ],
)
def test_decode_reads_what_json_reads(raw):
    """orjson reads the documents; what it refuses, json reads as decode always did (NaN, integers
    beyond 64 bits, a lone surrogate, UTF-16): the answer is json's either way."""
    assert _decoded(raw) == _decoded_by_marshmallow(raw)
    event = json.dumps({**ENVELOPE, "payload": {"org_id": "o-1", "revision": 2, "extra": raw.decode("latin-1")}})
    assert _decoded(event.encode()) == _decoded_by_marshmallow(event.encode())


def test_an_integer_beyond_64_bits_is_read_exactly():
    """orjson reads such an integer as a float; decode reads it as json does, exactly (and a valid
    event with it stays valid, with the same integer)."""
    huge = 123456789012345678901234567890
    raw = json.dumps({**ENVELOPE, "payload": {"org_id": "o-1", "revision": huge, "cluster_id": "c"}}).encode()
    decoded = events.decode(raw)
    assert decoded == _decoded_by_marshmallow(raw)
    assert type(decoded.payload["revision"]) is int and decoded.payload["revision"] == huge
