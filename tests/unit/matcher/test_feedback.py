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

    def approve(self, pair_id):
        """Both clusters' approval, as RedisMatcherState.decide records the second; returns its event."""
        pair = self.pairs[pair_id]
        decisions = [
            {
                "cluster_id": pair[side],
                "coordinator": "anna",
                "decision": "approve",
                "reason_code": None,
                "reason_text": None,
                "decided_at": "2026-12-05T01:00:00+00:00",
            }
            for side in ("cluster_a", "cluster_b")
        ]
        pair.update(state="approved", decisions={d["cluster_id"]: d for d in decisions})
        payload = {
            **{k: pair[k] for k in ("pair_id", "org_a", "org_b", "cluster_a", "cluster_b", "score")},
            "reasons": [],
            "decisions": decisions,
        }
        return events.new_event(events.MATCH_APPROVED, payload, "matcher")


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


def test_a_rejection_for_another_reason_teaches_nothing_frees_its_place_and_already_partners_never_return(world):
    state, live, family = world
    before = _top_ids(live, "seeker-1")
    partner = before[0]
    pair_id = events.pair_id("seeker-1", partner)
    engine_best = [s.id for s in live.engine.top("seeker-1", TOP_K + 1)]
    assert engine_best[:TOP_K] == before
    envelope = state.reject(pair_id, "c-seekers", "already_partners")
    assert live.handle_decision(envelope)  # the lists planned again: the decided pair frees its place
    # nothing lowered: the engine's next best takes the place, the others stay in their order
    assert _top_ids(live, "seeker-1") == engine_best[1:]
    assert engine_best[TOP_K] in _pending_partners(state, "seeker-1")
    writes = state.writes
    assert not live.handle_decision(envelope) and state.writes == writes  # a replay

    for envelope in (
        _upsert("seeker-1", "c-seekers", ["agrifood.dairy"], SOUGHT, "Dairy cooperative, cheese."),
        _upsert(partner, "c-0", [family[partner], "tourism.hotels"], [], "We work with partners."),
    ):
        envelope.payload["revision"] = 2
        assert live.handle(envelope)
    assert state.pairs[pair_id]["state"] == "rejected"
    assert partner not in _pending_partners(state, "seeker-1")


def test_a_candidate_that_rejected_an_organisation_lowers_its_look_alikes_in_both_lists(lexicon):
    """A pair is suggested when it leads either list, so the lowering applies from both sides. a2's
    candidates earn their score in two ways (software, cold chain): the least like b2 keeps its."""
    engine = MatchEngine(lexicon)
    orgs = [
        _upsert("a", "c-a", ["agrifood.dairy"], ["ict.software"], "Dairy."),
        _upsert("a2", "c-a", ["agrifood.dairy"], ["ict.software", "logistics.cold_chain"], "Dairy farm."),
        _upsert("b", "c-b", ["ict.software"], [], "Software."),
        _upsert("b2", "c-b", ["ict.software"], [], "Software house."),
        _upsert("c", "c-c", ["logistics.cold_chain"], [], "Refrigerated transport."),
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


def test_a_queue_worked_by_its_coordinators_fills_again_and_never_offers_a_decided_partner_again(world):
    """Each decision frees the place of its pair in both lists: the next best partner is suggested
    at once, so an organisation whose suggestions were all approved has new ones, not none."""
    state, live, _family = world

    def full(pending):  # each partner of the list is suggested, or its organisation has all it may have
        return all(p in pending or len(state.pending_of_org(p)) >= 8 for p in _top_ids(live, "seeker-2"))

    approved: set[str] = set()
    for _round in range(3):
        pending = _pending_partners(state, "seeker-2")
        assert len(pending) >= TOP_K - 1 and full(pending) and not pending & approved
        for partner in sorted(pending):
            assert live.handle_decision(state.approve(events.pair_id("seeker-2", partner)))
            approved.add(partner)
    assert len(approved) >= 3 * (TOP_K - 1)
    pending = _pending_partners(state, "seeker-2")
    assert len(pending) >= TOP_K - 1 and full(pending)
    assert len(_top_ids(live, "seeker-2")) == TOP_K and not set(_top_ids(live, "seeker-2")) & approved

    # a matcher that saw none of the decisions (another one of the group's, or after a restart)
    # learns them from its plan's snapshot and lists the next best in their place
    live.decided_with.clear()
    live.plan_lists({"seeker-2"})
    assert live.decided_with["seeker-2"] & approved  # learnt from the snapshot
    assert not set(_top_ids(live, "seeker-2")) & approved and len(_top_ids(live, "seeker-2")) == TOP_K


def test_a_rejection_that_cannot_tell_the_candidates_apart_lowers_none_of_them(lexicon):
    """Where every candidate earns its score the same way, a rejection as not relevant says nothing
    about the others: they keep their scores and places (a lowering of all once halved every score
    of the organisation, and pairs of other organisations at the limit took their places)."""
    state = FakeState()
    # no limit of pending pairs at play: the software houses, alike, are also each other's partners
    live = LiveMatcher(state, MatchEngine(lexicon), top_k=TOP_K, min_score=0.0, max_pending_per_org=20)
    live.handle(_upsert("seeker", "c-seekers", ["agrifood.dairy"], ["ict.software"], "Dairy cooperative."))
    for j in range(12):
        live.handle(_upsert(f"soft-{j:02d}", f"c-{j % 3}", ["ict.software"], [], "Software house."))
    before = {p: state.pairs[events.pair_id("seeker", p)]["score"] for p in _pending_partners(state, "seeker")}
    assert len(before) >= TOP_K
    rejected = _top_ids(live, "seeker")[0]
    assert live.handle_decision(state.reject(events.pair_id("seeker", rejected), "c-seekers", "not_relevant"))
    after = {p: state.pairs[events.pair_id("seeker", p)]["score"] for p in _pending_partners(state, "seeker")}
    assert {p: s for p, s in before.items() if p != rejected} == {p: after[p] for p in before if p != rejected}
    assert len(after) >= len(before)  # the next best took the rejected one's place


def test_an_organisation_whose_best_partners_have_no_place_left_gets_the_next_ones_that_have_room(lexicon):
    """Nine software houses are each other's best partners and fill their places (at most 4 pending
    each here); a dairy seeking software lists them first. Its list passes over them and suggests
    the next best, software firms with room, instead of nothing."""
    state = FakeState()
    live = LiveMatcher(state, MatchEngine(lexicon), top_k=TOP_K, min_score=0.0, max_pending_per_org=4)
    for j in range(9):
        text = "Software house, custom software development."
        live.handle(_upsert(f"busy-{j}", f"c-{j % 3}", ["ict.software"], ["ict.software"], text))
    for j in range(4):
        live.handle(_upsert(f"quiet-{j}", f"c-q{j}", ["ict.software", "tourism.hotels"], [], "Hotel booking software."))
    live.handle(_upsert("seeker", "c-seekers", ["agrifood.dairy"], ["ict.software"], "Dairy cooperative."))

    engine_list = {s.id for s in live.engine.top("seeker", TOP_K)}
    assert all(p.startswith("busy-") for p in engine_list)
    pending = _pending_partners(state, "seeker")
    assert len(pending) >= 3 and pending - engine_list  # (none without passing over: the busy are full)
    assert all(len(state.pending_of_org(org)) <= 4 for org in live.clusters)  # no limit broken for it
