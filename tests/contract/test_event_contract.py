"""Golden JSON per event version: the bytes a consumer may receive stay readable forever."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from marshmallow import ValidationError

from partnermatch import events

GOLDEN = Path(__file__).parent / "golden"
FIXED_TIME = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
FIXED_ID = "6f1c1a52-3c1e-4b38-9d55-0a7f6c2f9b10"

EXAMPLES: dict[tuple[str, int], dict[str, Any]] = {
    ("profile.upserted", 1): {
        "org_id": "org_00aa11bb22cc33dd",
        "revision": 3,
        "cluster_id": "rs-vojvodina-ict",
        "name": "Кластер ИКТ Војводина",
        "country": "RS",
        "language": "sr",
        "language_detected": False,
        "capabilities": "Развој софтвера, обука програмера.",
        "goals": "Partneri u poljoprivredi.",
        "sectors": ["ict"],
        "website": "https://example.org",
        "updated_at": "2026-11-23T09:30:00+00:00",
    },
    ("profile.upserted", 2): {
        "org_id": "org_00aa11bb22cc33dd",
        "revision": 4,
        "cluster_id": "rs-vojvodina-ict",
        "name": "Кластер ИКТ Војводина",
        "country": "RS",
        "language": "sr",
        "language_detected": False,
        "capabilities": "Развој софтвера, обука програмера.",
        "goals": "Partneri u poljoprivredi.",
        "sectors": ["ict"],
        "offers": ["ict.software", "ict"],
        "seeks": ["agrifood", "logistics.cold_chain"],
        "seeks_countries": ["PL", "DE"],
        "website": "https://example.org",
        "updated_at": "2026-11-23T09:30:00+00:00",
    },
    ("profile.deleted", 1): {"org_id": "org_00aa11bb22cc33dd", "revision": 4, "cluster_id": "rs-vojvodina-ict"},
    ("match.suggested", 1): {
        "pair_id": "org_a~org_b",
        "org_a": "org_a",
        "org_b": "org_b",
        "cluster_a": "pl-silesia-ict",
        "cluster_b": "rs-vojvodina-ict",
        "score": 0.71,
        "reasons": [
            {
                "concept": "ict.software",
                "kind": "activity",
                "direction": "a_offers_b_seeks",
                "weight": 0.4,
                "terms_a": ["oprogramowania"],
                "terms_b": ["softvera"],
            }
        ],
    },
    ("match.withdrawn", 1): {
        "pair_id": "org_a~org_b",
        "org_a": "org_a",
        "org_b": "org_b",
        "cluster_a": "pl-silesia-ict",
        "cluster_b": "rs-vojvodina-ict",
        "reason": "score_dropped",
    },
    ("match.approved", 1): {
        "pair_id": "org_a~org_b",
        "org_a": "org_a",
        "org_b": "org_b",
        "cluster_a": "pl-silesia-ict",
        "cluster_b": "rs-vojvodina-ict",
        "score": 0.71,
        "reasons": [],
        "decisions": [
            {
                "cluster_id": "pl-silesia-ict",
                "coordinator": "anna",
                "decision": "approve",
                "reason_code": None,
                "reason_text": None,
                "decided_at": "2026-11-23T09:30:00+00:00",
            },
            {
                "cluster_id": "rs-vojvodina-ict",
                "coordinator": "marko",
                "decision": "approve",
                "reason_code": None,
                "reason_text": None,
                "decided_at": "2026-11-23T09:31:00+00:00",
            },
        ],
    },
    ("match.rejected", 1): {
        "pair_id": "org_a~org_b",
        "org_a": "org_a",
        "org_b": "org_b",
        "cluster_a": "pl-silesia-ict",
        "cluster_b": "rs-vojvodina-ict",
        "score": 0.71,
        "reasons": [],
        "decisions": [
            {
                "cluster_id": "pl-silesia-ict",
                "coordinator": "anna",
                "decision": "reject",
                "reason_code": "not_relevant",
                "reason_text": "Różne rynki",
                "decided_at": "2026-11-23T09:30:00+00:00",
            },
        ],
    },
}


def _golden_path(event_type: str, version: int) -> Path:
    return GOLDEN / f"{event_type}.v{version}.json"


def test_every_event_type_and_version_has_an_example_and_a_golden_file():
    assert set(EXAMPLES) == set(events.PAYLOADS)
    for event_type, version in events.PAYLOADS:
        assert _golden_path(event_type, version).exists(), f"missing golden file for {event_type} v{version}"


@pytest.mark.parametrize(("event_type", "version"), sorted(EXAMPLES))
def test_encoding_an_example_gives_exactly_the_golden_bytes(event_type, version):
    envelope = events.Envelope(
        event_type=event_type,
        payload=EXAMPLES[(event_type, version)],
        producer="contract-test",
        version=version,
        event_id=FIXED_ID,
        occurred_at=FIXED_TIME,
    )
    expected = _golden_path(event_type, version).read_bytes().strip()
    assert events.encode(envelope) == expected


@pytest.mark.parametrize(("event_type", "version"), sorted(EXAMPLES))
def test_golden_bytes_decode_to_the_example(event_type, version):
    decoded = events.decode(_golden_path(event_type, version).read_bytes())
    assert decoded.event_type == event_type and decoded.version == version
    assert decoded.event_id == FIXED_ID
    example = EXAMPLES[(event_type, version)]
    assert {k: decoded.payload[k] for k in example} == example


def test_profiles_are_published_as_profile_upserted_v2():
    payload = dict(EXAMPLES[("profile.upserted", 2)])
    assert events.new_event(events.PROFILE_UPSERTED, payload, "p").version == 2
    del payload["offers"], payload["seeks"], payload["seeks_countries"]
    assert events.new_event(events.PROFILE_UPSERTED, payload, "p").version == 2, "the needs are optional"


def test_a_v1_profile_still_decodes_and_has_no_needs():
    decoded = events.decode(_golden_path("profile.upserted", 1).read_bytes())
    assert decoded.version == 1
    assert not {"offers", "seeks", "seeks_countries"} & set(decoded.payload)
    loaded = events.ProfileUpsertedV2().load(decoded.payload)
    assert loaded["offers"] == loaded["seeks"] == loaded["seeks_countries"] == []


@pytest.mark.parametrize("field", ["offers", "seeks", "seeks_countries"])
def test_a_v2_profile_whose_needs_are_not_lists_of_strings_is_undecodable(field):
    doc = json.loads(_golden_path("profile.upserted", 2).read_bytes())
    for bad in ("ict", [1], None):
        doc["payload"][field] = bad
        with pytest.raises(events.UndecodableEvent):
            events.decode(json.dumps(doc).encode())


def test_consumers_ignore_fields_they_do_not_know():
    doc = json.loads(_golden_path("profile.deleted", 1).read_bytes())
    doc["shiny_new_field"] = 1
    doc["payload"]["also_new"] = "x"
    decoded = events.decode(json.dumps(doc).encode())
    assert "also_new" not in decoded.payload
    assert decoded.payload["org_id"] == "org_00aa11bb22cc33dd"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1,2]",
        b"\xff\xfe",
        None,
        b'{"event_id":"x","event_type":"profile.deleted","version":1}',
        json.dumps(
            {
                "event_id": FIXED_ID,
                "event_type": "profile.exploded",
                "version": 1,
                "occurred_at": "2026-11-23T09:30:00+00:00",
                "producer": "p",
                "payload": {},
            }
        ).encode(),
        json.dumps(
            {
                "event_id": FIXED_ID,
                "event_type": "profile.deleted",
                "version": 1,
                "occurred_at": "2026-11-23T09:30:00+00:00",
                "producer": "p",
                "payload": {"org_id": "o"},
            }
        ).encode(),
    ],
)
def test_undecodable_messages_raise_undecodable_event(raw):
    with pytest.raises(events.UndecodableEvent):
        events.decode(raw)


def test_producers_cannot_build_an_event_with_a_bad_payload():
    with pytest.raises(ValidationError):
        events.new_event(events.PROFILE_DELETED, {"org_id": "o", "revision": 0, "cluster_id": "c"}, "p")
    with pytest.raises(ValidationError):
        events.new_event(
            events.PROFILE_DELETED,
            {"org_id": "o", "revision": 1, "cluster_id": "c", "email": "someone@example.org"},
            "p",
        )


def test_an_envelope_built_by_hand_with_a_bad_payload_is_never_encoded():
    # new_event checks the payload once; an envelope that did not come from it is checked by encode
    payload = {"org_id": "o", "revision": 1, "cluster_id": "c", "email": "someone@example.org"}
    envelope = events.Envelope(event_type=events.PROFILE_DELETED, producer="p", payload=payload)
    with pytest.raises(ValidationError):
        events.encode(envelope)


@pytest.mark.parametrize("schema", [events.ProfileUpsertedV1, events.ProfileUpsertedV2])
def test_profile_event_payload_has_no_field_for_contact_emails(schema):
    fields = set(schema().fields)
    assert not {f for f in fields if "email" in f or "contact" in f}


def test_pair_id_is_the_same_whichever_organisation_comes_first():
    assert events.pair_id("org_b", "org_a") == events.pair_id("org_a", "org_b") == "org_a~org_b"
