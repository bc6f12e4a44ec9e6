"""The live matcher: turns profile events into suggestion changes, using the engine's incremental index.

The engine holds every current profile in memory; Redis holds the truth (profiles as applied,
pairs and their review state). On start the index is rebuilt from Redis, so a restart resumes
where it stopped, and a replayed event (same or older revision) changes nothing.

The use cases of profile events and rejections: the engine's lists and one snapshot of the pairs
are read here, the plan is the domain's (domain.py), the repository saves it. The engine and the
repository are Protocols below.
"""

from __future__ import annotations

import gc
import itertools
import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from partnermatch import events
from services.matcher import domain
from services.matcher.config import MatcherSettings
from services.matcher.domain import (
    Candidate,
    IndexCheck,
    ListsPlan,
    PairWrite,
    PlanSnapshot,
    ProfileChange,
    ProfilesChange,
    RunApplied,
    RunReads,
)
from services.matcher.feedback import ReasonVectors, dislikes_in, rerank

if TYPE_CHECKING:
    from services.matcher.engine import OrgProfile
    from services.matcher.engine.values import Progress, Suggestion, Update

logger = logging.getLogger(__name__)

# Where rejections lower some candidates, a list is chosen from this many times top_k of the
# engine's best, so the candidates the lowered ones give way to are among them.
WIDER_LIST = 4


class Engine(ReasonVectors, Protocol):
    """What the live matcher asks of the engine (services/matcher/engine: MatchEngine)."""

    def fit(self, profiles: Iterable[OrgProfile], progress: Progress | None = None) -> None: ...

    def prepare_events(self) -> None: ...

    def upsert(self, profile: OrgProfile) -> Update: ...

    def remove(self, org_id: str) -> Update: ...

    def top(self, org_id: str, k: int = 5) -> list[Suggestion]: ...


class MatcherRepository(Protocol):
    """What the live matcher (and the matchers sharing its work, table.py) read and save of the
    matcher's state (adapters/redis_state.py: RedisMatcherState)."""

    def applied_revision(self, org_id: str) -> int: ...

    def applied_revisions(self, org_ids: Iterable[str] | None = None) -> dict[str, int]: ...

    def applied_position(self) -> int: ...

    def all_profiles(self) -> Iterable[dict[str, Any]]: ...

    def snapshot(
        self, org_ids: Iterable[str], pair_ids: Iterable[str], sides_of: Iterable[str] = ()
    ) -> PlanSnapshot: ...

    def dislikes_of(self, org_ids: Iterable[str]) -> dict[str, list[str]]: ...

    def build_dislikes(self) -> None: ...

    def mark_approved_pending(self) -> None: ...

    def drop_withdrawn_pairs(self) -> int: ...

    def apply(self, change: ProfileChange) -> bool: ...

    def apply_profiles(self, change: ProfilesChange) -> RunApplied: ...

    def apply_pairs(self, plan: ListsPlan) -> None: ...

    def awaiting(self, org_ids: Iterable[str]) -> dict[str, set[str]]: ...

    def run_reads(self, org_ids: Iterable[str]) -> RunReads: ...

    def forget_awaiting(self, org_id: str, orgs: Iterable[str]) -> None: ...

    def lesson_applied(self, decided_pair_id: str) -> bool: ...

    def apply_lesson(self, decided_pair_id: str, plan: ListsPlan) -> bool: ...


# How often what was frozen is collected once in full (see _freeze_survivors).
FROZEN_COLLECTED_EVERY_S = 600.0
_frozen_collected = [time.monotonic()]


def _freeze_survivors() -> None:
    """What a change leaves behind once written, out of the cyclic collector's reach, as load()
    does with the index (gc.freeze: constant time). What the engine keeps of each change (the lists
    made again with their reasons as tuples, the rows' evidence) is thousands of new containers;
    tuples taken from CPython's free lists do not count towards a collection, so one came only now
    and then and walked 6,000-17,000 of them (2-13 ms, once 53 ms, at 100,000 organisations with
    10,000 lists kept). Reference counting still frees any of it let go; events make next to no
    reference cycles (the collections during 450 events at 100,000 found 8 objects in them), but
    the process's Kafka clients do (some 600 in reading 5,000 records), and a cycle frozen before
    it became garbage would stay: every FROZEN_COLLECTED_EVERY_S everything frozen is collected
    once in full, then frozen again, which bounds that to ten minutes' worth."""
    now = time.monotonic()
    if now - _frozen_collected[0] >= FROZEN_COLLECTED_EVERY_S:
        _frozen_collected[0] = now
        gc.unfreeze()
        found = gc.collect()
        logger.info(
            "frozen objects collected",
            extra={"unreachable": found, "seconds": round(time.monotonic() - now, 3), "kept": gc.get_freeze_count()},
        )
    gc.freeze()


def profile_from_payload(payload: Mapping[str, Any]) -> OrgProfile:
    """The engine's profile of a `profile.upserted` payload, v1 or v2 (a v1 one has no structured
    needs), or of a profile stored as applied."""
    from services.matcher.engine import OrgProfile

    return OrgProfile(
        id=payload["org_id"],
        name=payload.get("name", ""),
        cluster=payload["cluster_id"],
        country=payload.get("country", ""),
        language=payload.get("language"),
        capabilities=payload.get("capabilities", ""),
        goals=payload.get("goals", ""),
        offers=tuple(payload.get("offers") or ()),
        seeks=tuple(payload.get("seeks") or ()),
        seeks_countries=tuple(payload.get("seeks_countries") or ()),
    )


def _candidates(found: Mapping[str, list[Suggestion]]) -> dict[str, list[Candidate]]:
    """The engine's lists as Candidates: values, which the index changing later leaves as they are."""
    return {org: [Candidate(s.id, float(s.score), tuple(s.reasons)) for s in got] for org, got in found.items()}


@dataclass(frozen=True)
class ListsRead:
    """What a plan of lists reads of the index: the organisations whose lists are planned, those
    deleted, their lists (Candidates: values, which the index changing later leaves as they are) and
    the pairs the lists want (domain.wanted_pairs, without reasons yet)."""

    affected: set[str]
    gone: set[str]
    lists: dict[str, list[Candidate]]
    wanted: dict[str, PairWrite]
    # Read with rejections_later (see read_lists): for each list, the organisations whose rejections
    # would bear on it (its owner and the engine's candidates), read by plan_read with the snapshot;
    # empty when the rejections were read with the lists, or none is to be read.
    asked: Mapping[str, set[str]] = field(default_factory=dict)
    # Partners each list passed over because they had no place (see LiveMatcher.plan_read).
    passed: Mapping[str, frozenset[str]] = field(default_factory=dict)


# Lists read again with the rejections read (organisation -> partners it does not want), where one
# bears on them, or with none read (None: the lists read them again), where a decided pair held a
# place in one or a list passes over partners with no place (the second argument): see
# LiveMatcher.plan_read.
Relist = Callable[[dict[str, list[str]] | None, Mapping[str, frozenset[str]]], ListsRead]

# How many times one plan reads its lists again to pass over partners that had no place.
PASSES = 2
# At most this many reads of the lists and the stored pairs make one plan (a read again for the
# rejections that bear on the lists, once; one for each decided pair learnt; each pass): the
# last is planned as it is.
MAX_READS = 8


@dataclass(frozen=True)
class ProfilesRead:
    """What a plan of a run of profile events reads of the index: each organisation's revision and
    profile (None: deleted), and the lists (ListsRead)."""

    profiles: dict[str, tuple[int, dict[str, Any] | None]]
    lists: ListsRead


class LiveMatcher:
    def __init__(
        self,
        state: MatcherRepository,
        engine: Engine,
        top_k: int = 5,
        min_score: float = 0.05,
        max_pending_per_org: int = 8,
        feedback_strength: float = 0.25,
        displace_margin: float = MatcherSettings.displace_margin,
    ) -> None:
        self.state = state
        self.engine = engine
        self.top_k = top_k
        self.min_score = min_score
        self.max_pending = max_pending_per_org
        self.feedback_strength = feedback_strength
        self.displace_margin = displace_margin
        self.clusters: dict[str, str] = {}
        # The partners each organisation has a decided pair with, as far as this matcher has seen
        # (decisions, and the plans' snapshots): such a pair never returns, so it holds no place in
        # the organisation's list, whose next best takes it (see _best). A hint that grows but for a
        # deleted organisation's entry (its partners' sets keep its id, which never returns):
        # a plan's snapshot says which pairs are decided, and one it had not known is learnt there.
        self.decided_with: dict[str, set[str]] = {}
        # The index as other matchers' writes are checked against (table.py's SharedIndex, when
        # this matcher is one of N): the lists planned after a decision are written checked.
        self.index_check: IndexCheck | None = None

    # ---- start-up -------------------------------------------------------------------------

    def load(self) -> int:
        """Rebuild the in-memory index from the profiles applied so far."""
        from services.matcher.engine.text import preload_lemmatizers

        started = time.monotonic()
        preload_lemmatizers()
        logger.info("lemma indexes open", extra={"seconds": round(time.monotonic() - started, 2)})
        self.state.build_dislikes()
        self.state.mark_approved_pending()
        self.state.drop_withdrawn_pairs()
        self.clusters = {}

        def profiles() -> Iterator[OrgProfile]:  # read as the fit takes them: never all held at once
            for p in self.state.all_profiles():
                self.clusters[p["org_id"]] = p["cluster_id"]
                yield profile_from_payload(p)

        def progress(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            logger.info("index rebuild", extra={"done": done, "per_s": round(rate)})

        self.engine.fit(profiles(), progress=progress)
        self.engine.prepare_events()
        # What was loaded lasts as long as the process: out of the cyclic collector's reach, its
        # collections scan what events make, not the hundreds of thousands of objects of the index
        # (at 100,000 a mid-level collection took up to 9 ms, every 16 events or so, and a full one
        # half a second). Reference counting still frees any of it that is let go.
        gc.collect()
        gc.freeze()
        count = len(self.clusters)
        logger.info("index ready", extra={"profiles": count, "seconds": round(time.monotonic() - started, 2)})
        return count

    # ---- one event ------------------------------------------------------------------------

    def handle(self, envelope: events.Envelope) -> bool:
        """Apply one profile event; False when it was already applied (replay) or is not ours."""
        payload = envelope.payload
        if envelope.event_type not in (events.PROFILE_UPSERTED, events.PROFILE_DELETED):
            return False
        org_id, revision = payload["org_id"], int(payload["revision"])
        if revision <= self.state.applied_revision(org_id):
            return False
        return self.apply(self.plan(envelope, self.index(envelope)))

    # The three steps of a profile event, apart for matchers that share the work (table.py): each
    # indexes every event, and only the owner of the event's partition plans and applies it.

    def index(self, envelope: events.Envelope) -> set[str]:
        """Put a profile event into the in-memory index only: the organisations whose lists it
        changed, its own one included unless it was deleted."""
        payload = envelope.payload
        org_id = payload["org_id"]
        if envelope.event_type == events.PROFILE_UPSERTED:
            self.clusters[org_id] = payload["cluster_id"]
            update = self.engine.upsert(profile_from_payload(payload))
            return {org_id, *update.entered, *update.left}
        if org_id not in self.clusters:
            return set()
        changed = set()
        if self._indexed(org_id):
            update = self.engine.remove(org_id)
            changed = {*update.entered, *update.left}
        self.clusters.pop(org_id)
        self.decided_with.pop(org_id, None)  # its id never returns; its partners' sets may keep it
        return changed - {org_id}

    def plan(self, envelope: events.Envelope, affected: set[str]) -> ProfileChange:
        """The change a profile event already in the index makes: its profile, and the pairs of the
        lists of `affected` as the index now holds them."""
        payload = envelope.payload
        org_id, revision = payload["org_id"], int(payload["revision"])
        if envelope.event_type == events.PROFILE_UPSERTED:
            return self._plan(org_id, revision, dict(payload), affected, set())
        return self._plan(org_id, revision, None, affected, {org_id})

    def apply(self, change: ProfileChange) -> bool:
        """Write the change durably, once: False when its revision was applied before."""
        applied = self.state.apply(change)
        _freeze_survivors()
        logger.info(
            "profile event applied",
            extra={
                "org_id": change.org_id,
                "revision": change.revision,
                "deleted": change.profile is None,
                "suggested": len(change.upserts),
                "withdrawn": len(change.withdrawals),
                "unlisted": len(change.unlisted),
                "applied": applied,
            },
        )
        return applied

    def plan_profiles(self, envelopes: Sequence[events.Envelope], affected: set[str]) -> ProfilesChange:
        """The change a run of profile events already in the index makes, one event per organisation
        (its latest): their profiles, and the pairs of the lists of `affected` as the index now
        holds them, planned once for all (a list two events changed is planned once)."""
        return self.plan_profiles_read(self.read_profiles(envelopes, affected))

    def read_profiles(
        self, envelopes: Sequence[events.Envelope], affected: set[str], rejections_later: bool = False
    ) -> ProfilesRead:
        """What plan_profiles reads of the index (the lists), for plan_profiles_read to finish with
        the stored pairs: a caller sharing the index with other threads holds its lock only for this
        (and reads the rejections later: see read_lists)."""
        profiles: dict[str, tuple[int, dict[str, Any] | None]] = {}
        for envelope in envelopes:
            payload = envelope.payload
            deleted = envelope.event_type == events.PROFILE_DELETED
            profiles[payload["org_id"]] = (int(payload["revision"]), None if deleted else dict(payload))
        gone = {org for org, (_, profile) in profiles.items() if profile is None}
        return ProfilesRead(profiles, self.read_lists(affected - gone, gone, rejections_later))

    def plan_profiles_read(self, read: ProfilesRead, relist: Relist | None = None) -> ProfilesChange:
        """The change of read_profiles' events: reads the stored pairs, not the index (but for
        plan_read's `relist`)."""
        plan = self.plan_read(read.lists, relist)
        return ProfilesChange(read.profiles, plan.upserts, plan.withdrawals, plan.unlisted)

    def apply_profiles(self, change: ProfilesChange) -> RunApplied:
        """Write the change durably, in one transaction: the organisations whose events were applied
        now (an event whose revision was applied before changes nothing), and the lists still
        waiting for them (see the repository's apply_profiles)."""
        done = self.state.apply_profiles(change)
        applied = done.applied
        _freeze_survivors()
        for org_id, (revision, profile) in change.profiles.items():
            logger.info(
                "profile event applied",
                extra={
                    "org_id": org_id,
                    "revision": revision,
                    "deleted": profile is None,
                    "run": len(change.profiles),  # the pairs below are the whole run's
                    "suggested": len(change.upserts),
                    "withdrawn": len(change.withdrawals),
                    "unlisted": len(change.unlisted),
                    "applied": org_id in applied,
                },
            )
        return done

    def handle_decision(self, envelope: events.Envelope) -> bool:
        """Apply a decided pair to the lists. Neither organisation lists the other again, so both
        lists are planned again at once, and the next best partner takes the decided one's place:
        the queue fills again as coordinators work it. A rejection as not relevant also teaches
        (feedback.rerank): the partners of the rejecting organisation's pending pairs, which may
        lose it, are planned again too. Once per decision: False when it was applied already (a
        replay) or neither organisation is in the index."""
        if envelope.event_type not in (events.MATCH_APPROVED, events.MATCH_REJECTED):
            return False
        payload = envelope.payload
        pair_id = payload["pair_id"]
        self.note_decided(payload["org_a"], payload["org_b"])
        present = {org for org in (payload["org_a"], payload["org_b"]) if org in self.clusters and self._indexed(org)}
        if not present or self.state.lesson_applied(pair_id):
            return False
        dislikers = {org for org, _ in dislikes_in(payload, payload.get("decisions", []))} & present
        affected = set(present)
        if dislikers:
            pending = self.state.snapshot(sorted(dislikers), ()).pending
            affected |= {domain.other_of(pid, org) for org in dislikers for pid in pending.get(org, {})}
        affected = {org for org in affected if org in self.clusters}
        plan = self._pair_changes(affected, set())
        plan.checked = self.index_check
        applied = self.state.apply_lesson(pair_id, plan)
        _freeze_survivors()
        logger.info(
            "decision applied to the lists",
            extra={
                "pair_id": pair_id,
                "decision": "approve" if envelope.event_type == events.MATCH_APPROVED else "reject",
                "orgs": ",".join(sorted(present)),
                "taught": ",".join(sorted(dislikers)),
                "suggested": len(plan.upserts),
                "withdrawn": len(plan.withdrawals),
                "unlisted": len(plan.unlisted),
                "applied": applied,
            },
        )
        return applied

    def plan_lists(self, orgs: set[str]) -> ListsPlan:
        """The pairs to suggest, to withdraw and to take out of these organisations' lists (those in
        the index) when their lists are planned again as the index now holds them."""
        return self.plan_read(self.read_lists_of(orgs))

    def read_lists_of(self, orgs: set[str], rejections_later: bool = False) -> ListsRead:
        """What plan_lists reads of the index, for plan_read to finish (see read_profiles)."""
        return self.read_lists({org for org in orgs if org in self.clusters}, set(), rejections_later)

    def _indexed(self, org_id: str) -> bool:
        try:
            self.engine.top(org_id, 1)
        except KeyError:
            return False
        return True

    def _plan(
        self, org_id: str, revision: int, profile: dict[str, Any] | None, affected: set[str], gone: set[str]
    ) -> ProfileChange:
        plan = self._pair_changes(affected, gone)
        return ProfileChange(
            org_id, revision, profile, upserts=plan.upserts, withdrawals=plan.withdrawals, unlisted=plan.unlisted
        )

    def _pair_changes(self, affected: set[str], gone: set[str]) -> ListsPlan:
        """The pairs to suggest, to withdraw (with why) and to take out of the lists of `affected` as
        they now are, the organisations in `gone` deleted: the engine's lists, then the stored pairs
        (plan_read), the rejections read with the snapshot where the repository reads both
        together (see read_lists); where the rejections bear on a list, it is chosen again with
        those read (as _lowered does) and the snapshot read again for the lists it ends with."""
        if not self._rejections_later():
            return self.plan_read(self.read_lists(affected, gone))

        def relist(dislikes: dict[str, list[str]] | None, passed: Mapping[str, frozenset[str]]) -> ListsRead:
            if dislikes is None:  # the rejections are read with the next snapshot
                return self.read_lists(affected, gone, rejections_later=True, passed=passed)
            listed = {org: self._best(org, self.top_k, passed.get(org)) for org in sorted(affected - gone)}
            lowered = self._lowered(listed, dislikes, passed)
            return self._read_of(affected, gone, self._at_least_min(listed | lowered), passed)

        return self.plan_read(self.read_lists(affected, gone, rejections_later=True), relist)

    def read_lists(
        self,
        affected: set[str],
        gone: set[str],
        rejections_later: bool = False,
        passed: Mapping[str, frozenset[str]] | None = None,
    ) -> ListsRead:
        """The lists of `affected` as the index now holds them (the organisations in `gone` deleted),
        and the pairs they want: all a plan reads of the index and of the organisations' clusters.
        With `rejections_later`, where the repository reads the rejections with the snapshot
        (dislikes_and_snapshot), the lists are the engine's as they are, and plan_read reads the
        rejections that may bear on them with the snapshot, one round trip for both: nothing is
        read of Redis here, so a caller holding the index's lock holds it for no round trip.
        `passed`: partners each list passes over (see plan_read)."""
        orgs = sorted(affected - gone)
        passed = passed or {}
        if not (rejections_later and self._rejections_later()):
            return self._read_of(affected, gone, self._suggested(orgs, passed), passed)
        listed = {org: self._best(org, self.top_k, passed.get(org)) for org in orgs}
        return replace(self._read_of(affected, gone, self._at_least_min(listed), passed), asked=self._asked(listed))

    def _rejections_later(self) -> bool:
        """Whether a plan may read the rejections with its snapshot (see read_lists)."""
        return self.feedback_strength > 0 and hasattr(self.state, "dislikes_and_snapshot")

    def _read_of(
        self,
        affected: set[str],
        gone: set[str],
        found: Mapping[str, list[Suggestion]],
        passed: Mapping[str, frozenset[str]],
    ) -> ListsRead:
        """The ListsRead of these lists (`_suggested`'s, or as _pair_changes chose them)."""
        lists = _candidates(found)
        wanted = domain.wanted_pairs(lists, self.clusters, with_reasons=False)
        return ListsRead(affected, gone, lists, wanted, passed=passed)

    def plan_read(self, read: ListsRead, relist: Relist | None = None) -> ListsPlan:
        """The plan of lists as read_lists read them: one snapshot of the pairs they touch, with, for
        the pending pairs of those lists they may let go, which sides' lists held them when last
        planned (one round trip); the rules are the domain's. No partner's list is read:
        its own planning says whether it holds a pair. Reads the stored pairs, not the index.
        Lists read with their rejections still to read (`asked`) have them read with the snapshot;
        where one bears on a list (rare), the lists are chosen again with the rejections, by
        `relist` given those read (a caller sharing the index takes its lock there and reads them
        again), else by read_lists, and the snapshot is read again. So are they where the snapshot
        says a pair of a list is decided that `decided_with` did not know (see _best), and where an
        organisation would end the plan with fewer than top_k pending while partners of its list
        had no place (at the limit of pending pairs): its list passes over them, and the next best
        partners, which may have room, are planned in their places (PASSES times at most)."""
        return self._planned(read, relist)[0]

    def _planned(self, read: ListsRead, relist: Relist | None = None) -> tuple[ListsPlan, ListsRead]:
        """plan_read's plan, with the lists it was made of (the last read)."""
        passes = 0
        bore: dict[str, list[str]] | None = None  # the rejections read, once one bore on a list
        for reads in itertools.count(1):
            # past MAX_READS a plan is made of the lists as this read holds them (but for the
            # rejections, read again once at most)
            more = reads < MAX_READS
            if reads == MAX_READS:
                logger.warning("a plan read its lists again as often as it may", extra={"reads": reads})
            orgs, sides_of = self._snapshot_orgs(read)
            if not read.asked:
                snapshot = self.state.snapshot(orgs, list(read.wanted), sides_of=sides_of)
            else:
                asked = sorted(set().union(*read.asked.values()))
                dislikes, snapshot = self.state.dislikes_and_snapshot(asked, orgs, list(read.wanted), sides_of=sides_of)  # type: ignore[attr-defined]
                if any(ids & dislikes.keys() for ids in read.asked.values()):
                    bore = dislikes
                    read = self._reread(read, relist, bore, read.passed)
                    continue
            if self._learn_decided(read.lists, snapshot.decided) and more:
                # a decided pair held a place in a list: the lists are read again without it (and
                # their rejections with them), so the next best takes its place
                read = self._reread(read, relist, bore, read.passed)
                continue
            plan = self._plan_snapshot(read, snapshot)
            no_place = self._no_place(read, snapshot, plan) if passes < PASSES and more else {}
            if not no_place:
                return plan, read
            passes += 1
            passed = {
                org: read.passed.get(org, frozenset()) | no_place.get(org, frozenset())
                for org in {*read.passed, *no_place}
            }
            read = self._reread(read, relist, bore, passed)
        raise AssertionError("unreachable")

    def _reread(
        self,
        read: ListsRead,
        relist: Relist | None,
        dislikes: dict[str, list[str]] | None,
        passed: Mapping[str, frozenset[str]],
    ) -> ListsRead:
        """The lists of `read` read again (see plan_read)."""
        if relist is not None:
            return relist(dislikes, passed)
        if dislikes is not None:
            return self.read_lists(read.affected, read.gone, passed=passed)
        return self.read_lists(read.affected, read.gone, rejections_later=True, passed=passed)

    def _no_place(self, read: ListsRead, snapshot: PlanSnapshot, plan: ListsPlan) -> dict[str, frozenset[str]]:
        """The partners of each list that the plan gives no place, being at their limit of pending
        pairs, where the list's organisation ends the plan with fewer than top_k pending (or its
        own limit, if lower): its list passes over them when read again, so the next best
        partners, which may have room, take their places."""
        upserted = {w.pair_id for w in plan.upserts}
        # a pair the plan lets go leaves unless a side this plan did not plan holds it: one that
        # leaves is not counted (else a pair a pass suggested, which the list without passing
        # holds no more, would leave, and come back at the next plan)
        leaving = {pair_id for pair_id, _ in plan.withdrawals} | {
            pair_id
            for pair_id, _ in plan.unlisted
            if not any(side not in read.lists for side in snapshot.sides.get(pair_id, ()))
        }
        enough = min(self.top_k, self.max_pending)
        passed: dict[str, frozenset[str]] = {}
        for org, candidates in read.lists.items():
            if org in read.gone:
                continue
            refused = frozenset(
                c.id
                for c in candidates
                if (pair_id := events.pair_id(org, c.id)) not in upserted
                and pair_id not in snapshot.decided
                and len(snapshot.pending.get(c.id, {})) >= self.max_pending
            )
            if not refused:
                continue
            pending = {p for p in snapshot.pending.get(org, {}) if p not in leaving}
            pending |= {w.pair_id for w in plan.upserts if org in (w.org_a, w.org_b)}
            if len(pending) < enough:
                passed[org] = refused
        return passed

    def _learn_decided(self, lists: Mapping[str, Sequence[Candidate]], decided: Collection[str]) -> bool:
        """Note the decided pairs of these lists (as a snapshot read them) in `decided_with`: True if
        one was not known, so a list holds a partner it should have left out."""
        learnt = False
        for org, candidates in lists.items():
            known = self.decided_with.get(org, ())
            for candidate in candidates:
                if candidate.id not in known and events.pair_id(org, candidate.id) in decided:
                    self.note_decided(org, candidate.id)
                    learnt = True
        return learnt

    def note_decided(self, org_a: str, org_b: str) -> None:
        """The two organisations have a decided pair: neither is listed for the other again."""
        self.decided_with.setdefault(org_a, set()).add(org_b)
        self.decided_with.setdefault(org_b, set()).add(org_a)

    def _best(self, org_id: str, k: int, passed: frozenset[str] | None = None) -> list[Suggestion]:
        """The engine's best k partners of the organisation with none it has a decided pair with (as
        far as `decided_with` knows): a decided pair never returns, so its place goes to the next.
        Nor any of `passed`, partners the list passes over (see plan_read)."""
        done = self._left_out(org_id, passed)
        if not done:
            return self.engine.top(org_id, k)
        # most of an organisation's decided partners are not among its best: twice k first (as the
        # engine keeps its lists made), the whole length only where that leaves fewer than k
        first = self._without(self.engine.top(org_id, k + min(len(done), k)), done, k)
        if len(first) == k or len(done) <= k:
            return first
        return self._without(self.engine.top(org_id, k + len(done)), done, k)

    def _left_out(self, org_id: str, passed: frozenset[str] | None) -> set[str] | frozenset[str]:
        """The partners the organisation's list leaves out: decided ones (as far as `decided_with`
        knows) and those of `passed`."""
        done: set[str] | frozenset[str] = self.decided_with.get(org_id, frozenset())
        return (done | passed) if passed else done

    @staticmethod
    def _without(found: list[Suggestion], done: Collection[str], k: int) -> list[Suggestion]:
        """The first k of `found` that are not in `done`."""
        return [s for s in found if s.id not in done][:k]

    @staticmethod
    def _snapshot_orgs(read: ListsRead) -> tuple[list[str], list[str]]:
        """The organisations whose pending pairs a plan of `read` reads, and those of them whose
        pending pairs' sides it reads (see plan_read)."""
        orgs = sorted(domain.snapshot_orgs(read.affected, read.gone, read.wanted.values()))
        return orgs, sorted(read.affected - read.gone)

    def _plan_snapshot(self, read: ListsRead, snapshot: PlanSnapshot) -> ListsPlan:
        """The plan of lists as read_lists read them, with the stored pairs as `snapshot` holds them."""
        affected, gone, lists, wanted = read.affected, read.gone, read.lists, read.wanted
        let_go = domain.unlisted_pending(affected, gone, wanted, snapshot)
        sides = {pair_id: snapshot.sides[pair_id] for pair_id in let_go if pair_id in snapshot.sides}
        listed = {org: {c.id for c in candidates} for org, candidates in lists.items()}
        plan = domain.plan_lists(
            wanted, listed, snapshot, sides, affected, gone, self.max_pending, self.displace_margin
        )
        domain.add_reasons(plan.upserts, lists)
        return plan

    def _suggested(
        self, orgs: Sequence[str], passed: Mapping[str, frozenset[str]] | None = None
    ) -> dict[str, list[Suggestion]]:
        """Each organisation's best partners scoring at least min_score; where rejections bear on a
        list (its owner's, or its candidates'), chosen from a wider list of the engine's with their
        scores lowered. One not in the index raises KeyError. `passed`: see plan_read."""
        passed = passed or {}
        listed = {org: self._best(org, self.top_k, passed.get(org)) for org in orgs}
        if self.feedback_strength > 0:
            listed |= self._lowered(listed, passed=passed)
        return self._at_least_min(listed)

    def _at_least_min(self, listed: Mapping[str, list[Suggestion]]) -> dict[str, list[Suggestion]]:
        return {org: [s for s in found if s.score >= self.min_score] for org, found in listed.items()}

    @staticmethod
    def _asked(listed: Mapping[str, list[Suggestion]]) -> dict[str, set[str]]:
        """For each list not empty, its owner and partners: whose rejections bear on it."""
        return {org: {org, *(s.id for s in found)} for org, found in listed.items() if found}

    def _lowered(
        self,
        listed: Mapping[str, list[Suggestion]],
        dislikes: dict[str, list[str]] | None = None,
        passed: Mapping[str, frozenset[str]] | None = None,
    ) -> dict[str, list[Suggestion]]:
        """The lists on which rejections bear, chosen again from the engine's wider lists with their
        scores lowered (feedback.rerank): what was rejected is read for all of them at once (unless
        given: `dislikes`, read for every organisation of the lists)."""
        asked = self._asked(listed)
        if not asked:
            return {}
        seen = set().union(*asked.values())
        if dislikes is None:
            dislikes = self.state.dislikes_of(sorted(seen))
        bearing = [org for org, ids in asked.items() if ids & dislikes.keys()]
        if not bearing:
            return {}
        # the engine's wider list as it is: the lowering is relative to its least-alike candidate,
        # the same whatever this matcher knows of decided pairs or passes over (left out after)
        left_out = {org: self._left_out(org, (passed or {}).get(org)) for org in bearing}
        wider = {org: self.engine.top(org, WIDER_LIST * self.top_k + len(left_out[org])) for org in bearing}
        more = {s.id for org in bearing for s in wider[org]} - seen
        if more:
            dislikes.update(self.state.dislikes_of(sorted(more)))
        return {
            org: self._without(
                rerank(self.engine, org, wider[org], dislikes, self.feedback_strength, WIDER_LIST * self.top_k),
                left_out[org],
                self.top_k,
            )
            for org in bearing
        }

    def _top(self, org_id: str) -> list[Candidate]:
        """The organisation's list as a plan of it alone would now make it, passing over partners
        with no place (see plan_read): reads the stored pairs, writes none (but notes the decided
        pairs it meets in `decided_with`)."""
        if org_id not in self.clusters:
            raise KeyError(org_id)
        return self._planned(self.read_lists_of({org_id}))[1].lists[org_id]
