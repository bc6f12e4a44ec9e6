"""The pair records a plan reads are parsed once per stored text (ParsedRecords) and shared: what is
handed out must always be what Redis holds, and the domain's rules, which read them, must never
change one in place."""

from __future__ import annotations

import copy

import orjson
import pytest

from partnermatch import events
from services.matcher import domain
from services.matcher.adapters import redis_state
from services.matcher.adapters.redis_state import PairWrite, ParsedRecords, ProfileChange, RedisMatcherState


def _record(**changes: object) -> dict:
    record = {
        "pair_id": "a~b",
        "org_a": "a",
        "org_b": "b",
        "cluster_a": "ca",
        "cluster_b": "cb",
        "score": 0.5,
        "reasons": [
            {"concept": "metal", "kind": "sector", "direction": "a_offers_b_seeks", "weight": 0.2},
            {"concept": "cnc", "kind": "term", "direction": "b_offers_a_seeks", "weight": 0.1},
        ],
        "state": domain.PENDING,
        "created_ms": 1,
        "updated_ms": 2,
        "decisions": {},
        domain.WANTED_BY: ["a", "b"],
    }
    return record | changes


def test_a_text_read_again_is_the_record_parsed_before_and_a_changed_text_is_parsed_anew():
    parsed = ParsedRecords()
    first = orjson.dumps(_record())
    assert parsed(first) == orjson.loads(first)
    assert parsed(bytes(bytearray(first))) is parsed(first), "the same text (another bytes object): kept"
    assert (parsed.parsed, parsed.reused) == (1, 2)
    rewritten = orjson.dumps(_record(score=0.7, state=domain.APPROVED))
    assert parsed(rewritten)["score"] == 0.7 and parsed(rewritten)["state"] == domain.APPROVED
    assert parsed(first)["score"] == 0.5


def test_it_keeps_at_most_its_capacity():
    parsed = ParsedRecords(capacity=3)
    texts = [orjson.dumps(_record(score=i / 10)) for i in range(10)]
    for text in texts:
        assert parsed(text)["score"] == orjson.loads(text)["score"]
        assert len(parsed._by_text) <= 3
    assert parsed.parsed == 10


@pytest.mark.parametrize(
    "step",
    [
        "same",
        "rescored",
        "other sides",
        "other cluster",
        "withdrawn",
        "unlisted by one",
        "unlisted by both",
        "approved by one",
        "rejected",
        "approval taken back",
    ],
)
def test_the_rules_never_change_a_record_they_are_given(step):
    """A shared record changed in place would be what the next plan reads, while Redis holds
    another: every rule that reads a stored pair must make a new record."""
    approved_by_a = _record(
        decisions={"ca": {"cluster_id": "ca", "coordinator": "x", "decision": "approve", "decided_at": "t"}}
    )
    old = approved_by_a if step == "approval taken back" else _record()
    before = copy.deepcopy(old)

    def write(**changes: object) -> PairWrite:
        fields = {"score": 0.5, "reasons": copy.deepcopy(old["reasons"]), "cluster_b": "cb"} | changes
        return PairWrite(
            "a~b", "a", "b", "ca", fields["cluster_b"], fields["score"], fields["reasons"], **fields.get("sides", {})
        )

    saved = {
        "same": lambda: domain.suggest(old, write(), 9),
        "rescored": lambda: domain.suggest(old, write(score=0.9), 9),
        "other sides": lambda: domain.suggest(
            old, write(sides={"wanted_by": frozenset({"a"}), "planned": frozenset({"a", "b"})}), 9
        ),
        "other cluster": lambda: domain.suggest(old, write(cluster_b="cz"), 9),
        "withdrawn": lambda: domain.withdraw(old, "gone", 9),
        "unlisted by one": lambda: domain.unlist(old, frozenset({"a"}), 9),
        "unlisted by both": lambda: domain.unlist(old, frozenset({"a", "b"}), 9),
        "approved by one": lambda: domain.record_decision(old, domain.Ballot("ca", "x", "approve"), 9),
        "rejected": lambda: domain.record_decision(old, domain.Ballot("cb", "y", "reject", "other"), 9),
        "approval taken back": lambda: domain.withdraw_approval(old, "ca", 9),
    }[step]()
    if step not in ("same",):
        assert saved is not None and saved.record is not old, "the step makes a record of its own"
    assert old == before


@pytest.mark.integration
def test_a_plan_after_a_coordinator_decided_reads_the_decision_not_the_record_it_parsed_before(redis_client):
    """The matcher's state has parsed the pending pair (its write's read); a coordinator's decision,
    written by another process, changes the stored text: the next plan must see the pair decided
    and leave it as it is."""
    matcher = RedisMatcherState(redis_client)
    review = RedisMatcherState(redis_client)
    redis_client.sadd(redis_state.PROFILES, "a", "b")
    pair = events.pair_id("a", "b")

    def suggesting(revision: int, score: float) -> ProfileChange:
        sides = {"wanted_by": frozenset({"a"}), "planned": frozenset({"a"})}
        write = PairWrite(pair, "a", "b", "ca", "cb", score, [], **sides)
        return ProfileChange("a", revision, {"org_id": "a", "revision": revision}, upserts=[write])

    assert matcher.apply(suggesting(1, 0.5))
    assert matcher.apply(suggesting(2, 0.6)), "the pair as written first is read (and parsed) here"
    assert matcher._parsed.parsed >= 1
    review.decide(pair, "ca", "coord-a", "reject", "other")
    decided = matcher.get_pair(pair)
    assert decided is not None and decided["state"] == domain.REJECTED

    assert matcher.apply(suggesting(3, 0.9))

    after = matcher.get_pair(pair)
    assert after == decided, "a decided pair is never suggested again"
    assert redis_client.zscore(redis_state.PENDING_BY_ORG + "a", pair) is None


@pytest.mark.integration
def test_the_coordinators_reads_share_the_records_and_change_none(redis_client):
    """The review's reads (a cluster's list with its filters, one pair, an organisation's
    partnerships, a decision's answer) hand out the records kept parsed: each must still be what its
    stored text says afterwards, and a second list must answer as the first."""
    from services.matcher.review import ReviewService

    state = RedisMatcherState(redis_client)
    orgs = {"a": "ca", "b": "cb", "c": "cb", "d": "cc"}
    for org, cluster in orgs.items():
        profile = {"org_id": org, "name": f"Org {org}", "cluster_id": cluster, "country": "PL", "sectors": ["ict"]}
        assert state.apply(ProfileChange(org, 1, profile))
    reasons = [{"concept": "metal", "kind": "sector", "direction": "a_offers_b_seeks", "weight": 0.2}]
    writes = [
        PairWrite(events.pair_id("a", o), "a", o, "ca", orgs[o], 0.9 - i / 10, list(reasons))
        for i, o in enumerate(["b", "c", "d"])
    ]
    assert state.apply(ProfileChange("a", 2, {"org_id": "a", "name": "Org a", "cluster_id": "ca"}, upserts=writes))
    review = ReviewService(state, render=lambda reason, lang: reason["concept"])

    first = review.list_for_cluster("ca", state="pending", sort="score", q="org", lang="en", offset=0, limit=10)
    assert [v["pair_id"] for v in first[0]] == ["a~b", "a~c", "a~d"]
    review.list_for_cluster(
        "ca", state="pending", sort="date", country="PL", sector="ict", lang="pl", offset=0, limit=2
    )
    assert review.read("cb", "a~b") is not None
    review.partnerships_of_org("a")
    again = review.list_for_cluster("ca", state="pending", sort="score", q="org", lang="en", offset=0, limit=10)
    assert again == first
    decided = review.decide("cb", "coord-b", "a~b", "approve")
    review.view("cb", decided)

    assert state._parsed.reused > 0 and state._parsed_profiles.reused > 0
    for kept in (state._parsed, state._parsed_profiles):
        for text, record in kept._by_text.items():
            assert record == orjson.loads(text)
    assert review.read("ca", "a~b")["decisions"][0]["decision"] == "approve", "the decision's text is read anew"
