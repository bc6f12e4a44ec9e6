"""The write path's JSON made and read by orjson gives what json gave: the request body read (the
edge's limits and errors too), the answer's bytes, an event's bytes, and the stored records read
back. Each is held here to the json way it replaces, on documents of every kind of text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from partnermatch import events, httpedge
from partnermatch.jsonvalues import holds_float
from services.profiles.adapters import redis_store

# Every character a text may hold, the awkward ones often: controls, DEL, Latin-1 (what the ascii
# codec writes as \xNN), other planes, lone surrogates, and backslashes followed by what looks
# like an escape.
awkward = st.sampled_from(
    ["\\", "\\x", "\\\\x", "\\xe9", "x", "e9", '"', "\x7f", "\x00", "\x1f", "\n", "\u2028", "\ufeff", "\ud800"]
)
texts = st.lists(
    st.one_of(
        st.characters(codec=None),
        st.characters(min_codepoint=0x80, max_codepoint=0xFF),
        st.characters(min_codepoint=0x400, max_codepoint=0x4FF),
        awkward,
    ),
    max_size=30,
).map("".join)
plain = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    texts,
)
documents = st.recursive(
    plain,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=20,
)
with_floats = st.recursive(
    st.one_of(plain, st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


def _outcome(read: Any, raw: Any) -> Any:
    try:
        return ("value", read(raw))
    except Exception as exc:  # noqa: BLE001 - the kind of error is what is compared
        return ("error", type(exc))


def _json_text(document: Any) -> str | None:
    try:
        return json.dumps(document, ensure_ascii=False)
    except (TypeError, ValueError):
        return None


@settings(max_examples=400, deadline=None)
@given(st.one_of(documents, with_floats))
def test_a_body_is_read_from_bytes_as_from_its_text(document):
    text = _json_text(document)
    if text is None:
        return
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate is no UTF-8: sent escaped, as a client would
        text = json.dumps(document)
        raw = text.encode("utf-8")
    assert _outcome(httpedge.loads, raw) == _outcome(httpedge.loads, text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40) | texts.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_bytes_that_are_no_json_are_refused_with_the_same_errors_as_before(raw):
    def as_before(data: bytes) -> Any:
        return httpedge.loads(data.decode("utf-8"))

    assert _outcome(httpedge.loads, raw) == _outcome(as_before, raw)


@pytest.mark.parametrize(
    ("raw", "refused"),
    [
        (b"[" * 33 + b"]" * 33, httpedge.JsonTooComplex),
        (b'{"n": 1' + b"0" * 120 + b"}", httpedge.JsonTooComplex),
        (b'{"n": 0.' + b"0" * 120 + b"1}", httpedge.JsonTooComplex),
        (b'{"n": 1e400}', httpedge.JsonTooComplex),
        (b'{"n": NaN}', httpedge.JsonTooComplex),
        (b"\xef\xbb\xbf{}", json.JSONDecodeError),
        (b'{"a": "\xff"}', UnicodeDecodeError),
    ],
)
def test_the_edges_limits_still_refuse_a_body(raw, refused):
    with pytest.raises(refused):
        httpedge.loads(raw)


def test_what_only_json_reads_is_still_read():
    assert httpedge.loads(b'{"a": "\\ud800", "n": 18446744073709551616}') == {"a": "\ud800", "n": 2**64}
    # orjson reads an integer beyond 64 bits as a float: json reads it exactly
    assert httpedge.loads(b'{"n": -9223372036854775809}') == {"n": -(2**63) - 1}
    assert httpedge.loads(b'{"a": 1, "a": 2, "f": 1.5}') == {"a": 2, "f": 1.5}


@pytest.fixture(scope="module", params=[True, False], ids=["ensure_ascii", "utf-8 (the profiles app's)"])
def provider(request) -> httpedge.LimitedJSONProvider:
    made = httpedge.LimitedJSONProvider(Flask(__name__))
    made.ensure_ascii = request.param
    return made


@settings(max_examples=500, deadline=None)
@given(st.one_of(documents, with_floats, st.dictionaries(texts, texts, max_size=6)))
def test_an_answer_is_written_as_flask_writes_it(provider, document):
    def flasks(value: Any) -> bytes:
        return (provider.dumps(value, separators=(",", ":")) + "\n").encode("utf-8")

    assert _outcome(lambda value: httpedge.compact_json_line(provider, value), document) == _outcome(flasks, document)


@settings(max_examples=300, deadline=None)
@given(st.one_of(documents, st.dictionaries(texts, texts, max_size=6)))
def test_an_answer_said_to_hold_no_float_is_written_as_flask_writes_it(provider, document):
    if holds_float(document):
        return

    def flasks(value: Any) -> bytes:
        return (provider.dumps(value, separators=(",", ":")) + "\n").encode("utf-8")

    written = _outcome(lambda value: httpedge.compact_json_line(provider, value, holds_no_float=True), document)
    assert written == _outcome(flasks, document)


def test_an_answer_of_non_plain_values_is_written_by_flask(provider):
    from datetime import UTC, datetime

    document = {"when": datetime(2026, 12, 6, tzinfo=UTC), "tiny": 5e-06, "emoji": "\U0001f600"}
    assert httpedge.compact_json_line(provider, document) == (
        provider.dumps(document, separators=(",", ":")) + "\n"
    ).encode("utf-8")


def _as_json_wrote_it(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


@settings(max_examples=500, deadline=None)
@given(documents)
def test_an_event_without_floats_is_the_same_bytes(document):
    doc = {"payload": document, "version": 2}
    assert _outcome(lambda d: events.canonical_json(d, floats=False), doc) == _outcome(_as_json_wrote_it, doc)


@settings(max_examples=200, deadline=None)
@given(with_floats)
def test_an_event_with_floats_is_written_by_json(document):
    doc = {"payload": document}
    assert _outcome(events.canonical_json, doc) == _outcome(_as_json_wrote_it, doc)


def test_only_events_whose_payloads_hold_no_floats_are_written_by_orjson():
    assert (events.PROFILE_UPSERTED, 2) in events._ORJSON_EVENTS
    assert (events.PROFILE_DELETED, 1) in events._ORJSON_EVENTS
    assert (events.MATCH_SUGGESTED, 1) not in events._ORJSON_EVENTS  # scores and weights


def test_a_profile_event_is_encoded_as_before():
    payload = {
        "org_id": "Ab3dEf",
        "revision": 3,
        "cluster_id": "north",
        "name": "Zadruga \u201eSloga\u201c \\ \u0161",
        "country": "RS",
        "language": "sr",
        "language_detected": True,
        "capabilities": "Razvoj softvera\nи обуке\x7f \u2028",
        "goals": "Partneri \U0001f600",
        "sectors": ["it"],
        "offers": [],
        "seeks": [],
        "seeks_countries": ["PL"],
        "website": None,
        "updated_at": "2026-12-06T01:00:00.123456+00:00",
    }
    envelope = events.new_event(events.PROFILE_UPSERTED, payload, "profiles")
    assert events.encode(envelope) == _as_json_wrote_it(envelope.to_dict())


def test_an_envelope_with_an_event_id_that_is_no_string_is_refused_as_before():
    import uuid

    envelope = events.Envelope(
        event_type=events.PROFILE_DELETED,
        payload={"org_id": "a", "revision": 2, "cluster_id": "c"},
        producer="p",
        event_id=uuid.uuid4(),  # type: ignore[arg-type]
    )
    with pytest.raises(TypeError):
        events.encode(envelope)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(texts, documents, max_size=6))
def test_a_stored_record_reads_back_as_json_wrote_and_read_it(record):
    stored = redis_store._dumps(record)
    try:
        as_bytes = stored.encode("utf-8") if isinstance(stored, str) else stored
    except UnicodeEncodeError:  # a lone surrogate: refused where the command is packed, as before
        with pytest.raises(UnicodeEncodeError):
            json.dumps(record, ensure_ascii=False).encode("utf-8")
        return
    assert redis_store._loads(as_bytes) == json.loads(as_bytes) == record
    # and what json stored before is read as json read it (records of every earlier write)
    before = json.dumps(record).encode("utf-8")
    assert redis_store._loads(before) == json.loads(before)


def test_a_stored_integer_beyond_64_bits_reads_back_exactly():
    record = {"revision": -(2**63) - 1, "created_ms": 2**64}
    assert redis_store._loads(json.dumps(record).encode()) == record
    assert redis_store._loads(redis_store._dumps(record)) == record
