"""A pair as one of its organisations sees it: the state, the partner, the first reason, and
nothing of what the coordinators decided or why."""

from __future__ import annotations

import json

import pytest

from services.matcher.review import order_partnerships, partnership_view, state_for_organisation

PL, RS = "pl-silesia-ict", "rs-vojvodina-ict"


def _decision(cluster: str, decision: str, reason_code: str | None = None, reason_text: str | None = None) -> dict:
    return {
        "cluster_id": cluster,
        "coordinator": f"coordinator-of-{cluster}",
        "decision": decision,
        "reason_code": reason_code,
        "reason_text": reason_text,
        "decided_at": "2026-01-02T03:04:05.000+00:00",
    }


def _pair(state: str = "pending", decisions: dict | None = None, **over) -> dict:
    pair = {
        "pair_id": "org_pl~org_rs",
        "org_a": "org_pl",
        "org_b": "org_rs",
        "cluster_a": PL,
        "cluster_b": RS,
        "score": 0.62,
        "state": state,
        "created_ms": 1_000,
        "updated_ms": 2_000,
        "decisions": decisions or {},
        "reasons": [
            {
                "concept": "ict.software",
                "kind": "activity",
                "direction": "a_offers_b_seeks",
                "weight": 0.4,
                "terms_a": ["oprogramowanie"],
                "terms_b": ["softver"],
            },
            {
                "concept": "agrifood",
                "kind": "sector",
                "direction": "shared",
                "weight": 0.2,
                "terms_a": ["żywność"],
                "terms_b": ["hrana"],
            },
        ],
    }
    if state in ("approved", "rejected"):
        pair["decided_ms"] = 5_000
    pair.update(over)
    return pair


PROFILES = {
    "org_pl": {"org_id": "org_pl", "name": "Softwarownia", "cluster_id": PL, "country": "PL"},
    "org_rs": {"org_id": "org_rs", "name": "Voćar", "cluster_id": RS, "country": "RS"},
}


def _words(reason: dict, lang: str) -> str:
    return f"{lang}: {'/'.join(reason['terms_a'])} -> {'/'.join(reason['terms_b'])} ({reason['direction']})"


def _need(reason: dict, lang: str, seeker: str, provider: str) -> str:
    return f"{lang}: {seeker} seeks {reason['concept']}, {provider} offers it"


def test_a_pending_pair_is_waiting_for_coordinators():
    assert state_for_organisation(_pair()) == "waiting"


def test_a_pair_one_cluster_approved_is_still_waiting():
    assert state_for_organisation(_pair(decisions={PL: _decision(PL, "approve")})) == "waiting"


def test_a_pair_both_clusters_approved_is_approved():
    both = {PL: _decision(PL, "approve"), RS: _decision(RS, "approve")}
    assert state_for_organisation(_pair("approved", both)) == "approved"


def test_a_pair_either_cluster_rejected_is_rejected():
    decisions = {PL: _decision(PL, "approve"), RS: _decision(RS, "reject", "no_capacity", "too busy this year")}
    assert state_for_organisation(_pair("rejected", decisions)) == "rejected"


def test_an_approved_record_without_both_approvals_is_not_shown():
    assert state_for_organisation(_pair("approved", {PL: _decision(PL, "approve")})) is None


@pytest.mark.parametrize("state", ["withdrawn", "archived", None])
def test_a_withdrawn_or_unknown_pair_is_not_shown(state):
    assert state_for_organisation(_pair(state)) is None


def test_each_organisation_sees_its_partner_and_its_own_side_of_the_first_reason():
    pl = partnership_view(_pair(), PROFILES, "org_pl", "pl", _words)
    assert pl["partner"] == {"org_id": "org_rs", "name": "Voćar", "cluster_id": RS, "country": "RS"}
    assert pl["reason"] == "pl: oprogramowanie -> softver (a_offers_b_seeks)"
    rs = partnership_view(_pair(), PROFILES, "org_rs", "sr-Cyrl", _words)
    assert rs["partner"] == {"org_id": "org_pl", "name": "Softwarownia", "cluster_id": PL, "country": "PL"}
    assert rs["reason"] == "sr-Cyrl: softver -> oprogramowanie (b_offers_a_seeks)"


def test_a_need_met_reads_as_a_sentence_naming_who_seeks_and_who_offers():
    view = partnership_view(_pair(), PROFILES, "org_rs", "en", _words, _need)
    assert view["reason"] == "en: Voćar seeks ict.software, Softwarownia offers it"


def test_a_waiting_pair_has_no_decision_time_and_a_decided_one_has_it():
    assert partnership_view(_pair(), PROFILES, "org_pl", "en", _words)["decided_ms"] is None
    both = {PL: _decision(PL, "approve"), RS: _decision(RS, "approve")}
    approved = partnership_view(_pair("approved", both), PROFILES, "org_pl", "en", _words)
    assert (approved["state"], approved["suggested_ms"], approved["decided_ms"]) == ("approved", 1_000, 5_000)


def test_nothing_of_the_coordinators_decisions_reaches_the_organisation():
    decisions = {
        PL: _decision(PL, "approve", reason_text="internal: good fit"),
        RS: _decision(RS, "reject", "no_capacity", "internal: their director is difficult"),
    }
    view = partnership_view(_pair("rejected", decisions), PROFILES, "org_pl", "en", _words)
    assert view["state"] == "rejected"
    text = json.dumps(view, ensure_ascii=False)
    for secret in ("internal", "no_capacity", "coordinator-of", "decisions", "reason_code", "reason_text"):
        assert secret not in text
    assert set(view) == {"pair_id", "state", "score", "suggested_ms", "decided_ms", "partner", "reason"}


def test_a_deleted_partner_is_named_by_nobody_and_its_id_stays():
    view = partnership_view(
        _pair("approved", {PL: _decision(PL, "approve"), RS: _decision(RS, "approve")}),
        {"org_pl": PROFILES["org_pl"]},
        "org_pl",
        "en",
        _words,
    )
    assert view["partner"] == {"org_id": "org_rs", "name": None, "cluster_id": RS, "country": None}
    assert view["reason"]


def test_a_deleted_partner_is_no_id_in_the_reason_and_its_erased_words_are_not_quoted():
    """The remaining organisation reads "deleted organisation" (its language), never the partner's
    id; the words the partner's erased texts said are left out, its own stay."""
    both = {PL: _decision(PL, "approve"), RS: _decision(RS, "approve")}
    alone = {"org_pl": PROFILES["org_pl"]}
    need = partnership_view(_pair("approved", both), alone, "org_pl", "pl", _words, _need)
    assert need["reason"] == "pl: usunięta organizacja seeks ict.software, Softwarownia offers it"
    words = partnership_view(_pair("approved", both), alone, "org_pl", "en", _words)
    assert words["reason"] == "en: oprogramowanie ->  (a_offers_b_seeks)"  # "softver" was the partner's
    seen_by_rs = partnership_view(_pair("approved", both), {"org_rs": PROFILES["org_rs"]}, "org_rs", "en", _words)
    assert seen_by_rs["reason"] == "en: softver ->  (b_offers_a_seeks)"


def test_an_organisation_outside_the_pair_sees_nothing():
    assert partnership_view(_pair(), PROFILES, "org_al", "en", _words) is None


def test_a_pair_without_reasons_has_no_reason():
    assert partnership_view(_pair(reasons=[]), PROFILES, "org_pl", "en", _words)["reason"] is None


def test_a_reason_that_cannot_be_rendered_still_shows_its_words():
    def broken(reason: dict, lang: str) -> str:
        raise KeyError("label")

    assert partnership_view(_pair(), PROFILES, "org_pl", "en", broken)["reason"] == "oprogramowanie ↔ softver"


def test_approved_ones_come_first_latest_first_then_waiting_ones_best_first_then_rejected_ones():
    views = [
        {"pair_id": "a", "state": "rejected", "score": 0.9, "suggested_ms": 1, "decided_ms": 10},
        {"pair_id": "b", "state": "waiting", "score": 0.3, "suggested_ms": 2, "decided_ms": None},
        {"pair_id": "c", "state": "approved", "score": 0.1, "suggested_ms": 3, "decided_ms": 20},
        {"pair_id": "d", "state": "waiting", "score": 0.8, "suggested_ms": 4, "decided_ms": None},
        {"pair_id": "e", "state": "approved", "score": 0.5, "suggested_ms": 5, "decided_ms": 30},
        {"pair_id": "f", "state": "rejected", "score": 0.2, "suggested_ms": 6, "decided_ms": 40},
    ]
    assert [v["pair_id"] for v in order_partnerships(views)] == ["e", "c", "d", "b", "f", "a"]
