"""Rejections teach the live matcher, on generated data: organisations that each seek three things,
and candidates from three families, each family offering one of them. After a coordinator rejects
the top candidates of one family as not relevant, that family's share of the organisation's new
list falls, other organisations' lists stay as they were, an "already partners" pair never
returns, and replaying the rejection changes nothing. The engine is the real one; the state a fake."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from partnermatch import events
from services.matcher import domain
from services.matcher.domain import PlanSnapshot
from services.matcher.engine import MatchEngine, load_lexicon
from services.matcher.feedback import dislikes_in, rerank
from services.matcher.live import LiveMatcher, profile_from_payload

SOUGHT = ("ict.software", "logistics.cold_chain", "energy.solar")  # one family offers each
# What the candidates offer besides: nothing the seekers seek, and once their own sector (they make cheese)
NOISE = (
    "tourism.hotels",
    "tourism.rural",
    "creative.design",
    "health.medical_devices",
    "construction.architecture",
    "metal.machining_cnc",
    "wood.furniture_manufacturing",
    "education.vet",
    "creative.music",
    "agrifood.honey",
)
TOP_K = 5


class FakeState:
    """The matcher state in dicts: pairs with their state, revisions, what rejections taught."""

    def __init__(self) -> None:
        self.pairs: dict[str, dict] = {}
        self.revisions: dict[str, int] = {}
        self.dislikes: dict[str, set[str]] = {}
        self.lessons: set[str] = set()
        self.writes = 0

    def applied_revision(self, org_id):
        return self.revisions.get(org_id, 0)

    def decided(self, pair_ids):
        return {p for p in pair_ids if self.pairs.get(p, {}).get("state") in ("approved", "rejected")}

    def pending_of_org(self, org_id):
        return {
            p: r["score"]
            for p, r in self.pairs.items()
            if r["state"] == "pending" and org_id in (r["org_a"], r["org_b"])
        }

    def snapshot(self, org_ids, pair_ids, sides_of=()):
        pair_ids = list(pair_ids)
        pending = {o: self.pending_of_org(o) for o in org_ids}
        let_go = {p for o in sides_of for p in pending[o]} - set(pair_ids)
        sides = {p: domain.wanted_by(self.pairs[p]) for p in let_go}
        return PlanSnapshot(pending, frozenset(self.decided(pair_ids)), sides)

    def dislikes_of(self, org_ids):
        return {o: sorted(self.dislikes[o]) for o in org_ids if self.dislikes.get(o)}

    def apply(self, change):
        if self.revisions.get(change.org_id, 0) >= change.revision:
            return False
        self.revisions[change.org_id] = change.revision
        self._write(change.upserts, change.withdrawals, change.unlisted)
        return True

    def lesson_applied(self, pair_id):
        return pair_id in self.lessons

    def apply_lesson(self, pair_id, plan):
        if pair_id in self.lessons:
            return False
        self.lessons.add(pair_id)
        self._write(plan.upserts, plan.withdrawals, plan.unlisted)
        return True

    def _write(self, upserts, withdrawals, unlisted):
        for step in domain.pair_steps(self.pairs, upserts, withdrawals, 1_000, unlisted):
            self.pairs[step.record["pair_id"]] = step.record
            self.writes += 1

    def reject(self, pair_id, cluster_id, reason_code):
        """A coordinator's rejection, as RedisMatcherState.decide records it; returns its event."""
        pair = self.pairs[pair_id]
        decision = {
            "cluster_id": cluster_id,
            "coordinator": "anna",
            "decision": "reject",
            "reason_code": reason_code,
            "reason_text": None,
            "decided_at": "2026-12-05T01:00:00+00:00",
        }
        pair.update(state="rejected", decisions={cluster_id: decision})
        for org, partner in dislikes_in(pair, [decision]):
            self.dislikes.setdefault(org, set()).add(partner)
        payload = {
            **{k: pair[k] for k in ("pair_id", "org_a", "org_b", "cluster_a", "cluster_b", "score")},
            "reasons": [],
            "decisions": [decision],
        }
        return events.new_event(events.MATCH_REJECTED, payload, "matcher")


def _upsert(org_id, cluster, offers, seeks, text):
    return events.new_event(
        events.PROFILE_UPSERTED,
        {
            "org_id": org_id,
            "revision": 1,
            "cluster_id": cluster,
            "name": org_id,
            "country": "PL",
            "language": "en",
            "capabilities": text,
            "goals": "",
            "sectors": [],
            "website": None,
            "offers": list(offers),
            "seeks": list(seeks),
            "seeks_countries": [],
            "updated_at": datetime.now(UTC),
        },
        "test",
    )


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


@pytest.fixture
def world(lexicon):
    """Four seekers in one cluster; 15 candidates per family spread over three other clusters, each
    also offering one or two things nobody seeks, so no two are alike in everything."""
    rng = random.Random(16)
    state = FakeState()
    live = LiveMatcher(state, MatchEngine(lexicon), top_k=TOP_K, min_score=0.0, max_pending_per_org=8)
    family = {}
    profiles = [_upsert(f"seeker-{i}", "c-seekers", ["agrifood.dairy"], SOUGHT, "Dairy cooperative.") for i in range(4)]
    for f, offer in enumerate(SOUGHT):
        for j in range(15):
            org_id = f"fam{f}-{j:02d}"
            family[org_id] = offer
            profiles.append(
                _upsert(
                    org_id,
                    f"c-{j % 3}",
                    [offer, *rng.sample(NOISE, rng.randint(1, 2))],
                    [],
                    "We work with partners abroad.",
                )
            )
    for envelope in profiles:
        assert live.handle(envelope)
    return state, live, family


def _pending_partners(state, org_id):
    return {
        next(o for o in (r["org_a"], r["org_b"]) if o != org_id)
        for r in state.pairs.values()
        if r["state"] == "pending" and org_id in (r["org_a"], r["org_b"])
    }


def _top_ids(live, org_id):
    return [s.id for s in live._top(org_id)]


def _share(ids, family, offer):
    return sum(family[i] == offer for i in ids) / len(ids)


def test_rejecting_the_top_look_alikes_as_not_relevant_lowers_their_family_in_the_next_list(world):
    state, live, family = world
    before = _top_ids(live, "seeker-0")
    others_before = {s: _pending_partners(state, s) for s in ("seeker-1", "seeker-2", "seeker-3")}
    others_top = {s: _top_ids(live, s) for s in others_before}
    offer = max(SOUGHT, key=lambda o: _share(before, family, o))  # the family that leads the list
    rejected = [c for c in before if family[c] == offer][:2]
    share_before = _share(before, family, offer)
    assert share_before >= 0.4

    for candidate in rejected:
        envelope = state.reject(events.pair_id("seeker-0", candidate), "c-seekers", "not_relevant")
        assert live.handle_decision(envelope)

    after = _top_ids(live, "seeker-0")
    assert len(after) == TOP_K and not set(rejected) & set(after)
    share_after = _share(after, family, offer)
    assert share_after < share_before / 2, (before, after)
    # the pending suggestions changed at once, without another profile event (as far as the
    # candidates' own limits of pending pairs let them)
    pending = _pending_partners(state, "seeker-0")
    assert pending & set(after) and not set(rejected) & pending
    assert _share(sorted(pending), family, offer) < share_before
    # the other organisations' lists are theirs: untouched (they may get a suggestion more, from
    # candidates with room again)
    assert all(_top_ids(live, s) == top for s, top in others_top.items())
    assert all(_pending_partners(state, s) >= pending for s, pending in others_before.items())

    writes = state.writes
    for candidate in rejected:  # a replay of the decisions
        assert not live.handle_decision(
            state.reject(events.pair_id("seeker-0", candidate), "c-seekers", "not_relevant")
        )
    assert state.writes == writes and _top_ids(live, "seeker-0") == after


def test_a_rejection_for_another_reason_teaches_nothing_and_already_partners_never_return(world):
    state, live, family = world
    before = _top_ids(live, "seeker-1")
    partner = before[0]
    pair_id = events.pair_id("seeker-1", partner)
    assert not live.handle_decision(state.reject(pair_id, "c-seekers", "already_partners"))
    assert _top_ids(live, "seeker-1") == before  # nothing lowered (the decided pair is out of the suggestions)

    for envelope in (
        _upsert("seeker-1", "c-seekers", ["agrifood.dairy"], SOUGHT, "Dairy cooperative, cheese."),
        _upsert(partner, "c-0", [family[partner], "tourism.hotels"], [], "We work with partners."),
    ):
        envelope.payload["revision"] = 2
        assert live.handle(envelope)
    assert state.pairs[pair_id]["state"] == "rejected"
    assert partner not in _pending_partners(state, "seeker-1")


def test_a_candidate_that_rejected_an_organisation_lowers_its_look_alikes_in_both_lists(lexicon):
    """A pair is suggested when it leads either list, so the lowering applies from both sides."""
    engine = MatchEngine(lexicon)
    orgs = [
        _upsert("a", "c-a", ["agrifood.dairy"], ["ict.software"], "Dairy."),
        _upsert("a2", "c-a", ["agrifood.dairy"], ["ict.software"], "Dairy farm."),
        _upsert("b", "c-b", ["ict.software"], [], "Software."),
        _upsert("b2", "c-b", ["ict.software"], [], "Software house."),
    ]
    engine.fit([profile_from_payload(e.payload) for e in orgs])
    b_list = engine.top("b", 5)
    plain = {s.id: s.score for s in b_list}
    lowered = {s.id: s.score for s in rerank(engine, "b", b_list, {"a2": ["b2"]}, 0.5)}
    assert lowered["a2"] < plain["a2"]  # a2 rejected b2, which b resembles for the same reasons
    assert lowered["a"] == plain["a"]
    a2_plain = {s.id: s.score for s in engine.top("a2", 5)}
    a2_lowered = {s.id: s.score for s in rerank(engine, "a2", engine.top("a2", 5), {"a2": ["b2"]}, 0.5)}
    assert a2_lowered["b"] / a2_plain["b"] == pytest.approx(lowered["a2"] / plain["a2"])  # the same from a2's side
