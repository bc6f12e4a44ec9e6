"""The live matcher reads `profile.upserted` v1 and v2 into the engine's profile: the structured
needs of v2 reach the engine, a v1 event (or a profile stored before v2) has none."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from partnermatch import events
from services.matcher.domain import PlanSnapshot
from services.matcher.live import LiveMatcher, profile_from_payload

V1 = {
    "org_id": "org_1",
    "revision": 1,
    "cluster_id": "rs-ict",
    "name": "Softver",
    "country": "RS",
    "language": "sr",
    "capabilities": "Razvoj softvera.",
    "goals": "Partneri u poljoprivredi.",
    "sectors": ["ict"],
    "website": None,
    "updated_at": "2026-11-23T09:30:00+00:00",
}
NEEDS = {"offers": ["ict.software"], "seeks": ["agrifood", "logistics.cold_chain"], "seeks_countries": ["PL", "DE"]}


def _through_the_wire(payload, version):
    envelope = events.Envelope(
        event_type=events.PROFILE_UPSERTED,
        payload=payload,
        producer="test",
        version=version,
        occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
    )
    return events.decode(events.encode(envelope))


def test_a_v2_event_gives_the_engine_its_needs_as_tuples():
    profile = profile_from_payload(_through_the_wire({**V1, **NEEDS}, 2).payload)
    assert profile.offers == ("ict.software",)
    assert profile.seeks == ("agrifood", "logistics.cold_chain")
    assert profile.seeks_countries == ("PL", "DE")
    assert (profile.id, profile.cluster, profile.country) == ("org_1", "rs-ict", "RS")


def test_a_v1_event_gives_a_profile_without_needs():
    profile = profile_from_payload(_through_the_wire(V1, 1).payload)
    assert profile.offers == profile.seeks == profile.seeks_countries == ()
    assert profile.capabilities == "Razvoj softvera."


class _FakeState:
    def __init__(self):
        self.changes = []

    def applied_revision(self, org_id):
        return 0

    def decided(self, pair_ids):
        return set()

    def pending_of_org(self, org_id):
        return {}

    def snapshot(self, org_ids, pair_ids, sides_of=()):
        return PlanSnapshot({o: self.pending_of_org(o) for o in org_ids}, frozenset(self.decided(pair_ids)))

    def apply(self, change):
        self.changes.append(change)
        return True


class _FakeEngine:
    def __init__(self):
        self.upserted = []

    def upsert(self, profile):
        self.upserted.append(profile)
        return SimpleNamespace(entered=(), left=())

    def top(self, org_id, k):
        return []


def test_handling_a_v2_event_upserts_the_needs_and_stores_them_with_the_profile():
    state, engine = _FakeState(), _FakeEngine()
    matcher = LiveMatcher(state, engine)
    assert matcher.handle(_through_the_wire({**V1, **NEEDS}, 2))
    [profile] = engine.upserted
    assert profile.seeks == ("agrifood", "logistics.cold_chain")
    [change] = state.changes
    assert {k: change.profile[k] for k in NEEDS} == NEEDS  # a restart rebuilds the index with them
    assert profile_from_payload(change.profile) == profile
