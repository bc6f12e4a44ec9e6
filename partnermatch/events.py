"""The event contract shared by every service: versioned JSON envelopes, defined once.

Producers call `encode` (validates, then serialises); consumers call `decode`, which reads
tolerantly (unknown fields are ignored) and raises `UndecodableEvent` for anything that can
never be processed, so the caller can send it to the dead-letter topic. No I/O.
"""

from __future__ import annotations

import functools
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from partnermatch.jsonvalues import holds_float

PROFILE_UPSERTED = "profile.upserted"
PROFILE_DELETED = "profile.deleted"
MATCH_SUGGESTED = "match.suggested"
MATCH_WITHDRAWN = "match.withdrawn"
MATCH_APPROVED = "match.approved"
MATCH_REJECTED = "match.rejected"


class UndecodableEvent(ValueError):
    """Bytes that are not a valid envelope of a known event type and version."""


# ---- payloads -------------------------------------------------------------------------------


class ProfileUpsertedV1(Schema):
    org_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    revision = fields.Integer(required=True, validate=validate.Range(min=1))
    cluster_id = fields.String(required=True)
    name = fields.String(required=True)
    country = fields.String(required=True)
    language = fields.String(required=True)
    language_detected = fields.Boolean(load_default=False)
    capabilities = fields.String(required=True)
    goals = fields.String(required=True)
    sectors = fields.List(fields.String(), load_default=list)
    website = fields.String(allow_none=True, load_default=None)
    updated_at = fields.AwareDateTime(required=True, format="iso")


class ProfileUpsertedV2(ProfileUpsertedV1):
    """v1 plus the optional structured needs: lexicon ids (sectors, activities) the organisation
    offers and seeks, and ISO 3166-1 alpha-2 codes of the countries it wants partners from."""

    offers = fields.List(fields.String(), load_default=list)
    seeks = fields.List(fields.String(), load_default=list)
    seeks_countries = fields.List(fields.String(), load_default=list)


class ProfileDeletedV1(Schema):
    org_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    revision = fields.Integer(required=True, validate=validate.Range(min=1))
    cluster_id = fields.String(required=True)


class ReasonV1(Schema):
    concept = fields.String(allow_none=True, load_default=None)
    kind = fields.String(required=True)
    direction = fields.String(required=True)
    weight = fields.Float(required=True)
    terms_a = fields.List(fields.String(), load_default=list)
    terms_b = fields.List(fields.String(), load_default=list)


class PairFields(Schema):
    pair_id = fields.String(required=True)
    org_a = fields.String(required=True)
    org_b = fields.String(required=True)
    cluster_a = fields.String(required=True)
    cluster_b = fields.String(required=True)


class MatchSuggestedV1(PairFields):
    score = fields.Float(required=True)
    reasons = fields.List(fields.Nested(ReasonV1), load_default=list)


class MatchWithdrawnV1(PairFields):
    reason = fields.String(required=True)


class DecisionV1(Schema):
    cluster_id = fields.String(required=True)
    coordinator = fields.String(required=True)
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    reason_code = fields.String(allow_none=True, load_default=None)
    reason_text = fields.String(allow_none=True, load_default=None)
    decided_at = fields.AwareDateTime(required=True, format="iso")


class MatchDecidedV1(PairFields):
    score = fields.Float(required=True)
    reasons = fields.List(fields.Nested(ReasonV1), load_default=list)
    decisions = fields.List(fields.Nested(DecisionV1), required=True)


PAYLOADS: dict[tuple[str, int], type[Schema]] = {
    (PROFILE_UPSERTED, 1): ProfileUpsertedV1,
    (PROFILE_UPSERTED, 2): ProfileUpsertedV2,
    (PROFILE_DELETED, 1): ProfileDeletedV1,
    (MATCH_SUGGESTED, 1): MatchSuggestedV1,
    (MATCH_WITHDRAWN, 1): MatchWithdrawnV1,
    (MATCH_APPROVED, 1): MatchDecidedV1,
    (MATCH_REJECTED, 1): MatchDecidedV1,
}
# Producers write the newest version; decode reads every version listed above. A v1
# `profile.upserted` has no structured needs: readers take a missing list as an empty one.
CURRENT_VERSION: dict[str, int] = {event_type: 1 for event_type, _ in PAYLOADS} | {PROFILE_UPSERTED: 2}


class EnvelopeSchema(Schema):
    event_id = fields.UUID(required=True)
    event_type = fields.String(required=True, validate=validate.Regexp(r"^[a-z]+(\.[a-z_]+)+$"))
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, format="iso")
    producer = fields.String(required=True, validate=validate.Length(min=1))
    payload = fields.Dict(required=True)


@functools.cache
def _schema(schema: type[Schema], unknown: Literal["exclude", "include", "raise"] = RAISE) -> Schema:
    """One instance per schema and policy, reused: building one copies every field, which cost more
    than the validation itself on every event (marshmallow schemas keep no state between loads)."""
    return schema(unknown=unknown)


# ---- the quick check -------------------------------------------------------------------------
# Most events are valid: a producer builds them from data it has already checked. A quick check
# made from a schema's fields accepts the plainest valid documents (exact JSON types, the schema's
# validators) in a fraction of marshmallow's time; whatever it does not accept, marshmallow
# validates, and its verdict and its errors are the answer. The quick check only ever accepts
# what marshmallow accepts (tests/unit/test_events_quick_check.py); a schema with anything it
# does not know (another field type or validator, a hook, a renamed key) gets no quick check.

Check = Callable[[Any], bool]
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class _Unknown(Exception):
    """A field or validator the quick check does not know: its schema gets none."""


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_float(value: Any) -> bool:
    return (type(value) is float and math.isfinite(value)) or (type(value) is int and abs(value) < 2**53)


def _is_aware_datetime(value: Any) -> bool:
    if type(value) is not str:
        return False
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return False
    return when.tzinfo is not None and when.tzinfo.utcoffset(when) is not None


def _validator_check(validator: Any) -> Check:
    kind = type(validator)
    if kind is validate.Length:
        low, high, equal = validator.min, validator.max, validator.equal
        if equal is not None:
            return lambda value: len(value) == equal
        return lambda value: (low is None or len(value) >= low) and (high is None or len(value) <= high)
    if kind is validate.Range and validator.min_inclusive and validator.max_inclusive:
        low, high = validator.min, validator.max
        return lambda value: (low is None or value >= low) and (high is None or value <= high)
    if kind is validate.OneOf:
        choices = frozenset(validator.choices)
        return lambda value: value in choices
    if kind is validate.Regexp:
        regex = validator.regex
        return lambda value: regex.match(value) is not None
    raise _Unknown(kind.__name__)


def _type_check(one: fields.Field[Any]) -> Check:
    if type(one) is fields.String:
        return lambda value: type(value) is str
    if type(one) is fields.Integer and not one.strict:
        return _is_int
    if type(one) is fields.Float and not one.allow_nan:
        return _is_float
    if type(one) is fields.Boolean:
        return lambda value: type(value) is bool
    if type(one) is fields.AwareDateTime and one.format == "iso" and one.default_timezone is None:
        return _is_aware_datetime
    if type(one) is fields.UUID:
        return lambda value: type(value) is str and _CANONICAL_UUID.fullmatch(value) is not None
    if type(one) is fields.Dict and one.key_field is None and one.value_field is None:
        return lambda value: type(value) is dict
    if type(one) is fields.List:
        inner = _field_check(one.inner)
        return lambda value: type(value) is list and all(map(inner, value))
    if type(one) is fields.Nested and not one.many and isinstance(one.schema, Schema):
        return _schema_check(one.schema)
    raise _Unknown(type(one).__name__)


def _field_check(one: fields.Field[Any]) -> Check:
    is_type = _type_check(one)
    validators = [_validator_check(v) for v in one.validators]
    allow_none = one.allow_none
    if not validators and not allow_none:
        return is_type  # every type check refuses None
    if not validators:
        return lambda value: value is None or is_type(value)

    def check(value: Any) -> bool:
        if value is None:
            return allow_none
        return is_type(value) and all(valid(value) for valid in validators)

    return check


def _schema_check(schema: Schema) -> Check:
    if any(schema._hooks.values()) or schema.only is not None or schema.exclude:
        raise _Unknown("hooks or a partial schema")
    checks: dict[str, Check] = {}
    required = []
    for name, one in schema.load_fields.items():
        if one.data_key not in (None, name) or one.attribute not in (None, name):
            raise _Unknown(f"{name} is read from another key")
        checks[name] = _field_check(one)
        if one.required:
            required.append(name)
    needed = frozenset(required)

    def check(document: Any) -> bool:
        if type(document) is not dict:
            return False
        for name, value in document.items():
            valid = checks.get(name)
            if valid is None or not valid(value):
                return False
        return document.keys() >= needed

    return check


@functools.cache
def quick_check(schema: type[Schema]) -> Check | None:
    """The quick check of a schema's documents (unknown fields refused), None if it cannot have one."""
    try:
        return _schema_check(_schema(schema, RAISE))
    except _Unknown:
        return None


def validation_errors(schema: type[Schema], document: dict[str, Any]) -> dict[str, Any]:
    """marshmallow's errors of `document` (unknown fields refused): {} when it is valid."""
    quick = quick_check(schema)
    if quick is not None and quick(document):
        return {}
    return _schema(schema).validate(document)


# ---- the value the code passes around -------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    event_type: str
    payload: dict[str, Any]
    producer: str
    version: int = 1
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # True when new_event validated the payload: encode then does not validate it a second time.
    payload_checked: bool = field(default=False, compare=False, repr=False)
    # The id, time and producer new_event gave an envelope it made (the same objects): while the
    # envelope still holds them, encode knows its fields valid without checking them again.
    made_with: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "producer": self.producer,
            "payload": self.payload,
        }


def new_event(event_type: str, payload: dict[str, Any], producer: str) -> Envelope:
    """Build the current version of an event, validating its payload now (fail at the source)."""
    version = CURRENT_VERSION[event_type]
    jsonable = _jsonable(payload)
    errors = validation_errors(PAYLOADS[(event_type, version)], jsonable)
    if errors:
        raise ValidationError(errors)
    event_id, occurred_at = str(uuid.uuid4()), datetime.now(UTC)
    # A fresh canonical id, an aware time, a known type and its version: valid, given a producer.
    valid = type(producer) is str and producer != "" and type(jsonable) is dict
    return Envelope(
        event_type=event_type,
        payload=jsonable,
        producer=producer,
        version=version,
        event_id=event_id,
        occurred_at=occurred_at,
        payload_checked=True,
        made_with=(event_id, occurred_at, producer) if valid else None,
    )


def _made_valid(envelope: Envelope) -> bool:
    """Whether new_event made this envelope valid and it still holds what new_event gave it."""
    made = envelope.made_with
    return (
        made is not None
        and made[0] is envelope.event_id
        and made[1] is envelope.occurred_at
        and made[2] is envelope.producer
        and type(envelope.payload) is dict
        and CURRENT_VERSION.get(envelope.event_type) == envelope.version
    )


def encode(envelope: Envelope) -> bytes:
    doc = envelope.to_dict()
    errors = {} if _made_valid(envelope) else validation_errors(EnvelopeSchema, doc)
    if errors:
        raise ValidationError(errors)
    if not envelope.payload_checked:
        payload_errors = validation_errors(PAYLOADS[(envelope.event_type, envelope.version)], doc["payload"])
        if payload_errors:
            raise ValidationError({"payload": payload_errors})
    # orjson would write a UUID object as its string, where json refuses it (as it did before)
    plain = type(doc["event_id"]) is str and (
        (envelope.event_type, envelope.version) in _ORJSON_EVENTS or _floats_written_alike(doc["payload"])
    )
    return canonical_json(doc, floats=not plain)


def _float_free(field: fields.Field[Any]) -> bool:
    """Whether a valid value of the field never holds a float other than an integral one (which an
    Integer field may take): strings, integers, booleans, dates and ids, and lists of them."""
    if type(field) is fields.List:
        return _float_free(field.inner)
    return type(field) in (fields.String, fields.Integer, fields.Boolean, fields.AwareDateTime, fields.UUID)


# The events whose bytes orjson makes. orjson writes every string, integer and integral float as
# json.dumps(..., ensure_ascii=False) does, but floats under 1e-4 otherwise (5e-06 as 5e-6, 1e-05
# as 0.00001), and NaN as null: an event that may carry floats (scores, weights) is written by
# orjson only when all the floats it holds are written alike (_floats_written_alike), else by json.
_ORJSON_EVENTS = frozenset(
    key for key, schema in PAYLOADS.items() if all(_float_free(one) for one in schema().fields.values())
)


# orjson writes a float as json does (float.__repr__, the shortest digits) from 1e-4 up to 1e16, and
# zero as 0.0 and -0.0: tests/unit/test_events_encode_quick.py holds it over millions of floats.
_ALIKE_FROM, _ALIKE_BELOW = 1e-4, 1e16
_PLAIN_LEAVES = frozenset({str, int, bool, type(None)})


def _floats_written_alike(value: Any) -> bool:
    """Whether `value` is made of exact dicts, lists, strings, integers, booleans and None, and
    floats that orjson writes as json does (finite, zero or 1e-4 <= |x| < 1e16). Anything else
    (a float below 1e-4, NaN, a subclass, a tuple, any other object) leaves the document to json."""
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list:
        items = value
    elif kind is float:
        return bool(value == 0.0 or _ALIKE_FROM <= abs(value) < _ALIKE_BELOW)
    else:
        return kind in _PLAIN_LEAVES
    for item in items:
        kind = type(item)
        if kind in _PLAIN_LEAVES:
            continue
        if kind is float:
            if not (item == 0.0 or _ALIKE_FROM <= abs(item) < _ALIKE_BELOW):  # NaN fails both
                return False
        elif (kind is not dict and kind is not list) or not _floats_written_alike(item):
            return False
    return True


def canonical_json(doc: dict[str, Any], floats: bool = True) -> bytes:
    """The bytes of an event: `json.dumps(doc, ensure_ascii=False, separators=(",", ":"),
    sort_keys=True)` in UTF-8. With `floats` False (the document holds no float but those orjson
    writes as json does: see _floats_written_alike) orjson makes them, which gives the same bytes
    for such a document: the same escapes, key order, integers, floats and strings. What orjson
    refuses (an integer beyond 64 bits, a lone surrogate, a key that is not exactly a string, a
    subclass of str, a datetime) goes to json, as before."""
    if not floats:
        try:
            return orjson.dumps(doc, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            pass
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def decode(raw: bytes | str | None) -> Envelope:
    """Parse and validate an envelope; payload fields keep their JSON types (strings for dates).
    Unknown fields of the envelope and of the payload are left out. orjson parses documents without
    floats (json the others, as httpedge.loads does); a document the quick checks accept is read
    without marshmallow (the answer is the same: tests/unit/test_events_quick_check.py);
    any other is marshmallow's to judge, and its errors are the message."""
    if raw is None:
        raise UndecodableEvent("empty message (tombstone)")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = _json_document(raw)
    else:
        if holds_float(doc):  # orjson makes an integer beyond 64 bits a float, which json reads exactly
            doc = _json_document(raw)
    if not isinstance(doc, dict):
        raise UndecodableEvent("envelope is not a JSON object")
    return _decoded_quickly(doc) or decode_document(doc)


def _json_document(raw: bytes | str) -> Any:
    """What json makes of a document orjson refused or read floats in: json reads a little more
    (NaN, Infinity, a lone surrogate escaped) and integers beyond 64 bits exactly, as decode always
    did; the rest is not JSON."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UndecodableEvent(f"not JSON: {exc}") from None


def _decoded_quickly(doc: dict[str, Any]) -> Envelope | None:
    """The envelope of a document the quick checks accept, its fields read as marshmallow reads
    them; None for any other (marshmallow judges it)."""
    envelope = {k: v for k, v in doc.items() if k in _ENVELOPE_KEYS}
    check = quick_check(EnvelopeSchema)
    if check is None or not check(envelope):
        return None
    schema = PAYLOADS.get((envelope["event_type"], envelope["version"]))
    payload_check = quick_check(schema) if schema is not None else None
    if schema is None or payload_check is None:
        return None
    known = _schema(schema, EXCLUDE).fields
    payload = {k: v for k, v in envelope["payload"].items() if k in known}
    if not payload_check(payload):
        return None
    return Envelope(
        event_type=envelope["event_type"],
        payload=payload,
        producer=envelope["producer"],
        version=envelope["version"],
        event_id=envelope["event_id"],  # canonical (the quick check's): str(UUID(it)) is itself
        occurred_at=_schema(EnvelopeSchema, EXCLUDE).fields["occurred_at"].deserialize(envelope["occurred_at"]),
    )


def decode_document(doc: dict[str, Any]) -> Envelope:
    """decode's answer for a parsed document, as marshmallow reads and judges it."""
    try:
        env = _schema(EnvelopeSchema, EXCLUDE).load(doc)
    except ValidationError as exc:
        raise UndecodableEvent(f"bad envelope: {exc.messages}") from None
    key = (env["event_type"], env["version"])
    if key not in PAYLOADS:
        raise UndecodableEvent(f"unknown event {key[0]} v{key[1]}")
    payload_errors = _schema(PAYLOADS[key], EXCLUDE).validate(env["payload"])
    if payload_errors:
        raise UndecodableEvent(f"bad payload of {key[0]} v{key[1]}: {payload_errors}")
    known = _schema(PAYLOADS[key], EXCLUDE).fields
    payload = {k: v for k, v in env["payload"].items() if k in known}
    return Envelope(
        event_type=env["event_type"],
        payload=payload,
        producer=env["producer"],
        version=env["version"],
        event_id=str(env["event_id"]),
        occurred_at=env["occurred_at"],
    )


_ENVELOPE_KEYS = frozenset(EnvelopeSchema().fields)


def pair_id(org_a: str, org_b: str) -> str:
    """Deterministic id of an unordered pair, so every write keyed by it is idempotent."""
    first, second = sorted((org_a, org_b))
    return f"{first}~{second}"


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: Any) -> Any:
    """`value` with its dictionaries and lists copied, tuples made lists and datetimes ISO strings.
    The plain JSON types are passed as they are without a call each (most of a payload)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {k: v if type(v) in _PLAIN else _jsonable(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _PLAIN else _jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
