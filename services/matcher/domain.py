"""The matcher's rules, pure (no I/O): a pair's lifecycle (suggested, scored again, withdrawn, decided
by the coordinators of its two clusters) with the events each step causes, and the plan of a change
of the lists (which pairs to suggest, which to withdraw) from the engine's lists and a snapshot of
the pending pairs. The repository (adapters/redis_state.py) reads the snapshots and saves the steps.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from partnermatch import events
from partnermatch.reasons import A_OFFERS, B_OFFERS, Reason
from services.matcher.feedback import dislikes_in

PairRecord = dict[str, Any]  # a pair as stored and shown: ids, clusters, score, reasons, state, decisions

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
DECIDED_STATES = (APPROVED, REJECTED)

# Why a pending pair is withdrawn.
ORGANISATION_DELETED = "organisation_deleted"
NO_LONGER_MATCHING = "no_longer_matching"
DISPLACED = "displaced_by_better_match"

# The field of a pending pair's record naming the organisations whose lists held it when each was
# last planned: a pair stays pending while one side's list holds it. Each side's list is planned by
# the matcher of its partition, so each side's entry is written by the list's own planning, and a
# plan of one list made on another matcher's older index cannot take out a pair the other's list
# holds (issue 17: N matchers end with one matcher's suggestions).
WANTED_BY = "wanted_by"
# For a pending pair, the score each side's list gave it when last planned (the sides of WANTED_BY
# whose score is known): the pair's score is the best of them, so planning one side's list does not
# replace the other's better score with its own. Its reasons are those of that best side's list
# (REASONS_OF), and the other side's are kept beside them (OTHER_REASONS), for when it becomes the best.
SIDE_SCORES = "side_scores"
REASONS_OF = "reasons_of"
OTHER_REASONS = "other_reasons"
_SIDE_FIELDS = (SIDE_SCORES, REASONS_OF, OTHER_REASONS)


class IndexBehind(Exception):
    """A write whose plan was made from an index that lacked profile events some matcher had
    applied by the time of the write (an organisation's revision, by id; None: too many to say,
    every applied revision has to be held). Nothing was written; the plan is made again once the
    index holds them."""

    def __init__(self, lacking: dict[str, int] | None) -> None:
        super().__init__(f"the index lacks applied profile events: {lacking if lacking is not None else 'many'}")
        self.lacking = lacking


class IndexCheck(Protocol):
    """The index a plan was made from, as the state's write checks it (issue 17: N matchers). The
    state keeps a log of the profile events applied, by position; `log_position` is the position up
    to which the index is known to hold every one, moved on by the write when it finds the index
    holds the ones after it. `lacking` says which of the applied revisions it is given the index did
    not hold when the plan was made."""

    log_position: int

    def lacking(self, applied: Mapping[str, int]) -> dict[str, int]: ...


class DecisionRefused(Exception):
    """The pair is not pending any more, or this cluster has already decided."""

    def __init__(self, reason: str, pair: PairRecord | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pair = pair


@dataclass
class PairWrite:
    """A pair to create or refresh (pending), with its score and reasons from org_a's side."""

    pair_id: str
    org_a: str
    org_b: str
    cluster_a: str
    cluster_b: str
    score: float
    reasons: list[dict[str, Any]]
    # Which of the pair's two organisations' lists the write's plan planned (`planned`), and of
    # those, which hold the pair (`wanted_by`). The record keeps, for a pending pair, the sides whose
    # lists held it when each was last planned (WANTED_BY): a write replaces the sides it planned
    # and keeps the other's. A write that planned no list (empty `planned`) counts as wanted by both.
    wanted_by: frozenset[str] = frozenset()
    planned: frozenset[str] = frozenset()
    # The score each list of the write's plan that holds the pair gave it (`score` is the best), and
    # that list's reasons where it is not the best (`reasons` are the best's).
    side_scores: dict[str, float] = field(default_factory=dict)
    side_reasons: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class ProfileChange:
    """Everything one profile event changes, applied atomically."""

    org_id: str
    revision: int
    profile: dict[str, Any] | None  # None: deleted
    upserts: list[PairWrite] = field(default_factory=list)
    withdrawals: list[tuple[str, str]] = field(default_factory=list)  # (pair id, reason)
    unlisted: list[tuple[str, str]] = field(default_factory=list)  # see ListsPlan
    # Write only the pairs between organisations with a profile here; the others wait (awaiting).
    # Set by matchers sharing the work, whose index may be ahead of what is applied (table.py).
    known_partners_only: bool = False


@dataclass
class ProfilesChange:
    """Everything a run of profile events changes, applied atomically: each organisation's latest
    profile (None: deleted) at its revision, and the pairs of the lists they changed, planned
    once. An organisation whose revision (or a later one) was applied before is left as it is."""

    profiles: dict[str, tuple[int, dict[str, Any] | None]]  # org id -> (revision, profile or None)
    upserts: list[PairWrite] = field(default_factory=list)
    withdrawals: list[tuple[str, str]] = field(default_factory=list)  # (pair id, reason)
    unlisted: list[tuple[str, str]] = field(default_factory=list)  # see ListsPlan
    known_partners_only: bool = False  # as ProfileChange's
    # For an organisation among `profiles`, lists that waited for it (the state's AWAITING) and that
    # this change planned: they wait no longer once it is applied, in the same transaction.
    forget_waiting: dict[str, set[str]] = field(default_factory=dict)
    # The index the lists were planned from: the write refuses it (IndexBehind) if it lacked profile
    # events applied meanwhile. None: not checked (one matcher alone).
    checked: IndexCheck | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, change: ProfileChange) -> ProfilesChange:
        return cls(
            {change.org_id: (change.revision, change.profile)},
            change.upserts,
            change.withdrawals,
            change.unlisted,
            change.known_partners_only,
        )


@dataclass(frozen=True)
class PairEvent:
    """An event a step of a pair causes, keyed by the pair; the repository puts it in the outbox."""

    event_type: str
    pair_id: str
    payload: dict[str, Any]


# What a step did to a pair, which tells the repository which of its lists to change:
# suggested (pending, listed by score), withdrawn (listed no more; no record of it is kept: the
# repository deletes it and its event says why), decided (into the history),
# noted (a cluster's decision recorded or taken back, the pair still pending).
Step = Literal["suggested", "withdrawn", "decided", "noted"]


@dataclass(frozen=True)
class PairSaved:
    """A pair as one step leaves it, with the event it causes."""

    step: Step
    record: PairRecord
    event: PairEvent | None = None
    left_clusters: tuple[str, ...] = ()  # clusters that listed the pair and no longer do
    dislikes: tuple[tuple[str, str], ...] = ()  # (organisation, partner it rejected as not relevant)


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}+00:00"


# ---- suggesting and withdrawing ---------------------------------------------------------------

PAIR_FIELDS = ("pair_id", "org_a", "org_b", "cluster_a", "cluster_b")


def wanted_by(pair: PairRecord) -> frozenset[str]:
    """The sides whose lists held a pending pair when each was last planned: as recorded, or both
    for a pair recorded before the sides were (planning both lists again settles it); none for a
    pair not pending."""
    if pair["state"] != PENDING:
        return frozenset()
    if WANTED_BY not in pair:
        return frozenset((pair["org_a"], pair["org_b"]))
    return frozenset(pair[WANTED_BY])


def _sides_after(old: PairRecord | None, write: PairWrite) -> frozenset[str]:
    if not write.planned:
        return frozenset((write.org_a, write.org_b))
    kept = wanted_by(old) - write.planned if old is not None else frozenset()
    return kept | write.wanted_by


def suggest(old: PairRecord | None, write: PairWrite, now: int) -> PairSaved | None:
    """The pair suggested, or suggested again with a new score or reasons; None when nothing changes
    (the same suggestion pending, or a decided pair: never suggested again). A pending pair keeps
    the decisions already given by the clusters it still has: any profile event can shift a pair's
    score, and a coordinator's acknowledged approval must not silently vanish. Its sides whose lists
    want it are the write's for the lists the write planned, and as they were for the other; its
    score and reasons are those of the side whose list scores it best (see _scored)."""
    if old is not None and old["state"] not in (PENDING, WITHDRAWN):
        return None
    still_pending = old is not None and old["state"] == PENDING
    sides = sorted(_sides_after(old, write))
    score, reasons, kept = _scored(old if still_pending else None, write, sides)
    if still_pending and old is not None and _same_suggestion(old, write, score, reasons):
        if sorted(wanted_by(old)) == sides and all(old.get(k) == kept.get(k) for k in _SIDE_FIELDS):
            return None
        return PairSaved("noted", {**_without_sides(old), WANTED_BY: sides, **kept})
    record: PairRecord = {
        "pair_id": write.pair_id,
        "org_a": write.org_a,
        "org_b": write.org_b,
        "cluster_a": write.cluster_a,
        "cluster_b": write.cluster_b,
        "score": score,
        "reasons": reasons,
        "state": PENDING,
        "created_ms": old["created_ms"] if still_pending and old else now,
        "updated_ms": now,
        "decisions": {
            cluster: decision
            for cluster, decision in (old or {}).get("decisions", {}).items()
            if cluster in (write.cluster_a, write.cluster_b)
        }
        if still_pending
        else {},
        WANTED_BY: sides,
        **kept,
    }
    left = sorted({old["cluster_a"], old["cluster_b"]} - {write.cluster_a, write.cluster_b}) if old else []
    payload = {k: record[k] for k in (*PAIR_FIELDS, "score", "reasons")}
    event = PairEvent(events.MATCH_SUGGESTED, write.pair_id, payload)
    return PairSaved("suggested", record, event, left_clusters=tuple(left))


Scored = tuple[float, list[dict[str, Any]]]  # a side's score for a pair and its list's reasons


def _scored(
    pending: PairRecord | None, write: PairWrite, sides: Sequence[str]
) -> tuple[float, list[dict[str, Any]], dict[str, Any]]:
    """The score and reasons of a pair after `write` (the pair pending before as `pending`, None:
    new), with what the record keeps of its sides (_SIDE_FIELDS). The score is the best its wanting
    sides' lists gave it: the write's for the sides it planned, as stored for the others; the
    reasons are that side's list's (the first side in order on a tie, as wanted_pairs chooses). A
    write that planned no list takes the write's score and reasons, its sides' unknown."""
    if not write.planned:
        return round(float(write.score), 6), write.reasons, {}
    by_side: dict[str, Scored] = {}
    if pending is not None:
        by_side = {side: got for side, got in _stored_sides(pending).items() if side not in write.planned}
    for side, score in write.side_scores.items():
        by_side[side] = (round(float(score), 6), write.side_reasons.get(side, write.reasons))
    return _best_side({side: got for side, got in by_side.items() if side in sides}, write)


def _stored_sides(pair: PairRecord) -> dict[str, Scored]:
    """Each side's score and reasons as the record keeps them (sides with a known score)."""
    others = pair.get(OTHER_REASONS, {})
    best = pair.get(REASONS_OF)
    return {
        side: (score, pair["reasons"] if side == best or side not in others else others[side])
        for side, score in pair.get(SIDE_SCORES, {}).items()
    }


def _best_side(
    by_side: Mapping[str, Scored], write: PairWrite | None = None
) -> tuple[float, list[dict[str, Any]], dict[str, Any]]:
    """The best side's score and reasons, and the record's side fields; with no side known, the
    write's score and reasons."""
    if not by_side:
        assert write is not None
        return round(float(write.score), 6), write.reasons, {}
    best = min(sorted(by_side), key=lambda side: -by_side[side][0])
    score, reasons = by_side[best]
    kept = {
        SIDE_SCORES: {side: by_side[side][0] for side in sorted(by_side)},
        REASONS_OF: best,
        OTHER_REASONS: {side: got[1] for side, got in sorted(by_side.items()) if side != best},
    }
    return score, reasons, kept


def _without_sides(pair: PairRecord) -> PairRecord:
    return {k: v for k, v in pair.items() if k not in _SIDE_FIELDS}


def _same_suggestion(old: PairRecord, write: PairWrite, score: float, reasons: list[dict[str, Any]]) -> bool:
    return (
        abs(old["score"] - score) < 1e-6
        and old["reasons"] == reasons
        and (old["cluster_a"], old["cluster_b"]) == (write.cluster_a, write.cluster_b)
    )


def approved(pair: PairRecord) -> bool:
    """Whether a cluster has approved the pair (pending: it waits for the other's decision)."""
    return any(d.get("decision") == "approve" for d in pair.get("decisions", {}).values())


# A pending pair a cluster approved stays for these: a coordinator acted on it, and it waits for the
# other cluster's decision (or the approval taken back). A deleted organisation, or one that moved
# to another cluster (kept_for_approval), still takes it out.
KEPT_WHEN_APPROVED = (NO_LONGER_MATCHING, DISPLACED)
_NO_CLUSTERS: Mapping[str, str] = {}


def kept_for_approval(pair: PairRecord, clusters: Mapping[str, str] = _NO_CLUSTERS) -> bool:
    """Whether a pending pair stays for a cluster's approval (KEPT_WHEN_APPROVED): approved, and
    neither organisation now in another cluster than the pair names (`clusters`: the current
    cluster of the organisations a write applies the profiles of)."""
    return approved(pair) and all(
        clusters.get(pair[org], pair[cluster]) == pair[cluster]
        for org, cluster in (("org_a", "cluster_a"), ("org_b", "cluster_b"))
    )


def withdraw(
    old: PairRecord | None, reason: str, now: int, clusters: Mapping[str, str] = _NO_CLUSTERS
) -> PairSaved | None:
    """A pending pair withdrawn (why: `reason`); None for a pair that is not pending, or that stays
    for a cluster's approval where the reason is one of KEPT_WHEN_APPROVED (kept_for_approval)."""
    if old is None or old["state"] != PENDING:
        return None
    if reason in KEPT_WHEN_APPROVED and kept_for_approval(old, clusters):
        return None
    record = {**old, "state": WITHDRAWN, "updated_ms": now, "withdrawn_reason": reason, WANTED_BY: []}
    payload = {k: old[k] for k in PAIR_FIELDS}
    payload["reason"] = reason
    return PairSaved("withdrawn", record, PairEvent(events.MATCH_WITHDRAWN, old["pair_id"], payload))


def unlist(
    old: PairRecord | None, sides: frozenset[str], now: int, clusters: Mapping[str, str] = _NO_CLUSTERS
) -> PairSaved | None:
    """A pending pair the lists of `sides` no longer hold: withdrawn once no side's list holds it
    (unless a cluster approved it: KEPT_WHEN_APPROVED), else kept with the side that still does, at
    the score and with the reasons that side's list gave it where known (suggested again if they
    differ); None for a pair that is not pending."""
    if old is None or old["state"] != PENDING:
        return None
    before = wanted_by(old)
    left = before - sides
    if not left and kept_for_approval(old, clusters):  # kept for its approval, held by no list
        return None if not before and WANTED_BY in old else PairSaved("noted", {**_without_sides(old), WANTED_BY: []})
    if not left:
        return withdraw(old, NO_LONGER_MATCHING, now, clusters)
    if left == before and WANTED_BY in old:
        return None
    staying = {side: got for side, got in _stored_sides(old).items() if side in left}
    record = {**_without_sides(old), WANTED_BY: sorted(left)}
    if not staying:
        return PairSaved("noted", record)
    score, reasons, kept = _best_side(staying)
    record.update(kept)
    if abs(score - old["score"]) < 1e-6 and reasons == old["reasons"]:
        return PairSaved("noted", record)
    record.update(score=score, reasons=reasons, updated_ms=now)
    payload = {k: record[k] for k in (*PAIR_FIELDS, "score", "reasons")}
    return PairSaved("suggested", record, PairEvent(events.MATCH_SUGGESTED, old["pair_id"], payload))


def pair_steps(
    existing: Mapping[str, PairRecord],
    upserts: Iterable[PairWrite],
    withdrawals: Iterable[tuple[str, str]],
    now: int,
    unlisted: Iterable[tuple[str, str]] = (),
    clusters: Mapping[str, str] = _NO_CLUSTERS,
) -> list[PairSaved]:
    """What suggesting `upserts`, withdrawing `withdrawals` and taking the pairs of `unlisted` out
    of those sides' lists (see ListsPlan) does to the pairs as they are (`existing`, by id),
    withdrawals first; each step judged against the pair as it was read. `clusters`: the current
    cluster of the organisations whose profiles the same write applies (see kept_for_approval)."""
    withdrawals = list(withdrawals)
    # A pair displaced to make room that a cluster approved meanwhile (or before the plan could know:
    # see PlanSnapshot.approved) stays: the pairs that were to take places beside it wait for the next
    # plan, so no organisation passes its limit, and the pair is noted again (its store marks it).
    kept = [
        existing[pair_id]
        for pair_id, reason in withdrawals
        if reason == DISPLACED
        and pair_id in existing
        and existing[pair_id]["state"] == PENDING
        and kept_for_approval(existing[pair_id], clusters)
    ]
    crowded = {org for pair in kept for org in (pair["org_a"], pair["org_b"])}
    steps: list[PairSaved | None] = [PairSaved("noted", pair) for pair in kept]
    steps += [withdraw(existing.get(pair_id), reason, now, clusters) for pair_id, reason in withdrawals]
    steps += [
        suggest(existing.get(w.pair_id), w, now)
        for w in upserts
        if not ({w.org_a, w.org_b} & crowded) or _pending(existing.get(w.pair_id))
    ]
    steps += [
        unlist(existing.get(pair_id), sides, now, clusters) for pair_id, sides in unlisted_sides(unlisted).items()
    ]
    return [s for s in steps if s is not None]


def _pending(pair: PairRecord | None) -> bool:
    return pair is not None and pair["state"] == PENDING


def unlisted_sides(unlisted: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """For each pair of `unlisted`, the sides whose lists no longer hold it."""
    sides: dict[str, set[str]] = {}
    for pair_id, org in unlisted:
        sides.setdefault(pair_id, set()).add(org)
    return {pair_id: frozenset(orgs) for pair_id, orgs in sides.items()}


def between_known(upserts: Iterable[PairWrite], unknown: set[str]) -> tuple[list[PairWrite], dict[str, set[str]]]:
    """The pairs between organisations with a profile (none of them in `unknown`), and for each
    unknown one the organisations whose lists wanted it: they are planned again once its profile
    is there, so a pair never names a partner the coordinators' pages cannot show."""
    known: list[PairWrite] = []
    awaiting: dict[str, set[str]] = {}
    for w in upserts:
        orgs = {w.org_a, w.org_b}
        for org in orgs & unknown:
            awaiting.setdefault(org, set()).update(orgs - {org})
        if not orgs & unknown:
            known.append(w)
    return known, awaiting


# ---- deciding ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ballot:
    """One cluster's decision on a pair, as its coordinator gave it."""

    cluster_id: str
    coordinator: str
    decision: str  # "approve" or "reject"
    reason_code: str | None = None
    reason_text: str | None = None


@dataclass(frozen=True)
class Decided:
    """The answer to a ballot: the pair as it now is, and what to save (None: the cluster had given
    this very decision before, a retry after a lost answer or a double click, so nothing changes)."""

    pair: PairRecord
    saved: PairSaved | None

    @property
    def repeated(self) -> bool:
        return self.saved is None


def refusal(pair: PairRecord | None, cluster_id: str) -> DecisionRefused | None:
    """Why the cluster cannot decide the pair now, or None: not_found (missing, or not the
    cluster's), not_pending (with the pair), already_decided (with the pair)."""
    if pair is None or cluster_id not in (pair["cluster_a"], pair["cluster_b"]):
        return DecisionRefused("not_found")
    if pair["state"] != PENDING:
        return DecisionRefused("not_pending", pair)
    if cluster_id in pair["decisions"]:
        return DecisionRefused("already_decided", pair)
    return None


def holds(pair: PairRecord | None, ballot: Ballot) -> bool:
    """Whether the pair already holds this ballot's decision, with the same rejection reason."""
    if pair is None or pair["state"] == WITHDRAWN:
        return False
    mine = pair.get("decisions", {}).get(ballot.cluster_id)
    if mine is None or mine.get("decision") != ballot.decision:
        return False
    return ballot.decision != "reject" or mine.get("reason_code") == ballot.reason_code


def decide(pair: PairRecord | None, ballot: Ballot, now: int) -> Decided:
    """The ballot answered once: recorded, or found already given (repeated), or DecisionRefused."""
    refused = refusal(pair, ballot.cluster_id)
    if refused is not None:
        if refused.pair is not None and holds(refused.pair, ballot):
            return Decided(refused.pair, None)
        raise refused
    assert pair is not None  # refusal() said not_found otherwise
    saved = record_decision(pair, ballot, now)
    return Decided(saved.record, saved)


def record_decision(pair: PairRecord, ballot: Ballot, now: int) -> PairSaved:
    """The ballot added to a pair the cluster may decide (see `refusal`). Both clusters approving
    approves the pair, either rejecting rejects it: then it is decided, once, with its event."""
    decisions = dict(pair["decisions"])
    decisions[ballot.cluster_id] = {
        "cluster_id": ballot.cluster_id,
        "coordinator": ballot.coordinator,
        "decision": ballot.decision,
        "reason_code": ballot.reason_code,
        "reason_text": ballot.reason_text,
        "decided_at": iso(now),
    }
    record = {**pair, "decisions": decisions}
    final = None
    if ballot.decision == "reject":
        final = REJECTED
    elif all(decisions.get(c, {}).get("decision") == "approve" for c in (pair["cluster_a"], pair["cluster_b"])):
        final = APPROVED
    if final is None:
        record["updated_ms"] = now
        return PairSaved("noted", record)
    record["state"] = final
    record["decided_ms"] = now
    record["updated_ms"] = now
    dislikes = tuple(dislikes_in(record, decisions.values()))
    return PairSaved("decided", record, decision_event(record), dislikes=dislikes)


def decision_event(pair: PairRecord) -> PairEvent:
    """`match.approved` or `match.rejected` of a decided pair, with both clusters' decisions."""
    payload = {k: pair[k] for k in (*PAIR_FIELDS, "score", "reasons")}
    payload["decisions"] = list(pair["decisions"].values())
    event_type = events.MATCH_APPROVED if pair["state"] == APPROVED else events.MATCH_REJECTED
    return PairEvent(event_type, pair["pair_id"], payload)


def withdraw_approval(pair: PairRecord | None, cluster_id: str, now: int) -> PairSaved:
    """The cluster's approval taken back while the pair still waits for the other cluster (once the
    other side decides, the pair is final and nothing can be taken back); a pair no list holds any
    more, kept for that approval alone, is withdrawn with it."""
    refused = refusal(pair, cluster_id)
    if refused is not None and refused.reason != "already_decided":
        raise refused
    assert pair is not None
    mine = pair["decisions"].get(cluster_id)
    if mine is None or mine.get("decision") != "approve":
        raise DecisionRefused("nothing_to_withdraw", pair)
    decisions = {cluster: d for cluster, d in pair["decisions"].items() if cluster != cluster_id}
    record = {**pair, "decisions": decisions, "updated_ms": now}
    if not approved(record) and WANTED_BY in record and not record[WANTED_BY]:
        # kept only for the approval (KEPT_WHEN_APPROVED): no list holds it any more
        saved = withdraw(record, NO_LONGER_MATCHING, now)
        assert saved is not None
        return saved
    return PairSaved("noted", record)


# ---- planning the lists -----------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A partner in an organisation's list: its score and reasons, read from the list's owner ("a")."""

    id: str
    score: float
    reasons: tuple[Any, ...] = ()  # as the wire has them, or values with to_dict() (the engine's)


@dataclass(frozen=True)
class PlanSnapshot:
    """What a plan reads of the stored pairs: each organisation's pending pairs with their scores
    (for every organisation it asked about; none pending is an empty map), which pairs were
    decided, and for the pending pairs of the organisations whose lists it plans that it did not ask
    about (those it may let go: see `unlisted_pending`) the sides whose lists held each when last
    planned (`wanted_by`), read in the same round trip."""

    pending: Mapping[str, Mapping[str, float]]
    decided: frozenset[str]
    sides: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # of those pending pairs, the ones a cluster approved: they keep their place (KEPT_WHEN_APPROVED)
    approved: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RunReads:
    """What a run of profile events reads of the state before its plan, in one round trip: the
    revision applied of each of its organisations (those with one), the organisations whose lists
    wait for each (the state's AWAITING), and each one's partners in its pending pairs (whose lists
    may hold the pair: see `wanted_by`)."""

    revisions: Mapping[str, int]
    waiting: Mapping[str, set[str]]
    partners: Mapping[str, set[str]]


@dataclass(frozen=True)
class RunApplied:
    """What applying a ProfilesChange did: the organisations whose events were applied now (none:
    each had this revision or a later one applied before), and for each of them the lists still
    waiting for it as the same transaction left them (those that came to wait while the change was
    planned), to be planned now that its profile is there."""

    applied: set[str]
    waiting: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class ListsPlan:
    """The pairs to suggest, those to withdraw with why, and the pending pairs some planned lists no
    longer hold (pair id, the organisation whose list let it go): each is withdrawn once neither
    side's list holds it, which the write judges against the pair as it then is."""

    upserts: list[PairWrite]
    withdrawals: list[tuple[str, str]]
    unlisted: list[tuple[str, str]] = field(default_factory=list)
    checked: IndexCheck | None = field(default=None, compare=False, repr=False)  # as ProfilesChange's


def wanted_pairs(
    lists: Mapping[str, Sequence[Candidate]], clusters: Mapping[str, str], with_reasons: bool = True
) -> dict[str, PairWrite]:
    """The pairs the lists want (each list's partners, in the lists' order), stored with org_a
    first; a pair in two lists keeps its best score (the first list's on a tie), with that list's
    reasons, and each list's score (side_scores). Without `with_reasons` they have none yet: a plan
    needs only the scores, and `add_reasons` gives them to the pairs it writes."""
    wanted: dict[str, PairWrite] = {}
    for pair_id, listings in _listings(lists).items():
        who, candidate = _best_of(listings)
        org_a, org_b = sorted((who, candidate.id))
        wanted[pair_id] = write = PairWrite(
            pair_id,
            org_a,
            org_b,
            clusters[org_a],
            clusters[org_b],
            float(candidate.score),
            [],
            side_scores={side: float(c.score) for side, c in listings.items()},
        )
        if with_reasons:
            _give_reasons(write, listings)
    return wanted


def add_reasons(writes: Iterable[PairWrite], lists: Mapping[str, Sequence[Candidate]]) -> None:
    """Give pairs `wanted_pairs` made without reasons the reasons of the lists they came from."""
    found = _listings(lists)
    for write in writes:
        _give_reasons(write, found[write.pair_id])


def _give_reasons(write: PairWrite, listings: Mapping[str, Candidate]) -> None:
    """The write's reasons (its best list's) and those of its other list, if two hold it."""
    best = _best_of(listings)
    write.reasons = _reasons_for_pair(*best)
    write.side_reasons = {
        side: _reasons_for_pair(side, candidate) for side, candidate in listings.items() if side != best[0]
    }


def _listings(lists: Mapping[str, Sequence[Candidate]]) -> dict[str, dict[str, Candidate]]:
    """For each pair the lists want, each list that holds it (by its organisation, in sorted order)
    and the partner there."""
    found: dict[str, dict[str, Candidate]] = {}
    for who in sorted(lists):
        for candidate in lists[who]:
            found.setdefault(events.pair_id(who, candidate.id), {}).setdefault(who, candidate)
    return found


def _best_of(listings: Mapping[str, Candidate]) -> tuple[str, Candidate]:
    """The list that scores the pair best (the first in order on a tie) and the partner there."""
    best: tuple[str, Candidate] | None = None
    for who, candidate in listings.items():
        if best is None or best[1].score < candidate.score:
            best = (who, candidate)
    assert best is not None
    return best


def _reasons_for_pair(who: str, candidate: Candidate) -> list[dict[str, Any]]:
    """The reasons of `who`'s list (its owner "a" there) as the pair stores them, read from the
    pair's org_a (Reason.seen_from); the engine's own where `who` is org_a (its to_dict() is the
    wire form already), and turned round at once where `who` is org_b (_flipped_wire)."""
    side = "a" if who < candidate.id else "b"
    return [_reason_seen_from(side, r) for r in candidate.reasons]


def _reason_seen_from(side: str, reason: Any) -> dict[str, Any]:
    """One reason of a list (a wire dict, or the engine's value with its to_dict()) as seen from the
    pair's `side`, in wire form."""
    if isinstance(reason, Mapping):
        return Reason.from_dict(reason).seen_from(side).to_dict()
    wire: dict[str, Any] = reason.to_dict()
    if side == "a":
        return wire
    if isinstance(reason, tuple):  # the engine's (a NamedTuple): every key a Reason has, none other
        return _flipped_wire(wire)
    return Reason.from_dict(wire).seen_from(side).to_dict()


_OTHER_WAY = {A_OFFERS: B_OFFERS, B_OFFERS: A_OFFERS}


def _flipped_wire(wire: dict[str, Any]) -> dict[str, Any]:
    """An engine reason's wire form (every key a Reason has, none other) seen from organisation "b":
    what Reason.from_dict(wire).seen_from("b").to_dict() gives, made without the Reason (a plan
    turns round half its reasons, some thousands a second)."""
    return {
        "concept": wire["concept"],
        "kind": wire["kind"],
        "direction": _OTHER_WAY.get(wire["direction"], wire["direction"]),
        "weight": wire["weight"],
        "terms_a": list(wire["terms_b"]),
        "terms_b": list(wire["terms_a"]),
    }


def snapshot_orgs(affected: set[str], gone: set[str], wanted: Iterable[PairWrite]) -> set[str]:
    """The organisations whose pending pairs a plan reads: those whose lists changed or that are
    gone, and both sides of every pair wanted (the limit of pending pairs holds for each)."""
    return affected | gone | {org for w in wanted for org in (w.org_a, w.org_b)}


def unlisted_pending(
    affected: set[str], gone: set[str], wanted: Mapping[str, PairWrite], snapshot: PlanSnapshot
) -> set[str]:
    """The pending pairs of the planned lists that those lists no longer hold, between organisations
    still here: whether each stays depends on its other side's list (see `wanted_by`)."""
    wanted_now = set(wanted) - snapshot.decided
    return {
        pair_id
        for who in affected - gone
        for pair_id in snapshot.pending.get(who, {})
        if pair_id not in wanted_now and other_of(pair_id, who) not in gone
    }


def plan_lists(
    wanted: Mapping[str, PairWrite],
    listed: Mapping[str, set[str]],
    snapshot: PlanSnapshot,
    sides: Mapping[str, frozenset[str]],
    affected: set[str],
    gone: set[str],
    max_pending: int,
    displace_margin: float = 0.0,
) -> ListsPlan:
    """The pairs to suggest and to withdraw (with why) for the lists of `affected` as they now are
    (they want `wanted`: see `wanted_pairs`), the organisations in `gone` deleted. `listed` holds
    the partners in the list of each planned organisation (of `affected`, not gone); `sides` the
    sides that want each pair `unlisted_pending` names, as stored (`wanted_by`). A pending pair a
    planned list lets go stays while its other side's list holds it: this plan does not read the
    other side's list, whose own planning (maybe another matcher's) says so. Under the limit of
    pending pairs a wanted pair displaces a pending one only by more than `displace_margin`
    (cap_pending)."""
    wanted = {pair_id: w for pair_id, w in wanted.items() if pair_id not in snapshot.decided}
    for w in wanted.values():
        w.planned = frozenset(org for org in (w.org_a, w.org_b) if org in listed)
        w.wanted_by = frozenset(org for org in w.planned if other_of(w.pair_id, org) in listed[org])
    withdrawals: dict[str, str] = {}
    unlisted: list[tuple[str, str]] = []
    leaving: set[str] = set()  # pending pairs the unlisting takes out, as far as the snapshot says
    for who in sorted(affected | gone):
        for pair_id in snapshot.pending.get(who, {}):
            if who in gone:
                withdrawals[pair_id] = ORGANISATION_DELETED
                continue
            if pair_id in wanted:
                continue
            other = other_of(pair_id, who)
            if other in gone:
                withdrawals[pair_id] = ORGANISATION_DELETED
                continue
            unlisted.append((pair_id, who))
            held = sides.get(pair_id, frozenset()) - {org for org in (who, other) if org in listed}
            if not held and pair_id not in snapshot.approved:
                leaving.add(pair_id)

    upserts = cap_pending(
        wanted, snapshot.pending, withdrawals, max_pending, leaving, displace_margin, kept=snapshot.approved
    )
    unlisted = [(pair_id, who) for pair_id, who in unlisted if pair_id not in withdrawals]
    return ListsPlan(upserts, sorted(withdrawals.items()), unlisted)


def cap_pending(
    wanted: Mapping[str, PairWrite],
    pending: Mapping[str, Mapping[str, float]],
    withdrawals: dict[str, str],
    max_pending: int,
    leaving: Collection[str] = (),
    margin: float = 0.0,
    kept: Collection[str] = (),
) -> list[PairWrite]:
    """The wanted pairs to suggest so that no organisation has more than `max_pending` pending: the
    best ones stay, and a weaker pending pair gives way (added to `withdrawals`). The pairs in
    `leaving` are on their way out and hold no place; those in `kept` (approved by a cluster) hold
    theirs and never give way.

    A pair displaces the weakest pending pair of an organisation at the limit only when it scores
    more than `margin` above it, and only when it has a place on both sides: a coordinator's queue
    does not lose a suggestion to one barely better (which the next change of scores may turn round,
    and the displaced pair come back), nor to one that is then not suggested at all. A pair that
    would be the only pending one of one of its organisations needs only to score above it: an
    organisation with no suggestion gains more than a margin by one."""
    chosen: dict[str, PairWrite] = {}
    load: dict[str, dict[str, float]] = {}

    def current(org: str) -> dict[str, float]:
        if org not in load:
            # a pending pair planned again counts with its new score (rejections may have lowered it)
            load[org] = {
                p: wanted[p].score if p in wanted else s
                for p, s in pending.get(org, {}).items()
                if p not in withdrawals and p not in leaving
            }
        return load[org]

    for w in sorted(wanted.values(), key=lambda w: -w.score):
        # the pair would be the first pending one of one of its organisations: no gain is marginal
        needed = not (current(w.org_a) and current(w.org_b))
        displaced: list[str] = []
        for org in (w.org_a, w.org_b):
            mine = current(org)
            if w.pair_id in mine or len(mine) < max_pending:
                continue
            may_go = [p for p in mine if p not in kept]
            if not may_go:
                break
            weakest = min(may_go, key=lambda p: mine[p])
            if weakest in chosen or w.score <= mine[weakest] + (0.0 if needed else margin):
                break
            displaced.append(weakest)
        else:
            for weakest in displaced:
                withdrawals[weakest] = DISPLACED
                for o in weakest.split("~"):
                    current(o).pop(weakest, None)
            chosen[w.pair_id] = w
            for org in (w.org_a, w.org_b):
                current(org)[w.pair_id] = w.score
    return list(chosen.values())


def other_of(pair_id: str, org_id: str) -> str:
    """The pair's other organisation."""
    first, _, second = pair_id.partition("~")
    return second if first == org_id else first
