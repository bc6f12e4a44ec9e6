"""The matcher's rules, pure: a pair's lifecycle with the events each step causes, the coordinators'
decisions answered once, and the plan of the lists (limits of pending pairs, withdrawals)."""

from __future__ import annotations

import pytest

from partnermatch import events
from services.matcher import domain
from services.matcher.domain import Ballot, Candidate, DecisionRefused, PairWrite, PlanSnapshot

REASON = {
    "concept": "ict.software",
    "kind": "activity",
    "direction": "a_offers_b_seeks",
    "weight": 0.3,
    "terms_a": ["oprogramowanie"],
    "terms_b": ["softver"],
}


def _write(score=0.5, cluster_a="c-pl", cluster_b="c-rs", org_a="org_a", org_b="org_b") -> PairWrite:
    return PairWrite(events.pair_id(org_a, org_b), org_a, org_b, cluster_a, cluster_b, score, [REASON])


def _pending(score=0.5, **kw):
    saved = domain.suggest(None, _write(score, **kw), now=100)
    assert saved is not None
    return saved.record


# ---- suggesting and withdrawing -----------------------------------------------------------------


def test_a_new_pair_is_suggested_pending_with_its_event():
    saved = domain.suggest(None, _write(0.4321234), now=100)
    assert saved is not None and saved.step == "suggested"
    assert saved.record["state"] == "pending" and saved.record["score"] == 0.432123
    assert (saved.record["created_ms"], saved.record["updated_ms"], saved.record["decisions"]) == (100, 100, {})
    assert saved.event is not None and saved.event.event_type == events.MATCH_SUGGESTED
    assert saved.event.pair_id == "org_a~org_b"
    assert saved.event.payload == {
        "pair_id": "org_a~org_b",
        "org_a": "org_a",
        "org_b": "org_b",
        "cluster_a": "c-pl",
        "cluster_b": "c-rs",
        "score": 0.432123,
        "reasons": [REASON],
    }


def test_the_same_suggestion_again_changes_nothing_and_a_new_score_keeps_the_approvals_given():
    pair = _pending()
    assert domain.suggest(pair, _write(0.5 + 1e-8), now=200) is None
    noted = domain.record_decision(pair, Ballot("c-pl", "anna", "approve"), now=150).record
    again = domain.suggest(noted, _write(0.7), now=200)
    assert again is not None and again.event is not None
    assert again.record["score"] == 0.7 and again.record["created_ms"] == 100 and again.record["updated_ms"] == 200
    assert set(again.record["decisions"]) == {"c-pl"}


def test_an_organisation_that_moved_leaves_its_old_clusters_list_and_decision_behind():
    noted = domain.record_decision(_pending(), Ballot("c-pl", "anna", "approve"), now=150).record
    moved = domain.suggest(noted, _write(cluster_a="c-krakow"), now=200)
    assert moved is not None
    assert moved.left_clusters == ("c-pl",) and moved.record["decisions"] == {}


def test_a_decided_pair_is_never_suggested_again_and_a_withdrawn_one_starts_afresh():
    rejected = domain.record_decision(_pending(), Ballot("c-rs", "marko", "reject", "not_relevant"), now=150).record
    assert domain.suggest(rejected, _write(0.9), now=200) is None
    withdrawn = domain.withdraw(_pending(), domain.NO_LONGER_MATCHING, now=150)
    assert withdrawn is not None
    back = domain.suggest(withdrawn.record, _write(), now=300)
    assert back is not None and back.record["created_ms"] == 300 and back.record["state"] == "pending"


def test_only_a_pending_pair_is_withdrawn_and_its_event_says_why():
    saved = domain.withdraw(_pending(), domain.ORGANISATION_DELETED, now=200)
    assert saved is not None and saved.step == "withdrawn"
    assert saved.record["state"] == "withdrawn" and saved.record["withdrawn_reason"] == "organisation_deleted"
    assert saved.event is not None and saved.event.event_type == events.MATCH_WITHDRAWN
    assert saved.event.payload["reason"] == "organisation_deleted"
    assert domain.withdraw(saved.record, domain.NO_LONGER_MATCHING, now=300) is None
    assert domain.withdraw(None, domain.NO_LONGER_MATCHING, now=300) is None


def test_steps_are_judged_against_the_pairs_as_read_withdrawals_first():
    pair = _pending()
    other = _write(org_b="org_c")
    steps = domain.pair_steps({pair["pair_id"]: pair}, [other], [(pair["pair_id"], domain.DISPLACED)], now=200)
    assert [(s.step, s.record["pair_id"]) for s in steps] == [
        ("withdrawn", "org_a~org_b"),
        ("suggested", "org_a~org_c"),
    ]


def test_pairs_with_an_organisation_not_applied_yet_wait_for_it():
    known, awaiting = domain.between_known([_write(), _write(org_b="org_x")], unknown={"org_x"})
    assert [w.pair_id for w in known] == ["org_a~org_b"]
    assert awaiting == {"org_x": {"org_a"}}


# ---- deciding -----------------------------------------------------------------------------------


def test_both_clusters_approving_approves_the_pair_with_one_event_holding_both_decisions():
    first = domain.decide(_pending(), Ballot("c-pl", "anna", "approve"), now=200)
    assert first.saved is not None and first.saved.step == "noted" and first.saved.event is None
    assert first.pair["state"] == "pending" and first.pair["decisions"]["c-pl"]["decided_at"].startswith("1970-")
    second = domain.decide(first.pair, Ballot("c-rs", "marko", "approve"), now=300)
    assert second.saved is not None and second.saved.step == "decided"
    assert second.pair["state"] == "approved" and second.pair["decided_ms"] == 300
    assert second.saved.event is not None and second.saved.event.event_type == events.MATCH_APPROVED
    assert {d["coordinator"] for d in second.saved.event.payload["decisions"]} == {"anna", "marko"}


def test_one_rejection_rejects_and_only_a_not_relevant_one_teaches():
    taught = domain.decide(_pending(), Ballot("c-rs", "marko", "reject", "not_relevant", "Druga tržišta"), now=200)
    assert taught.pair["state"] == "rejected" and taught.saved is not None
    assert taught.saved.event is not None and taught.saved.event.event_type == events.MATCH_REJECTED
    assert taught.saved.dislikes == (("org_b", "org_a"),)
    partners = domain.decide(_pending(), Ballot("c-rs", "marko", "reject", "already_partners"), now=200)
    assert partners.saved is not None and partners.saved.dislikes == ()


def test_a_decision_given_again_is_answered_with_the_pair_and_nothing_to_save():
    approved = domain.decide(_pending(), Ballot("c-pl", "anna", "approve"), now=200).pair
    again = domain.decide(approved, Ballot("c-pl", "ana", "approve"), now=300)
    assert again.repeated and again.pair is approved
    rejected = domain.decide(approved, Ballot("c-rs", "marko", "reject", "no_capacity"), now=300).pair
    late = domain.decide(rejected, Ballot("c-rs", "marko", "reject", "no_capacity"), now=400)
    assert late.repeated and late.pair["state"] == "rejected"


def test_a_different_decision_is_refused_and_so_is_a_pair_gone_or_not_the_clusters():
    approved = domain.decide(_pending(), Ballot("c-pl", "anna", "approve"), now=200).pair
    with pytest.raises(DecisionRefused) as otherwise:
        domain.decide(approved, Ballot("c-pl", "anna", "reject", "not_relevant"), now=300)
    assert otherwise.value.reason == "already_decided" and otherwise.value.pair is approved
    rejected = domain.decide(approved, Ballot("c-rs", "marko", "reject", "not_relevant"), now=300).pair
    with pytest.raises(DecisionRefused) as decided:
        domain.decide(rejected, Ballot("c-rs", "marko", "reject", "already_partners"), now=400)
    assert decided.value.reason == "not_pending"
    for pair, cluster in ((None, "c-pl"), (_pending(), "c-al")):
        with pytest.raises(DecisionRefused) as missing:
            domain.decide(pair, Ballot(cluster, "besa", "approve"), now=400)
        assert missing.value.reason == "not_found" and missing.value.pair is None


def test_a_withdrawn_pair_holds_no_decision_to_answer_with():
    noted = domain.decide(_pending(), Ballot("c-pl", "anna", "approve"), now=200).pair
    withdrawn = domain.withdraw(noted, domain.ORGANISATION_DELETED, now=300)
    assert withdrawn is not None
    with pytest.raises(DecisionRefused) as refused:
        domain.decide(withdrawn.record, Ballot("c-pl", "anna", "approve"), now=400)
    assert refused.value.reason == "not_pending" and refused.value.pair == withdrawn.record


def test_a_pair_a_cluster_approved_is_neither_displaced_nor_let_go_until_the_other_decides():
    """QA: a coordinator approved a pair and it vanished (displaced by a better match, or let go
    when an organisation edited its goals) while waiting for the other cluster."""
    noted = domain.decide(_pending(org_a="a", org_b="b"), Ballot("c-pl", "anna", "approve"), now=200).pair
    assert domain.approved(noted)
    assert domain.withdraw(noted, domain.DISPLACED, now=300) is None
    assert domain.withdraw(noted, domain.NO_LONGER_MATCHING, now=300) is None
    [kept] = domain.pair_steps({"a~b": noted}, [], [], 300, [("a~b", "a"), ("a~b", "b")])
    assert kept.step == "noted" and kept.event is None and kept.record["state"] == domain.PENDING
    assert kept.record["wanted_by"] == [] and kept.record["decisions"] == noted["decisions"]
    assert domain.pair_steps({"a~b": kept.record}, [], [], 400, [("a~b", "a")]) == [], "nothing more to say"
    gone = domain.withdraw(noted, domain.ORGANISATION_DELETED, now=300)
    assert gone is not None and gone.step == "withdrawn", "a deleted organisation still takes it out"
    taken_back = domain.withdraw_approval(kept.record, "c-pl", now=500)
    assert taken_back.step == "withdrawn", "its approval taken back, a pair no list holds goes at once"
    assert taken_back.event is not None and taken_back.event.payload["reason"] == domain.NO_LONGER_MATCHING
    still_held = domain.withdraw_approval(noted, "c-pl", now=500)
    assert still_held.step == "noted" and still_held.record["state"] == domain.PENDING, "a list still holds it"


def test_an_approved_pair_keeps_its_place_under_the_limit():
    """The limit's weakest pair gives way, but not one a cluster approved: the next weakest does,
    and with none other the new pair waits."""
    pending = {"a": {"a~b": 0.2, "a~c": 0.3}}
    plan = _plan({"a": [("b", 0.2), ("c", 0.3), ("d", 0.9)]}, pending=pending, max_pending=2)
    assert plan.withdrawals == [("a~b", domain.DISPLACED)]
    candidates = {"a": [Candidate("b", 0.2), Candidate("c", 0.3), Candidate("d", 0.9)]}
    wanted = domain.wanted_pairs(candidates, CLUSTERS)
    listed = {"a": {"b", "c", "d"}}
    snapshot = PlanSnapshot(pending, frozenset(), approved=frozenset({"a~b"}))
    plan = domain.plan_lists(wanted, listed, snapshot, {}, {"a"}, set(), 2)
    assert plan.withdrawals == [("a~c", domain.DISPLACED)]
    snapshot = PlanSnapshot(pending, frozenset(), approved=frozenset({"a~b", "a~c"}))
    plan = domain.plan_lists(domain.wanted_pairs(candidates, CLUSTERS), listed, snapshot, {}, {"a"}, set(), 2)
    assert plan.withdrawals == [] and "a~d" not in {w.pair_id for w in plan.upserts}


def test_an_approval_is_taken_back_only_while_the_other_cluster_has_not_decided():
    noted = domain.decide(_pending(), Ballot("c-pl", "anna", "approve"), now=200).pair
    back = domain.withdraw_approval(noted, "c-pl", now=300)
    assert back.step == "noted" and back.record["decisions"] == {} and back.record["updated_ms"] == 300
    with pytest.raises(DecisionRefused) as nothing:
        domain.withdraw_approval(back.record, "c-pl", now=400)
    assert nothing.value.reason == "nothing_to_withdraw"
    approved = domain.decide(noted, Ballot("c-rs", "marko", "approve"), now=400).pair
    with pytest.raises(DecisionRefused) as final:
        domain.withdraw_approval(approved, "c-pl", now=500)
    assert final.value.reason == "not_pending"


# ---- planning the lists -------------------------------------------------------------------------

CLUSTERS = {"a": "c-1", "b": "c-2", "c": "c-2", "d": "c-3", "e": "c-3"}


def _plan(lists, pending=None, decided=(), sides=None, affected=None, gone=frozenset(), max_pending=8, margin=0.0):
    """`sides`: for pending pairs the planned lists let go, which sides' lists held them when last
    planned, as stored (default: only the planned side's)."""
    candidates = {who: [Candidate(p, s) for p, s in found] for who, found in lists.items()}
    wanted = domain.wanted_pairs(candidates, CLUSTERS)
    snapshot = PlanSnapshot(pending or {}, frozenset(decided))
    listed = {who: {c.id for c in found} for who, found in candidates.items()}
    affected = set(lists) if affected is None else affected
    let_go = domain.unlisted_pending(affected, set(gone), wanted, snapshot)
    stored = {pair_id: frozenset(pair_id.split("~")) & set(lists) for pair_id in let_go} | (sides or {})
    return domain.plan_lists(wanted, listed, snapshot, stored, affected, set(gone), max_pending, margin)


def test_a_pair_in_two_lists_is_stored_once_with_org_a_first_and_its_best_score():
    reason = {**REASON, "direction": "a_offers_b_seeks"}
    lists = {"b": [Candidate("a", 0.4, (reason,))], "a": [Candidate("b", 0.3)]}
    [w] = domain.wanted_pairs(lists, CLUSTERS).values()
    assert (w.pair_id, w.org_a, w.cluster_a, w.score) == ("a~b", "a", "c-1", 0.4)
    assert w.reasons[0]["direction"] == "b_offers_a_seeks"  # b's reasons, read from a's side


def test_decided_pairs_are_not_suggested_again():
    plan = _plan({"a": [("b", 0.5), ("c", 0.4)]}, decided={"a~b"})
    assert [w.pair_id for w in plan.upserts] == ["a~c"]


def test_no_organisation_gets_more_pending_pairs_than_the_limit_and_the_weakest_gives_way():
    pending = {"a": {"a~d": 0.2, "a~e": 0.6}}
    still_wanted = {"a~d": frozenset({"d"}), "a~e": frozenset({"a", "e"})}  # by d's and e's lists
    plan = _plan({"a": [("b", 0.5), ("c", 0.4)]}, pending=pending, sides=still_wanted, max_pending=2)
    assert [w.pair_id for w in plan.upserts] == ["a~b"]
    assert plan.withdrawals == [("a~d", domain.DISPLACED)]
    assert plan.unlisted == [("a~e", "a")], "a's list let a~e go; e's still holds it"


def test_a_pending_pair_is_not_withdrawn_for_a_marginally_better_one_and_a_clearly_better_one_displaces_it():
    pending = {"a": {"a~d": 0.40, "a~e": 0.6}, "b": {"b~c": 0.7}}  # b has a suggestion, and room for one more
    still_wanted = {"a~d": frozenset({"d"}), "a~e": frozenset({"a", "e"})}  # by d's and e's lists
    barely = _plan({"a": [("b", 0.44)]}, pending=pending, sides=still_wanted, max_pending=2, margin=0.05)
    assert barely.upserts == [] and barely.withdrawals == [], "a's coordinator keeps seeing a~d"
    clearly = _plan({"a": [("b", 0.46)]}, pending=pending, sides=still_wanted, max_pending=2, margin=0.05)
    assert [w.pair_id for w in clearly.upserts] == ["a~b"]
    assert clearly.withdrawals == [("a~d", domain.DISPLACED)]


def test_an_organisation_with_no_pending_pair_gets_one_that_is_only_marginally_better_than_the_one_it_displaces():
    # b has nothing pending: a~b would be its only suggestion, so the margin does not hold it back
    pending = {"a": {"a~d": 0.40, "a~e": 0.6}, "b": {}}
    still_wanted = {"a~d": frozenset({"d"}), "a~e": frozenset({"a", "e"})}
    plan = _plan({"b": [("a", 0.44)]}, pending=pending, sides=still_wanted, max_pending=2, margin=0.05)
    assert [w.pair_id for w in plan.upserts] == ["a~b"]
    assert plan.withdrawals == [("a~d", domain.DISPLACED)]
    tie = _plan({"b": [("a", 0.40)]}, pending=pending, sides=still_wanted, max_pending=2, margin=0.05)
    assert tie.upserts == [] and tie.withdrawals == [], "a pair that only ties the weakest displaces none"


def test_a_pair_with_no_place_on_its_other_side_displaces_nothing_on_the_first():
    # a is at its limit with a weaker pair; b is at its limit with pairs the new one does not beat
    pending = {"a": {"a~d": 0.2, "a~e": 0.6}, "b": {"b~c": 0.9, "b~d": 0.8}}
    still_wanted = {"a~d": frozenset({"d"}), "a~e": frozenset({"a", "e"})}
    plan = _plan({"a": [("b", 0.5)]}, pending=pending, sides=still_wanted, max_pending=2)
    assert plan.upserts == []
    assert plan.withdrawals == [], "a~d stays: a~b is not suggested, so nothing takes its place"


def test_a_pair_on_its_way_out_holds_no_place_under_the_limit():
    pending = {"a": {"a~d": 0.6, "a~e": 0.7}}
    plan = _plan({"a": [("b", 0.5), ("c", 0.4)]}, pending=pending, max_pending=2)  # a's alone wanted both
    assert [w.pair_id for w in plan.upserts] == ["a~b", "a~c"]
    assert plan.withdrawals == []
    assert plan.unlisted == [("a~d", "a"), ("a~e", "a")]


def test_a_pending_pair_neither_list_holds_is_withdrawn_and_one_the_partners_list_holds_stays():
    pending = {"a": {"a~d": 0.3, "a~e": 0.3}}
    wanted = domain.wanted_pairs({"a": [Candidate("b", 0.5)]}, CLUSTERS)
    assert domain.unlisted_pending({"a"}, set(), wanted, PlanSnapshot(pending, frozenset())) == {"a~d", "a~e"}
    plan = _plan({"a": [("b", 0.5)]}, pending=pending, sides={"a~d": frozenset({"a", "d"}), "a~e": frozenset({"a"})})
    assert plan.withdrawals == []
    assert plan.unlisted == [("a~d", "a"), ("a~e", "a")]

    stored = {
        "a~d": {**_pending(0.3, org_a="a", org_b="d"), "wanted_by": ["a", "d"]},
        "a~e": {**_pending(0.3, org_a="a", org_b="e"), "wanted_by": ["a"]},
    }
    steps = {s.record["pair_id"]: s for s in domain.pair_steps(stored, [], [], 500, plan.unlisted)}
    assert steps["a~e"].step == "withdrawn" and steps["a~e"].record["withdrawn_reason"] == domain.NO_LONGER_MATCHING
    assert steps["a~d"].step == "noted" and steps["a~d"].event is None, "d's list holds it: it stays, quietly"
    assert steps["a~d"].record["wanted_by"] == ["d"] and steps["a~d"].record["state"] == domain.PENDING


def test_a_pair_one_sides_list_holds_survives_the_other_side_planned_on_an_older_index():
    """Two matchers: a's list (planned by one) holds a~b; b's list, planned by the other with weights
    not yet learnt again, lets it go, before and after a's planning. The pair stays pending, and
    goes only when a's own planning lets it go too."""
    pairs: dict[str, dict] = {}

    def planned(who: str, holds: bool) -> None:
        other = "b" if who == "a" else "a"
        pending = {who: {p: r["score"] for p, r in pairs.items() if r["state"] == domain.PENDING}}
        stored = {p: domain.wanted_by(r) for p, r in pairs.items()}
        lists = {who: [Candidate(other, 0.4)] if holds else []}
        candidates = {w: [Candidate(c.id, c.score) for c in found] for w, found in lists.items()}
        wanted = domain.wanted_pairs(candidates, CLUSTERS)
        listed = {w: {c.id for c in found} for w, found in candidates.items()}
        plan = domain.plan_lists(wanted, listed, PlanSnapshot(pending, frozenset()), stored, {who}, set(), 8)
        for step in domain.pair_steps(pairs, plan.upserts, plan.withdrawals, 100, plan.unlisted):
            pairs[step.record["pair_id"]] = step.record

    planned("a", holds=True)
    planned("b", holds=False)  # the older index's plan of b's list, after a's
    assert pairs["a~b"]["state"] == domain.PENDING and pairs["a~b"]["wanted_by"] == ["a"]
    planned("b", holds=True)
    planned("a", holds=False)
    assert pairs["a~b"]["state"] == domain.PENDING and pairs["a~b"]["wanted_by"] == ["b"]
    planned("b", holds=False)
    assert pairs["a~b"]["state"] == domain.WITHDRAWN
    assert pairs["a~b"]["withdrawn_reason"] == domain.NO_LONGER_MATCHING


def test_a_pending_pair_recorded_before_its_sides_were_counts_as_held_by_both():
    legacy = {k: v for k, v in _pending(org_a="a", org_b="b").items() if k != "wanted_by"}
    assert domain.wanted_by(legacy) == {"a", "b"}
    [kept] = domain.pair_steps({"a~b": legacy}, [], [], 200, [("a~b", "a")])
    assert kept.step == "noted" and kept.record["wanted_by"] == ["b"]
    [gone] = domain.pair_steps({"a~b": kept.record}, [], [], 300, [("a~b", "b")])
    assert gone.step == "withdrawn"
    assert domain.wanted_by(gone.record) == frozenset(), "a withdrawn pair is held by no list"


def test_a_suggestion_again_replaces_the_sides_it_planned_and_keeps_the_others():
    pending = {**_pending(org_a="a", org_b="b"), "wanted_by": ["b"]}
    again = PairWrite("a~b", "a", "b", "c-pl", "c-rs", 0.5, [REASON], frozenset({"a"}), frozenset({"a"}))
    saved = domain.suggest(pending, again, now=200)
    assert saved is not None and saved.step == "noted" and saved.event is None, "same suggestion: no event"
    assert saved.record["wanted_by"] == ["a", "b"]
    rescored = PairWrite("a~b", "a", "b", "c-pl", "c-rs", 0.6, [REASON], frozenset({"b"}), frozenset({"a", "b"}))
    saved = domain.suggest(saved.record, rescored, now=300)
    assert saved is not None and saved.step == "suggested" and saved.record["wanted_by"] == ["b"]
    withdrawn = domain.withdraw(saved.record, domain.DISPLACED, now=400)
    assert withdrawn is not None
    back = domain.suggest(withdrawn.record, again, now=500)
    assert back is not None and back.record["wanted_by"] == ["a"], "suggested again: only the lists that hold it now"


def _planned_into(pairs: dict[str, dict], lists: dict[str, list[tuple[str, float, str]]], now: int) -> list:
    """The lists of `lists` (organisation -> [(partner, score, concept of its reason)]) planned
    against the stored `pairs`, as a matcher plans them, and the steps stored there."""
    planned = set(lists)
    pending = {
        who: {p: r["score"] for p, r in pairs.items() if r["state"] == domain.PENDING and who in p.split("~")}
        for who in planned
    }
    candidates = {
        who: [Candidate(partner, score, ({**REASON, "concept": concept},)) for partner, score, concept in found]
        for who, found in lists.items()
    }
    wanted = domain.wanted_pairs(candidates, CLUSTERS)
    snapshot = PlanSnapshot(pending, frozenset())
    stored = {p: domain.wanted_by(pairs[p]) for p in domain.unlisted_pending(planned, set(), wanted, snapshot)}
    listed = {who: {c.id for c in found} for who, found in candidates.items()}
    plan = domain.plan_lists(wanted, listed, snapshot, stored, planned, set(), 8)
    steps = domain.pair_steps(pairs, plan.upserts, plan.withdrawals, now, plan.unlisted)
    for step in steps:
        pairs[step.record["pair_id"]] = step.record
    return steps


def _concept(pair: dict) -> str:
    return pair["reasons"][0]["concept"]


def test_a_pairs_score_and_reasons_are_its_best_sides_whichever_side_was_planned_last():
    """Both lists hold a~b, a's scoring it higher: planning b's list alone keeps a's score and
    reasons; the pair takes b's score and b's list's reasons once a's list scores it lower or lets
    it go."""
    pairs: dict[str, dict] = {}
    _planned_into(pairs, {"a": [("b", 0.9, "ict.software")], "b": [("a", 0.6, "metal.machining")]}, 100)
    assert (pairs["a~b"]["score"], _concept(pairs["a~b"])) == (0.9, "ict.software")
    assert pairs["a~b"]["side_scores"] == {"a": 0.9, "b": 0.6}

    [step] = _planned_into(pairs, {"b": [("a", 0.65, "metal.machining")]}, 200)
    assert step.step == "noted" and step.event is None, "the pair's score and reasons stay a's: nothing to tell"
    assert (pairs["a~b"]["score"], _concept(pairs["a~b"])) == (0.9, "ict.software")
    assert pairs["a~b"]["side_scores"] == {"a": 0.9, "b": 0.65}

    [step] = _planned_into(pairs, {"a": [("b", 0.5, "ict.software")]}, 300)
    assert step.step == "suggested" and step.event is not None
    assert (pairs["a~b"]["score"], _concept(pairs["a~b"])) == (0.65, "metal.machining"), "b's score, b's reasons"
    assert step.event.payload["score"] == 0.65 and step.event.payload["reasons"][0]["concept"] == "metal.machining"

    _planned_into(pairs, {"a": [("b", 0.7, "ict.software")]}, 400)
    assert (pairs["a~b"]["score"], _concept(pairs["a~b"])) == (0.7, "ict.software")

    [step] = _planned_into(pairs, {"a": [("c", 0.8, "ict.software")], "c": []}, 500)[-1:]
    assert step.record["pair_id"] == "a~b" and step.step == "suggested", "a let it go: b's score is the pair's"
    assert (pairs["a~b"]["score"], _concept(pairs["a~b"])) == (0.65, "metal.machining")
    assert step.event is not None and step.event.payload["score"] == 0.65
    assert pairs["a~b"]["wanted_by"] == ["b"] and pairs["a~b"]["side_scores"] == {"b": 0.65}

    _planned_into(pairs, {"b": [("a", 0.5, "metal.machining")]}, 600)
    assert (pairs["a~b"]["score"], _concept(pairs["a~b"])) == (0.5, "metal.machining")


def test_two_sides_planned_in_either_order_leave_the_same_pair():
    """Two matchers' plans of a's and b's lists land in either order: the pair ends the same."""
    lists = {"a": [("b", 0.4, "ict.software")], "b": [("a", 0.7, "metal.machining")]}
    ends = []
    for order in (("a", "b"), ("b", "a")):
        pairs: dict[str, dict] = {}
        _planned_into(pairs, {"a": [("b", 0.9, "ict.software")], "b": [("a", 0.6, "metal.machining")]}, 100)
        for now, who in enumerate(order, start=200):
            _planned_into(pairs, {who: lists[who]}, now)
        ends.append({k: v for k, v in pairs["a~b"].items() if k != "updated_ms"})
    assert ends[0] == ends[1]
    assert (ends[0]["score"], ends[0]["reasons"][0]["concept"]) == (0.7, "metal.machining")


def test_a_pair_stored_with_no_side_scores_takes_the_scores_of_the_lists_planned():
    legacy = {k: v for k, v in _pending(0.9, org_a="a", org_b="b").items() if k not in ("wanted_by", "side_scores")}
    again = PairWrite("a~b", "a", "b", "c-pl", "c-rs", 0.4, [REASON], frozenset({"b"}), frozenset({"b"}), {"b": 0.4})
    saved = domain.suggest(legacy, again, now=200)
    assert saved is not None and saved.record["score"] == 0.4 and saved.record["side_scores"] == {"b": 0.4}
    assert saved.record["wanted_by"] == ["a", "b"], "a's side is kept, its score unknown"
    unplanned = domain.suggest(saved.record, _write(0.3, org_a="a", org_b="b"), now=300)
    assert unplanned is not None and unplanned.record["score"] == 0.3, "a write that planned no list: its score"


def test_a_deleted_organisations_pending_pairs_are_all_withdrawn():
    pending = {"d": {"a~d": 0.3, "d~b": 0.2}, "a": {"a~d": 0.3}}
    plan = _plan({"a": [("b", 0.5)]}, pending=pending, affected={"a"}, gone={"d"})
    assert plan.withdrawals == [("a~d", domain.ORGANISATION_DELETED), ("d~b", domain.ORGANISATION_DELETED)]
    assert [w.pair_id for w in plan.upserts] == ["a~b"]


def test_a_plan_needs_only_the_scores_and_the_pairs_it_writes_get_their_lists_reasons():
    theirs = {**REASON, "direction": "a_offers_b_seeks", "terms_a": ["b's"], "terms_b": ["a's"]}
    lists = {
        "b": [Candidate("a", 0.4, (theirs,)), Candidate("c", 0.2, (REASON,))],
        "a": [Candidate("b", 0.4, (REASON,)), Candidate("d", 0.3, (REASON,))],
    }
    wanted = domain.wanted_pairs(lists, CLUSTERS, with_reasons=False)
    assert all(w.reasons == [] for w in wanted.values())
    written = [wanted["a~b"], wanted["a~d"]]
    domain.add_reasons(written, lists)
    assert written == [domain.wanted_pairs(lists, CLUSTERS)[w.pair_id] for w in written]
    assert written[0].reasons == [REASON]  # a tie: the first list's (a's), as org_a reads it
    assert wanted["b~c"].reasons == []  # not written: none made


def test_the_engines_reasons_turned_round_for_org_b_read_as_the_shared_reason_seen_from_b():
    from partnermatch.reasons import Reason
    from services.matcher.engine.values import Reason as EngineReason

    engine_reasons = (
        EngineReason("agriculture", "sector", "a_offers_b_seeks", 0.123456, ("voće",), ("fruit", "apples")),
        EngineReason("it", "activity", "b_offers_a_seeks", 0.5, (), ("software",)),
        EngineReason(None, "term", "shared", 0.04999, ("mleko",), ("mleko",)),
        EngineReason("export", "cooperation", "shared", 1.0, (), ()),
    )
    for who, partner in (("org-b", "org-a"), ("org-a", "org-b")):  # org-b's list: its partner is org_a
        written = domain._reasons_for_pair(who, Candidate(partner, 0.9, engine_reasons))
        side = "a" if who < partner else "b"
        expected = [Reason.from_dict(r.to_dict()).seen_from(side).to_dict() for r in engine_reasons]
        assert written == expected
        assert [list(r) for r in written] == [list(r) for r in expected]  # the keys in the same order


def test_a_displaced_pair_found_approved_at_the_write_stays_and_its_organisations_get_no_new_pair():
    """The plan could not know (an approval recorded meanwhile, or before the store marked approved
    pairs): the write keeps the pair, and the pair meant to take its place waits for the next plan,
    so the organisation does not pass its limit."""
    approved_pair = domain.decide(_pending(0.2, org_a="a", org_b="b"), Ballot("c-pl", "anna", "approve"), 200).pair
    held = _pending(0.5, org_a="a", org_b="c")
    existing = {"a~b": approved_pair, "a~c": held}
    newcomer = PairWrite("a~d", "a", "d", "c-pl", "c-rs", 0.9, [REASON])
    elsewhere = PairWrite("e~f", "e", "f", "c-pl", "c-rs", 0.9, [REASON])
    again = PairWrite("a~c", "a", "c", "c-pl", "c-rs", 0.6, [REASON])
    steps = domain.pair_steps(existing, [newcomer, elsewhere, again], [("a~b", domain.DISPLACED)], 300)
    by_pair = {s.record["pair_id"]: s for s in steps}
    assert by_pair["a~b"].step == "noted" and by_pair["a~b"].record["state"] == domain.PENDING
    assert "a~d" not in by_pair, "no new pair for an organisation whose displaced pair stayed"
    assert by_pair["e~f"].step == "suggested" and by_pair["a~c"].record["score"] == 0.6


def test_an_approved_pair_whose_organisation_moved_cluster_is_not_kept_for_the_approval():
    """Review: an organisation moved to its partner's cluster (no list can hold the pair again) and
    the old cluster's approval kept the pair pending for good, with clusters it no longer has."""
    noted = domain.decide(_pending(org_a="a", org_b="b"), Ballot("c-pl", "anna", "approve"), now=200).pair
    let_go = [("a~b", "a"), ("a~b", "b")]
    [stays] = domain.pair_steps({"a~b": noted}, [], [], 300, let_go, clusters={"a": "c-pl"})
    assert stays.record["state"] == domain.PENDING, "still in its cluster: kept"
    [gone] = domain.pair_steps({"a~b": noted}, [], [], 300, let_go, clusters={"a": "c-rs"})
    assert gone.step == "withdrawn" and gone.record["withdrawn_reason"] == domain.NO_LONGER_MATCHING
    newcomer = PairWrite("a~d", "a", "d", "c-rs", "c-x", 0.9, [REASON])
    steps = domain.pair_steps({"a~b": noted}, [newcomer], [("a~b", domain.DISPLACED)], 300, clusters={"a": "c-rs"})
    assert {s.record["pair_id"]: s.step for s in steps} == {"a~b": "withdrawn", "a~d": "suggested"}
