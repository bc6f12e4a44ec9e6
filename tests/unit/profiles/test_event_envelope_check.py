"""events.encode does not check again the envelope fields new_event made (a fresh id, the time, a
known type and version, its producer), and checks every envelope that does not hold them any more,
or was made by hand, as it always did."""

from __future__ import annotations

import dataclasses

import pytest
from marshmallow import ValidationError

from partnermatch import events

PAYLOAD = {"org_id": "Ab3dEf", "revision": 2, "cluster_id": "north"}


def test_every_event_new_event_makes_has_an_envelope_the_schema_accepts():
    for event_type, version in events.CURRENT_VERSION.items():
        document = {
            "event_id": "6f1c1a52-3c1e-4b38-9d55-0a7f6c2f9b10",
            "event_type": event_type,
            "version": version,
            "occurred_at": "2026-12-06T01:00:00.123456+00:00",
            "producer": "p",
            "payload": {},
        }
        assert events._schema(events.EnvelopeSchema).validate(document) == {}


def test_an_envelope_new_event_made_is_encoded_as_one_made_by_hand():
    made = events.new_event(events.PROFILE_DELETED, PAYLOAD, "profiles")
    assert made.made_with is not None
    by_hand = events.Envelope(
        event_type=made.event_type,
        payload=dict(made.payload),
        producer="profiles",
        version=made.version,
        event_id=made.event_id,
        occurred_at=made.occurred_at,
    )
    assert by_hand.made_with is None
    assert events.encode(made) == events.encode(by_hand)


@pytest.mark.parametrize(
    "change",
    [
        {"event_id": "not-a-uuid"},
        {"producer": ""},
        {"event_type": "Profile.Deleted"},
        {"payload": ["not", "a", "dict"]},
    ],
)
def test_an_envelope_changed_after_new_event_is_checked_again(change):
    made = events.new_event(events.PROFILE_DELETED, PAYLOAD, "profiles")
    with pytest.raises(ValidationError):
        events.encode(dataclasses.replace(made, **change))


def test_an_event_with_no_producer_is_still_refused_when_encoded():
    made = events.new_event(events.PROFILE_DELETED, PAYLOAD, "")
    assert made.made_with is None
    with pytest.raises(ValidationError) as refused:
        events.encode(made)
    assert "producer" in refused.value.messages
