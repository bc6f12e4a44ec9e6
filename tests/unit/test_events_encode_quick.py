"""events.encode writes an event holding floats (a suggestion's score and its reasons' weights, a
decision's) by orjson when every float in it is one orjson writes as json does: the bytes stay
json.dumps's (ensure_ascii=False, compact separators, sorted keys) byte for byte, since the contract's
golden files and the outbox compare them; and encode accepts and refuses what it did, with the same
errors. Held here against encode as it was (marshmallow's validation, then json.dumps) over events
of every type, and the float formatting over the range it is trusted for."""

from __future__ import annotations

import json
import math
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from partnermatch import events
from tests.contract.test_event_contract import EXAMPLES


def _as_before(envelope: events.Envelope) -> bytes:
    """What encode did before floats went to orjson: validate with marshmallow, then json.dumps."""
    doc = envelope.to_dict()
    errors = events.EnvelopeSchema().validate(doc)
    if errors:
        raise ValidationError(errors)
    if not envelope.payload_checked:
        payload_errors = events.PAYLOADS[(envelope.event_type, envelope.version)]().validate(doc["payload"])
        if payload_errors:
            raise ValidationError({"payload": payload_errors})
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _outcome(encode: Any, envelope: events.Envelope) -> Any:
    try:
        return ("bytes", encode(envelope))
    except ValidationError as exc:
        return ("invalid", exc.messages)
    except Exception as exc:  # noqa: BLE001 - the kind of error is what is compared
        return ("error", type(exc))


class _Float(float):
    pass


# ---- the floats orjson writes as json does -------------------------------------------------------

alike = st.floats(min_value=1e-4, max_value=1e16, exclude_max=True)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(alike, alike.map(lambda x: -x), st.just(0.0), st.just(-0.0)))
def test_orjson_writes_a_float_of_the_trusted_range_as_json_does(x):
    assert events._floats_written_alike(x)
    assert orjson.dumps(x) == json.dumps(x).encode()


def test_orjson_writes_the_floats_next_to_the_range_edges_and_many_decimals_as_json_does():
    rng = random.Random(17)
    samples = [10 ** rng.uniform(-4, 16) for _ in range(100_000)]
    samples += [float(f"{rng.randint(1, 10**d)}e{rng.randint(-4, 15) - d}") for d in range(1, 18) for _ in range(3000)]
    samples += [k / 1024 for k in range(1, 50_000)] + [k / 1e4 for k in range(1, 50_000)]
    for edge in (1e-4, 1e16):
        x = edge
        for _ in range(500):
            x = math.nextafter(x, 0.0)
        for _ in range(1000):
            samples.append(x)
            x = math.nextafter(x, math.inf)
    for x in samples:
        if events._floats_written_alike(x):
            assert orjson.dumps(x) == repr(x).encode(), repr(x)
            assert orjson.dumps(-x) == repr(-x).encode(), repr(-x)


@pytest.mark.parametrize(
    "value",
    [
        1e-05,
        5e-06,
        9.999999999999999e-05,
        1e16,
        1e22,
        5e-324,
        math.nan,
        math.inf,
        -math.inf,
        _Float(0.5),
        (0.5,),
        {"a": [{"b": 1e-7}]},
        [1, "x", None, True, 2e-5],
        object(),
    ],
)
def test_what_orjson_may_write_otherwise_is_left_to_json(value):
    assert not events._floats_written_alike(value)


def test_plain_values_and_floats_of_the_range_are_written_by_orjson():
    assert events._floats_written_alike({"a": [{"b": 0.5, "c": "x", "d": None, "e": True, "f": 2**70}], "g": -0.0})


# ---- events of every type, as encode wrote them before -------------------------------------------

awkward = st.sampled_from(["\\", '"', "\x7f", "\x00", "\x1f", "\n", "\u2028", "\ufeff", "\ud800", "é", "\U0001f600"])
texts = st.lists(st.one_of(st.characters(codec=None), awkward), max_size=12).map("".join)
any_float = st.one_of(
    st.floats(),  # NaN, the infinities, tiny and huge ones
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=1e-9, max_value=1e-3),
    st.sampled_from([0.0, -0.0, 1e-05, 5e-06, 1e-4, 0.1234, 1.0, 1e16]),
    st.floats(min_value=0.0, max_value=1.0).map(_Float),
    st.integers(min_value=-(2**70), max_value=2**70),
)
odd = st.one_of(st.none(), st.booleans(), any_float, texts, st.lists(texts, max_size=2), st.just(("a",)))


def _sometimes(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A valid value mostly, an odd one (of another JSON type, or none at all) now and then."""
    return st.integers(0, 24).flatmap(lambda roll: odd if roll == 0 else value)


reasons = st.lists(
    st.fixed_dictionaries(
        {
            "kind": _sometimes(texts),
            "direction": _sometimes(texts),
            "weight": _sometimes(any_float),
        },
        optional={
            "concept": _sometimes(st.one_of(st.none(), texts)),
            "terms_a": _sometimes(st.lists(texts, max_size=3)),
            "terms_b": _sometimes(st.lists(texts, max_size=3)),
        },
    ),
    max_size=6,
)
decisions = st.lists(
    st.fixed_dictionaries(
        {
            "cluster_id": _sometimes(texts),
            "coordinator": _sometimes(texts),
            "decision": _sometimes(st.sampled_from(["approve", "reject"])),
            "decided_at": _sometimes(st.sampled_from(["2026-12-06T01:00:00+00:00", "2026-12-06T01:00:00+01:00"])),
        },
        optional={"reason_code": st.one_of(st.none(), texts), "reason_text": st.one_of(st.none(), texts)},
    ),
    max_size=3,
)


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, int, dict[str, Any]]:
    event_type, version = draw(st.sampled_from(sorted(events.PAYLOADS)))
    payload = dict(EXAMPLES[(event_type, version)])
    for name in list(payload):
        value = payload[name]
        if draw(st.integers(0, 3)) == 0:
            continue
        if name == "reasons":
            payload[name] = draw(reasons)
        elif name == "decisions":
            payload[name] = draw(decisions)
        elif name in ("score", "weight"):
            payload[name] = draw(_sometimes(any_float))
        elif type(value) is str and name != "updated_at":
            payload[name] = draw(_sometimes(texts))
        elif type(value) is list:
            payload[name] = draw(_sometimes(st.lists(texts, max_size=3)))
        elif type(value) is int:
            payload[name] = draw(_sometimes(st.integers(-(2**70), 2**70)))
        else:
            payload[name] = draw(_sometimes(st.just(value)))
    if draw(st.integers(0, 19)) == 0:
        payload[draw(texts)] = draw(odd)
    return event_type, version, payload


@settings(max_examples=1500, deadline=None)
@given(payloads())
def test_an_event_new_event_makes_is_encoded_as_before(drawn):
    event_type, _, payload = drawn
    try:
        envelope = events.new_event(event_type, payload, "matcher")
    except ValidationError:
        return  # new_event's checks are not changed here (tests/unit/test_events_quick_check.py)
    assert _outcome(events.encode, envelope) == _outcome(_as_before, envelope)


@settings(max_examples=1500, deadline=None)
@given(
    payloads(),
    st.sampled_from(["p", "", "matcher"]),
    st.sampled_from(
        [
            datetime(2026, 12, 6, 1, 0, 0, 123456, tzinfo=UTC),
            datetime(2026, 12, 6, 1, 0, tzinfo=timezone(timedelta(hours=1))),
            datetime(2026, 12, 6, 1, 0),
        ]
    ),
    st.sampled_from(["6f1c1a52-3c1e-4b38-9d55-0a7f6c2f9b10", "not-a-uuid", str(uuid.UUID(int=7))]),
)
def test_an_envelope_made_by_hand_is_encoded_or_refused_as_before(drawn, producer, occurred_at, event_id):
    event_type, version, payload = drawn
    envelope = events.Envelope(
        event_type=event_type,
        payload=payload,
        producer=producer,
        version=version,
        event_id=event_id,
        occurred_at=occurred_at,
    )
    assert _outcome(events.encode, envelope) == _outcome(_as_before, envelope)


def test_a_suggestion_with_five_reasons_is_the_bytes_json_wrote():
    payload = {
        **EXAMPLES[(events.MATCH_SUGGESTED, 1)],
        "score": 0.7071067811865476,
        "reasons": [
            {
                "concept": f"concept-{i}",
                "kind": "offer_need",
                "direction": "a_offers_b_seeks",
                "weight": w,
                "terms_a": ["oprogramowania", "\u0161"],
                "terms_b": ["softvera"],
            }
            for i, w in enumerate([0.4, 0.1234, 1 / 3, 0.0001, 12.5])
        ],
    }
    envelope = events.new_event(events.MATCH_SUGGESTED, payload, "matcher")
    assert events._floats_written_alike(envelope.payload)
    assert events.encode(envelope) == _as_before(envelope)
    tiny = events.new_event(events.MATCH_SUGGESTED, {**payload, "score": 1e-05}, "matcher")
    assert b'"score":1e-05' in events.encode(tiny)
