"""Fakes of the matcher's outside world for the use cases: its state in dicts (the repository the
live matcher and the review use, saving the domain's steps as the Redis one does) and an engine
whose lists are given by the test."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from services.matcher import domain
from services.matcher.domain import (
    ListsPlan,
    PairEvent,
    PairRecord,
    PairSaved,
    PlanSnapshot,
    ProfileChange,
    ProfilesChange,
    RunApplied,
    RunReads,
)


class FakeHeldPair:
    def __init__(self, repository: FakeMatcherRepository, pair_id: str) -> None:
        self.repository = repository
        self.pair_id = pair_id
        pair = repository.pairs.get(pair_id)
        self.pair = dict(pair) if pair is not None else None
        self.written = False
        self._steps: list[PairSaved] = []

    def save(self, step: PairSaved | None) -> None:
        if step is not None:
            self._steps.append(step)

    def __enter__(self) -> FakeHeldPair:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            return
        if self._steps and self.repository.meanwhile:  # someone wrote the pair since it was read (WATCH)
            self.repository.meanwhile.pop(0)(self.repository)
            return
        for step in self._steps:
            self.repository.save(step)
        self.written = True


@dataclass
class FakeMatcherRepository:
    """The matcher's state in dicts. `meanwhile` holds writes by others, each run once between a
    pair's read for update and its save (as a WATCH would see them): that attempt writes nothing."""

    pairs: dict[str, PairRecord] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    dislikes: dict[str, set[str]] = field(default_factory=dict)
    lessons: set[str] = field(default_factory=set)
    waiting: dict[str, set[str]] = field(default_factory=dict)
    events: list[PairEvent] = field(default_factory=list)
    meanwhile: list[Callable[[FakeMatcherRepository], None]] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)  # one entry per round trip a real store would make
    now: int = 1_000

    # ---- the live matcher's reads and writes ----------------------------------------------------

    def applied_revision(self, org_id: str) -> int:
        return self.revisions.get(org_id, 0)

    def applied_revisions(self, org_ids: Iterable[str] | None = None) -> dict[str, int]:
        ids = self.revisions if org_ids is None else org_ids
        return {o: self.revisions[o] for o in ids if o in self.revisions}

    def applied_position(self) -> int:
        return 0  # no applied log: a fake's writes are not checked against one (see the real store's)

    def all_profiles(self) -> Iterable[dict[str, Any]]:
        return list(self.profiles.values())

    def snapshot(self, org_ids: Iterable[str], pair_ids: Iterable[str], sides_of: Iterable[str] = ()) -> PlanSnapshot:
        self.reads.append("snapshot")
        ids = list(pair_ids)
        pending = {org: self.pending_of_org(org) for org in org_ids}
        decided = frozenset(p for p in ids if self.pairs.get(p, {}).get("state") in domain.DECIDED_STATES)
        let_go = {p for org in sides_of for p in pending[org]} - set(ids)
        approved = frozenset(p for mine in pending.values() for p in mine if domain.approved(self.pairs[p]))
        return PlanSnapshot(pending, decided, {p: domain.wanted_by(self.pairs[p]) for p in let_go}, approved)

    def pending_of_org(self, org_id: str) -> dict[str, float]:
        mine = [p for p in self.pairs.values() if p["state"] == domain.PENDING and org_id in (p["org_a"], p["org_b"])]
        return {p["pair_id"]: p["score"] for p in sorted(mine, key=lambda p: (p["score"], p["pair_id"]))}

    def dislikes_of(self, org_ids: Iterable[str]) -> dict[str, list[str]]:
        self.reads.append("dislikes")
        return {o: sorted(self.dislikes[o]) for o in org_ids if self.dislikes.get(o)}

    def mark_approved_pending(self) -> None:
        pass  # the fake's snapshot reads approvals from its records

    def build_dislikes(self) -> None:
        pass

    def drop_withdrawn_pairs(self) -> int:
        return 0  # save() keeps no withdrawn pair

    def apply(self, change: ProfileChange) -> bool:
        return bool(self.apply_profiles(ProfilesChange.of(change)).applied)

    def apply_profiles(self, change: ProfilesChange) -> RunApplied:
        fresh = {org for org, (revision, _) in change.profiles.items() if self.revisions.get(org, 0) < revision}
        for org in fresh:
            revision, profile = change.profiles[org]
            self.revisions[org] = revision
            if profile is None:
                self.profiles.pop(org, None)
            else:
                self.profiles[org] = profile
        if fresh:
            self.apply_pairs(ListsPlan(change.upserts, change.withdrawals, change.unlisted))
        for org in fresh:
            self.forget_awaiting(org, change.forget_waiting.get(org, ()))
        return RunApplied(fresh, self.awaiting(sorted(fresh)))

    def apply_pairs(self, plan: ListsPlan) -> None:
        for step in domain.pair_steps(self.pairs, plan.upserts, plan.withdrawals, self.now, plan.unlisted):
            self.save(step)

    def awaiting(self, org_ids: Iterable[str]) -> dict[str, set[str]]:
        return {org: set(self.waiting[org]) for org in org_ids if self.waiting.get(org)}

    def run_reads(self, org_ids: Iterable[str]) -> RunReads:
        ids = list(org_ids)
        partners = {org: {domain.other_of(p, org) for p in self.pending_of_org(org)} for org in ids}
        return RunReads(self.applied_revisions(ids), self.awaiting(ids), {o: p for o, p in partners.items() if p})

    def forget_awaiting(self, org_id: str, orgs: Iterable[str]) -> None:
        self.waiting.get(org_id, set()).difference_update(orgs)

    def lesson_applied(self, decided_pair_id: str) -> bool:
        return decided_pair_id in self.lessons

    def apply_lesson(self, decided_pair_id: str, plan: ListsPlan) -> bool:
        if decided_pair_id in self.lessons:
            return False
        self.lessons.add(decided_pair_id)
        self.apply_pairs(plan)
        return True

    # ---- the review's ---------------------------------------------------------------------------

    def get_pair(self, pair_id: str) -> PairRecord | None:
        return self.pairs.get(pair_id)

    def get_pairs(self, pair_ids: Iterable[str]) -> list[PairRecord]:
        return [self.pairs[p] for p in pair_ids if p in self.pairs]

    def get_profiles(self, org_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {o: self.profiles[o] for o in org_ids if o in self.profiles}

    def pending_ids_of_cluster(self, cluster_id: str) -> list[str]:
        return [p["pair_id"] for p in self._of_cluster(cluster_id) if p["state"] == domain.PENDING]

    def history_ids_of_cluster(self, cluster_id: str) -> list[str]:
        return [p["pair_id"] for p in self._of_cluster(cluster_id) if p["state"] in domain.DECIDED_STATES]

    def pair_ids_of_org(self, org_id: str) -> list[str]:
        return [p["pair_id"] for p in self.pairs.values() if org_id in (p["org_a"], p["org_b"])]

    def pair_for_update(self, pair_id: str) -> Iterator[FakeHeldPair]:
        while True:
            self.reads.append("pair")
            held = FakeHeldPair(self, pair_id)
            yield held
            if held.written:
                return

    # ---- saving a step, as the Redis repository does --------------------------------------------

    def save(self, step: PairSaved) -> None:
        if step.step == "withdrawn":  # its record is not kept, its event says why
            self.pairs.pop(step.record["pair_id"], None)
        else:
            self.pairs[step.record["pair_id"]] = step.record
        for org, partner in step.dislikes:
            self.dislikes.setdefault(org, set()).add(partner)
        if step.event is not None:
            self.events.append(step.event)

    def _of_cluster(self, cluster_id: str) -> list[PairRecord]:
        return [p for p in self.pairs.values() if cluster_id in (p["cluster_a"], p["cluster_b"])]


@dataclass
class Listed:
    id: str
    score: float
    reasons: tuple[dict[str, Any], ...] = ()


@dataclass
class Changed:
    entered: set[str] = field(default_factory=set)
    left: set[str] = field(default_factory=set)


@dataclass
class FakeEngine:
    """Lists given by the test (org id -> [(partner, score)], best first); an upsert reports as
    changed the lists that name the organisation."""

    lists: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def fit(self, profiles: Iterable[Any], progress: Any = None) -> None:
        for profile in profiles:
            self.lists.setdefault(profile.id, [])

    def prepare_events(self) -> None:  # nothing compiled or copied to make ready
        return None

    def upsert(self, profile: Any) -> Changed:
        self.lists.setdefault(profile.id, [])
        return Changed(entered={o for o, found in self.lists.items() if any(p == profile.id for p, _ in found)})

    def remove(self, org_id: str) -> Changed:
        del self.lists[org_id]
        named = {o for o, found in self.lists.items() if any(p == org_id for p, _ in found)}
        for o in named:
            self.lists[o] = [(p, s) for p, s in self.lists[o] if p != org_id]
        return Changed(left=named)

    def top(self, org_id: str, k: int = 5) -> list[Listed]:
        self.calls.append(org_id)
        return [Listed(p, s) for p, s in self.lists[org_id][:k]]

    def reason_vectors(self, org_id: str, candidate_ids: list[str]) -> Any:
        raise AssertionError("no rejection bears on these lists")
