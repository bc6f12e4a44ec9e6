"""A profile changed while the index holds no list made for some of its partners (a matcher just
started, or the weights just learnt again: both leave every list to be made when asked for): the
organisation's pending suggestions are those of the lists as the index now holds them, with its new
texts, as soon as its event is applied; none is left with the score and reasons of its old texts
until the partner's list happens to be planned again (issue 17 item 4b): such a pair stays while
its record says the partner's list held it when last planned (against the old texts), and the upsert
reports as changed only the lists the index holds made, so the run plans with the event the lists of
its partners in pending pairs that the index holds no made list of (SharedIndex._unmade_partner_lists),
and no others where it holds every list made. The real engine, the shared
index and the matcher's state in dicts; the dev set's first file as the organisations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from partnermatch import events
from partnermatch.messaging import Record
from services.matcher.domain import PENDING, other_of
from services.matcher.engine import MatchEngine
from services.matcher.live import LiveMatcher
from services.matcher.table import SharedIndex
from tests.unit.matcher.fakes import FakeMatcherRepository

DEVSET = Path(__file__).resolve().parents[2] / "data" / "devset" / "profiles_0.jsonl"
TOP_K, MIN_SCORE, MAX_PENDING = 5, 0.05, 8


def _organisations() -> list[dict]:
    return [json.loads(line) for line in DEVSET.read_text(encoding="utf-8").splitlines() if line.strip()]


def _event(org: dict, revision: int, texts: dict) -> events.Envelope:
    return events.new_event(
        events.PROFILE_UPSERTED,
        {
            "org_id": org["id"],
            "revision": revision,
            "cluster_id": org["cluster"],
            "name": org["name"],
            "country": org["country"],
            "language": texts["language"],
            "capabilities": texts["capabilities"],
            "goals": texts["goals"],
            "sectors": [],
            "website": None,
            "updated_at": "2026-01-01T00:00:00+00:00",
        },
        "test",
    )


class Matcher:
    def __init__(self, state: FakeMatcherRepository) -> None:
        self.live = LiveMatcher(state, MatchEngine(), top_k=TOP_K, min_score=MIN_SCORE, max_pending_per_org=MAX_PENDING)
        self.shared = SharedIndex(self.live, wait_s=5)
        self.shared.load()
        self.offset = 0

    def handle(self, envelopes: list[events.Envelope]) -> set[str]:
        for envelope in envelopes:  # the table reader indexes them, then the owner plans them
            self.offset += 1
            value = events.encode(envelope)
            self.shared.index_record(Record("profiles", 0, self.offset, envelope.payload["org_id"], value))
        return self.shared.handle_owned_run(envelopes)

    def listed(self, org_id: str) -> dict[str, float]:
        """The organisation's list as the index now holds it: partner -> score."""
        return {c.id: c.score for c in self.live._top(org_id)}


def _stale_pairs(state: FakeMatcherRepository, matcher: Matcher, org_id: str) -> list[str]:
    """The organisation's pending pairs that neither its list nor its partner's, as the index now
    holds them, holds with the score the pair was written with."""
    stale = []
    for pair_id, score in state.pending_of_org(org_id).items():
        partner = other_of(pair_id, org_id)
        held = [matcher.listed(org_id).get(partner), matcher.listed(partner).get(org_id)]
        if not any(s is not None and abs(s - score) < 1e-5 for s in held):
            stale.append(pair_id)
    return stale


@pytest.fixture(scope="module")
def planned_state() -> tuple[FakeMatcherRepository, list[dict]]:
    """Every organisation registered and its pairs planned by one matcher, which then stops."""
    orgs = _organisations()
    state = FakeMatcherRepository()
    first = Matcher(state)
    for start in range(0, len(orgs), 20):
        first.handle([_event(o, 1, o) for o in orgs[start : start + 20]])
    assert sum(1 for p in state.pairs.values() if p["state"] == PENDING) > len(orgs)
    return state, orgs


def test_a_patch_after_a_start_leaves_no_suggestion_of_its_old_texts(planned_state) -> None:
    state, orgs = planned_state
    restarted = Matcher(state)  # its index holds no list made yet
    patched = orgs[:12]
    for i, org in enumerate(patched):
        texts = orgs[-1 - 3 * i]  # another organisation's texts
        assert restarted.handle([_event(org, 2, texts)]) == {org["id"]}
        assert state.pending_of_org(org["id"]), "the changed organisation has suggestions"
        assert _stale_pairs(state, restarted, org["id"]) == [], f"{org['id']}: pairs of its old texts left pending"
    for org in patched:  # and the pairs the later events wrote are the index's too
        assert _stale_pairs(state, restarted, org["id"]) == []


def test_a_patch_while_the_index_holds_every_list_plans_no_more_than_its_event(planned_state, monkeypatch) -> None:
    state, orgs = planned_state
    matcher = Matcher(state)
    matcher.shared.replan_lists(sorted(matcher.live.clusters))  # as the pass after a refresh: every list made
    read_lists_of = matcher.live.read_lists_of
    read: list[set[str]] = []

    def counted(orgs_read: set[str]):
        read.append(set(orgs_read))
        return read_lists_of(orgs_read)

    monkeypatch.setattr(matcher.live, "read_lists_of", counted)
    unmade = matcher.shared._unmade_partner_lists
    added: list[set[str]] = []

    def recorded(current, partners):
        added.append(unmade(current, partners))
        return added[-1]

    monkeypatch.setattr(matcher.shared, "_unmade_partner_lists", recorded)
    org = orgs[20]
    assert state.pending_of_org(org["id"]), "the organisation has partners in pending pairs"
    assert matcher.handle([_event(org, 3, orgs[40])]) == {org["id"]}
    assert read == [], "lists planned again besides the event's own"
    assert added == [set()], "partners' lists planned with the event though the index holds them made"
    assert _stale_pairs(state, matcher, org["id"]) == []
