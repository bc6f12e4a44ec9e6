"""N matchers in one consumer group, each with the whole index (issue 17).

Every matcher reads `profiles` as a table (every partition, no group: the global table of Kafka
Streams) into its own in-memory index, and plans and writes only the events of the partitions
its group assigns it. Kafka decides who owns what; pair ids are deterministic and Redis's WATCH
serialises two matchers writing one pair. Does I/O (Kafka, Redis).

The weights follow the table, the same in every matcher: each learns them again in a thread of its
own (refresh_weights: the engine's reweigh holds the lock only to take the rows, catch up and
swap) once a share of its index has changed (the engine's reweigh_due), after writes pause (the
table quiet for `reweigh_quiet_s`) and at least every `reweigh_every_s` while it changes. Weights
depend only on the organisations indexed, so whenever writes pause every matcher learns the same
ones, whenever it started. After a refresh each matcher plans again with them the lists of the
organisations of the partitions the group assigns it (the consumer says which on each rebalance;
an organisation's partition is the table's, or its key's under the publishers' partitioner), one
at a time under the lock: together the N matchers plan every list once, and the suggestions end as
one matcher's with those weights would; a pair whose plan is unchanged is not written. Partitions
taken over after a refresh have their lists planned again too, as their former owner may have
stopped before. Until its list is planned again, a pending suggestion keeps the score and reasons
it was written with; while two matchers' weights differ, the last to plan a list wins, and the pass
after the last refresh settles it. A pending pair stays while either side's list held it when last
planned (the pair's record keeps which: domain.WANTED_BY), so one matcher's plan of one list, made
with older weights after the other matcher's last pass planned the other list, cannot take out a
pair that other list holds: each side is settled by its own list's last plan.

Two matchers may plan one organisation's list at the same moment, each from an index that lacks
the other's newest event. Each write checks, under its WATCH, the state's log of the profile events
applied against what this index held when the plan was made (SharedIndex.lacking): a plan that
missed one is not written, and is made again once the index holds it (_written_checked). So the
last write of a list is planned from an index holding every event applied before it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar, runtime_checkable

from partnermatch import events
from partnermatch.broker import BrokerWatch
from partnermatch.messaging import (
    FETCH_WAIT_MS,
    Assignment,
    BatchHandler,
    EventHandlers,
    KafkaPublisher,
    Record,
    TableReader,
    committed_offsets,
    key_partition,
    run_consumer,
)
from services.matcher.domain import IndexBehind, ListsPlan, RunApplied
from services.matcher.live import ListsRead, LiveMatcher, ProfilesRead

logger = logging.getLogger(__name__)

PROFILE_EVENTS = (events.PROFILE_UPSERTED, events.PROFILE_DELETED)
REPLAN_CHECK_EVERY = 100  # lists planned again after a refresh between two looks at whether a fifth changed
# While profile events flow, the pass after a refresh rests this many times as long as it worked
# on each list, so it takes at most a quarter of the time the events could use (at full speed it
# held the matcher to a third of its rate: bench/matchers.py, 2,000 indexed, 1,000 updates);
# once the table is quiet it plans at full speed.
REPLAN_REST = 3.0
# A refresh because a share of the index changed comes at least this many times as long after the
# last as that one's work took: learning the weights and planning every list again with them (at
# full speed, without the rests), so refreshes take at most about a tenth of the matcher's time.
# With a small index and many writes a share changes every few seconds (2,000 organisations, 50
# writes/s: a fifth in 8 s, and planning the 2,000 lists again takes some 16 s), and refreshing
# as often kept a matcher learning weights and planning lists again most of its time, rewriting
# most pending pairs each time. A pause in writes or the age of the weights (reweigh_every_s) is
# not held back by it: the weights are never older than reweigh_every_s.
REWEIGH_SPACING = 10.0
# A consumer that is behind plans and writes up to this many events of its partitions as one run:
# lists that several of them changed are planned and written once (at 2,000 organisations and 50
# writes/s, runs of 4-20 events wrote 60-90 pairs an event, runs of 200 some 16). Runs cut short by
# their work (some 150 ms, or half the age of their first event) cost 10-14 CPU ms an event where
# these cost 7, and the matcher fell behind at 50 writes/s: an event's wait for its run is the
# lesser harm.
RUN_RECORDS = 500
# A plan refused because the index lacked events another matcher applied meanwhile is made again
# once the index holds them, up to this many times in a row (each time another matcher applied
# more first); then the consumer retries the run (TableBehind).
PLAN_ATTEMPTS = 10

T = TypeVar("T")


@runtime_checkable
class Reweighing(Protocol):
    """What a shared index asks of its engine to keep the weights following the table
    (services/matcher/engine: MatchEngine)."""

    @property
    def changes_since_learnt(self) -> int: ...

    def reweigh_due(self) -> bool: ...

    def reweigh(self, hold: AbstractContextManager[object] | None = None) -> None: ...

    def weights_digest(self) -> str: ...


@runtime_checkable
class MadeLists(Protocol):
    """An engine that says which lists it holds made (services/matcher/engine: MatchEngine)."""

    @property
    def topk(self) -> Mapping[str, object]: ...


class TableBehind(Exception):
    """An event the group gave this matcher is not in its index yet; the consumer retries it."""


class SharedIndex:
    """The index one matcher keeps of the whole table, and the events of it the matcher owns.

    The table reader indexes every event (`index_record`), once per revision, and remembers whose
    lists it changed until the event's owner has planned them: the owner may be this matcher now or
    after a rebalance. The group's consumer hands over the events this matcher owns (`handle`):
    once the index holds the event, it plans the lists the event changed and applies the change
    with the revision check of the state, so a replay or a takeover writes nothing twice.
    """

    def __init__(
        self,
        live: LiveMatcher,
        wait_s: float = 10.0,
        forget_every: int = 1000,
        reweigh_quiet_s: float = 5.0,
        reweigh_every_s: float = 600.0,
        topic: str = "profiles",
    ) -> None:
        self.live = live
        self.topic = topic
        self.wait_s = wait_s
        self.forget_every = forget_every
        self.reweigh_quiet_s = reweigh_quiet_s
        self.reweigh_every_s = reweigh_every_s
        self.lock = threading.Lock()  # the engine and the maps below: the table and the consumer share them
        self.indexed = threading.Condition(self.lock)
        # One plan and its write at a time in this matcher (the consumer's runs, the lists planned
        # again, those that waited for a partner, the rejections), taken before `lock`: a plan is
        # written before a later one of this matcher is made, and none of this matcher's writes
        # restarts another's transaction (their WATCH). The table reader never takes it, so it
        # indexes while a plan is being written.
        self.writing = threading.Lock()
        self.revisions: dict[str, int] = {}  # org id -> revision the index holds (deleted ones too)
        self.unplanned: dict[str, tuple[int, set[str]]] = {}  # org id -> (revision, lists changed since planned)
        self._since_forget = 0
        self._last_indexed = self._learnt_at = time.monotonic()
        self._learning_s = 0.0  # how long the last refresh took to learn the weights
        self._list_s = 0.0  # the work of planning one list again, as the last pass went (rests left out)
        self._replanning_s = 0.0  # the work of the last refresh's pass, had it planned every list
        self._last_owned = 0.0  # when the group's consumer last handed this matcher a profile event
        # The partitions of the table the group assigns this matcher (None: not told yet, so every
        # list is its to plan again), how many there are, and each organisation's partition as
        # the table gave it (others: where the publishers' partitioner sends their key).
        self.held: frozenset[int] | None = None
        self.partitions = 0
        self.partition_of: dict[str, int] = {}
        self._refreshed = False  # the weights were learnt again since start
        self._gained: set[int] = set()  # partitions taken over since, whose lists wait to be planned again
        # The state's applied log up to which the index holds every event (domain.IndexCheck), and
        # while a plan is being made, the revision the index held, when the plan began, of each
        # organisation indexed since (None: no plan being made).
        self.log_position = 0
        self._indexed_while_planning: dict[str, int] | None = None
        live.index_check = self

    def load(self) -> int:
        """Rebuild the index from the state. The revisions are read before the profiles, so each is at
        most the one the index holds: an event read again is indexed again (harmless), never skipped;
        the applied log's position before both, so the index holds every event applied up to it."""
        self._holds_what_is_applied()
        return self.live.load()

    @classmethod
    def over(cls, live: LiveMatcher, **settings: Any) -> SharedIndex:
        """A shared index of a live matcher whose index holds every event applied in its state (it
        loaded the state and applied every event since itself), as one alone does: its lists can be
        planned again (refresh_weights, replan_lists) without a table reader."""
        shared = cls(live, **settings)
        shared._holds_what_is_applied()
        return shared

    def _holds_what_is_applied(self) -> None:
        self.log_position = self.live.state.applied_position()
        self.revisions = self.live.state.applied_revisions()

    # ---- the table's side -------------------------------------------------------------------

    def index_record(self, record: Record) -> None:
        try:
            envelope = events.decode(record.value)
        except events.UndecodableEvent:
            return  # the group's consumer sends it to the dead-letter topic
        if envelope.event_type not in PROFILE_EVENTS:
            return
        org_id, revision = envelope.payload["org_id"], int(envelope.payload["revision"])
        with self.indexed:
            if revision <= self.revisions.get(org_id, 0):
                return
            changed = self.live.index(envelope)
            if self._indexed_while_planning is not None:
                self._indexed_while_planning.setdefault(org_id, self.revisions.get(org_id, 0))
            self.partition_of[org_id] = record.partition
            self._last_indexed = time.monotonic()
            self.revisions[org_id] = revision
            self.unplanned[org_id] = (revision, self.unplanned.get(org_id, (0, set()))[1] | changed)
            self.indexed.notify_all()
            self._since_forget += 1
            due = self._since_forget >= self.forget_every and len(self.unplanned) >= self.forget_every
        if due:
            self._forget_applied()

    def _forget_applied(self) -> None:
        """Drop what is remembered for events their owners (other matchers, mostly) have applied."""
        self._since_forget = 0
        with self.lock:
            remembered = {org: revision for org, (revision, _) in self.unplanned.items()}
        applied = self.live.state.applied_revisions(remembered)
        with self.lock:
            for org, revision in applied.items():
                if org in self.unplanned and self.unplanned[org][0] <= revision:
                    del self.unplanned[org]

    # ---- the weights -------------------------------------------------------------------------

    def keep_weights_fresh(self, stop: threading.Event, check_s: float = 0.5) -> None:
        """Learn the weights again whenever they are due (weights_due), until told to stop; runs in
        a thread of its own beside the table reader and the group's consumer. Between refreshes,
        plans again the lists of the partitions this matcher took over since the last (their former
        owner may have stopped before planning them with the weights both learnt)."""
        while not stop.wait(check_s):
            if self.weights_due():
                self.refresh_weights(stop)
            elif self._gained:
                self.replan_taken_over(stop)

    def note_assignment(self, assignment: Assignment) -> None:
        """The group's consumer holds these partitions now (run_consumer's on_assignment)."""
        held = assignment.held.get(self.topic, frozenset())
        with self.lock:
            self.partitions = assignment.partitions.get(self.topic, 0) or self.partitions
            if self._refreshed and self.held is not None:
                self._gained |= held - self.held
            self.held = held
        logger.info("partitions assigned", extra={"topic": self.topic, "held": ",".join(map(str, sorted(held)))})

    def owned_lists(self, partitions: frozenset[int] | None = None) -> list[str]:
        """The organisations indexed in these partitions (default: those this matcher holds; every
        one before the group has said), whose lists this matcher plans again, in order."""
        with self.lock:
            chosen = self.held if partitions is None else partitions
            if chosen is None or not self.partitions:
                return sorted(self.live.clusters)
            count = self.partitions
            known = [(org, self.partition_of.get(org)) for org in self.live.clusters]
        # The key's partition of those the table has not given one (loaded from the state at start)
        # is worked out without the lock: some 4 µs each, seconds at a million held from the events.
        return sorted(org for org, found in known if (key_partition(org, count) if found is None else found) in chosen)

    def replan_taken_over(self, stop: threading.Event | None = None) -> int:
        with self.lock:
            gained, self._gained = frozenset(self._gained), set()
        return self.replan_lists(self.owned_lists(gained), stop)

    def weights_due(self) -> bool:
        """The index changed since the weights were learnt, and a share of it has (the engine's
        reweigh_due; spaced, see REWEIGH_SPACING), or the table has been quiet for
        reweigh_quiet_s, or they are reweigh_every_s old: the last keeps them following a table
        that never pauses."""
        now = time.monotonic()
        with self.lock:
            engine = self._engine()
            if not engine.changes_since_learnt:
                return False
            return (
                self._share_due(now)
                or now - self._last_indexed >= self.reweigh_quiet_s
                or now - self._learnt_at >= self.reweigh_every_s
            )

    def _share_due(self, now: float) -> bool:
        """A share of the index changed since the weights were learnt, and the last refresh is
        REWEIGH_SPACING times its work behind (learning, and planning the lists again); under the lock."""
        spacing = REWEIGH_SPACING * (self._learning_s + self._replanning_s)
        return self._engine().reweigh_due() and now - self._learnt_at >= spacing

    def refresh_weights(self, stop: threading.Event | None = None) -> None:
        """Learn the weights again from the index (beside the event path: the lock is held only
        to take the rows, catch up and swap), then plan again with them the lists of the
        partitions this matcher holds: each matcher those of its own, so together every list once
        (the lists of partitions taken over meanwhile are planned once the pass ends)."""
        began = time.monotonic()
        self._engine().reweigh(hold=self.lock)
        self._learnt_at = time.monotonic()
        self._learning_s = self._learnt_at - began
        with self.lock:
            self._refreshed = True
            self._gained.clear()
        orgs = self.owned_lists()
        self.replan_lists(orgs, stop)
        self._replanning_s = self._list_s * len(orgs)

    def replan_lists(self, orgs: list[str], stop: threading.Event | None = None) -> int:
        """Plan these organisations' lists again as the index holds them now, one list per hold of
        the lock; how many were. Besides the suggestions, this caches every list again (a swap drops
        them), so an event again finds every list it enters or leaves. Stops between two lists when
        told to, or when a fifth of the index has changed since the weights were learnt and the next
        refresh is due (it plans every list with the new ones; a pause or the age of the weights
        waits for the pass to end); the lists not planned keep their suggestions until an event or a refresh
        plans them. While profile events flow the pass yields to them (REPLAN_REST)."""
        started = time.monotonic()
        with self.lock:
            weights = self._engine().weights_digest()
        suggested = withdrawn = planned = 0
        working = 0.0
        for org_id in orgs:
            if stop is not None and stop.is_set():
                break
            if planned and planned % REPLAN_CHECK_EVERY == 0 and self._fifth_changed():
                break
            with self.writing:
                began = time.monotonic()
                try:
                    plan = self._written_checked(functools.partial(self._write_lists_of, {org_id}))
                except TableBehind as behind:
                    logger.warning("planning the lists again stopped: %s", behind, extra={"org_id": org_id})
                    break
                worked = time.monotonic() - began
            planned += 1
            working += worked
            if self._events_flowing():
                rest = REPLAN_REST * worked
                if stop is not None:
                    stop.wait(rest)
                else:
                    time.sleep(rest)
            suggested, withdrawn = suggested + len(plan.upserts), withdrawn + len(plan.withdrawals)
        if planned:
            self._list_s = working / planned
        logger.info(
            "lists planned again with the new weights",
            extra={
                "orgs": planned,
                "of": len(orgs),
                "suggested": suggested,
                "withdrawn": withdrawn,
                "weights": weights,
                "seconds": round(time.monotonic() - started, 2),
                "working_s": round(working, 2),
            },
        )
        return planned

    def _events_flowing(self) -> bool:
        """A profile event was indexed, or handed to this matcher to plan, within the quiet time that
        starts a refresh: the table reader indexes a burst long before the consumer has planned it."""
        return time.monotonic() - max(self._last_indexed, self._last_owned) < self.reweigh_quiet_s

    def _fifth_changed(self) -> bool:
        with self.lock:
            return self._share_due(time.monotonic())

    def _engine(self) -> Reweighing:
        engine = self.live.engine
        if not isinstance(engine, Reweighing):
            raise TypeError(f"{type(engine).__name__} cannot learn its weights again beside the event path")
        return engine

    # ---- the owner's side -------------------------------------------------------------------

    def handlers(self, others: EventHandlers) -> EventHandlers:
        """The table of the group's consumer: a profile event is planned and applied here (handle_owned);
        the handlers of the other event types run under the locks, since they may read the index and
        write pairs too."""
        return {
            event_type: functools.partial(self._locked, handler) for event_type, handler in others.items()
        } | dict.fromkeys(PROFILE_EVENTS, self.handle_owned)

    def _locked(self, handler: Callable[[events.Envelope], object], envelope: events.Envelope) -> object:
        """A handler run under both locks; the lists it writes (a decision's) are checked against the
        events applied (the live matcher's index_check), and on IndexBehind it runs again, the lock
        let go while the table reader catches up (it writes once: a lesson is applied once)."""
        with self.writing:
            return self._written_checked(functools.partial(self._under_lock, handler, envelope))

    def _under_lock(self, handler: Callable[[events.Envelope], object], envelope: events.Envelope) -> object:
        with self.lock:
            self._plan_begins()
            return handler(envelope)

    def handle_owned(self, envelope: events.Envelope) -> bool:
        """Plan and apply one owned profile event (see handle_owned_run); False when it was applied
        before (a replay, or a takeover reading what the former owner did not commit) or when a
        later revision of the organisation is indexed already (that event plans for both)."""
        return envelope.payload["org_id"] in self.handle_owned_run([envelope])

    def handle_owned_run(self, envelopes: Sequence[events.Envelope]) -> set[str]:
        """Plan and apply a run of owned profile events (the consumer's batch: one partition's, in
        order) once the index holds them: the lists they changed planned once, together, and applied
        in one transaction with the revision check of the state, so a replay or a takeover writes
        nothing twice. Of an organisation's events only the latest counts, and one whose organisation
        has a later revision indexed already is left to that event (it plans for both). The lists that
        wanted these organisations before their profiles were applied (the state's AWAITING) are
        planned in the same plan, which makes them known; those that came to wait for them while it was
        made are planned after it (_plan_awaiting). The index's lock is held to read the lists, not
        the stored pairs (LiveMatcher.read_profiles): the table reader indexes meanwhile. Returns the
        organisations whose events were applied now."""
        self._last_owned = time.monotonic()
        latest: dict[str, events.Envelope] = {}
        for envelope in envelopes:
            org_id = envelope.payload["org_id"]
            if org_id not in latest or _revision(envelope) > _revision(latest[org_id]):
                latest[org_id] = envelope
        # the lists waiting for them and their partners are read with the revisions (one round
        # trip), a replayed one's too
        reads = self.live.state.run_reads(sorted(latest))
        applied_before, waiting = reads.revisions, reads.waiting
        replayed = {org: applied_before[org] for org, e in latest.items() if _revision(e) <= applied_before.get(org, 0)}
        for org, revision in replayed.items():
            self._planned(org, revision)
        wanted = {org: _revision(e) for org, e in latest.items() if org not in replayed}
        waiting = {org: orgs for org, orgs in waiting.items() if org in wanted}
        applied: set[str] = set()
        still_waiting: Mapping[str, set[str]] = {}
        if wanted:
            with self.indexed:
                self._wait_until_indexed(wanted, "not in the index at their revisions")
            with self.writing:
                current, done = self._written_checked(
                    functools.partial(self._write_run, latest, wanted, waiting, reads.partners)
                )
            if done is not None:
                applied, still_waiting = done.applied, done.waiting
            for envelope in current:
                self._planned(envelope.payload["org_id"], _revision(envelope))
        # a replay too: this matcher may replace one that stopped before planning them
        self._plan_awaiting(still_waiting, sorted(replayed))
        return applied

    def _write_run(
        self,
        latest: Mapping[str, events.Envelope],
        wanted: Mapping[str, int],
        waiting: Mapping[str, set[str]],
        partners: Mapping[str, set[str]],
    ) -> tuple[list[events.Envelope], RunApplied | None]:
        """handle_owned_run's plan and write (under `writing`; see _written_checked): the events whose
        revisions the index holds still, and what applying them did (None: none to apply)."""
        with self.lock:
            self._plan_begins()
            current = [latest[org] for org in sorted(wanted) if self.revisions[org] == wanted[org]]
            changed = set().union(*(self.unplanned.get(e.payload["org_id"], (0, set()))[1] for e in current))
            changed |= set().union(*(waiting.get(e.payload["org_id"], set()) for e in current))
            changed |= self._unmade_partner_lists(current, partners)
            # lists changed by events indexed since may name organisations deleted meanwhile
            affected = {org for org in changed if org in self.live.clusters}
            read = self.live.read_profiles(current, affected, rejections_later=True) if current else None
        if read is None:
            return current, None
        # the stored pairs are read without the index's lock: the table reader indexes meanwhile
        change = self.live.plan_profiles_read(read, functools.partial(self._relisted, read))
        change.known_partners_only = True
        change.forget_waiting = {org: orgs & affected for org, orgs in waiting.items()}
        change.checked = self
        return current, self.live.apply_profiles(change)

    def _write_lists_of(self, orgs: set[str]) -> ListsPlan:
        """Plan these organisations' lists as the index holds them now and write the plan (under
        `writing`; see _written_checked)."""
        with self.lock:
            self._plan_begins()
            read = self.live.read_lists_of(orgs, rejections_later=True)
        plan = self.live.plan_read(read, functools.partial(self._relisted, read))
        plan.checked = self
        self.live.state.apply_pairs(plan)
        return plan

    # ---- the check of a write against the events applied (domain.IndexCheck) ------------------

    def _plan_begins(self) -> None:
        """Under the lock, as a plan reads the index for the first time: from now on the table reader
        notes the revision the index held of each organisation it indexes (lacking's view)."""
        self._indexed_while_planning = {}

    def lacking(self, applied: Mapping[str, int]) -> dict[str, int]:
        """Of these revisions applied (by any matcher), those the index did not hold when the plan
        being written began: the state's write refuses the plan then (domain.IndexBehind).

        Read without the lock, as a decision's write asks it with the lock held (_locked). It errs
        only towards refusing: the table reader notes an organisation's former revision before it
        records the new one, and records that only once the index holds it."""
        before = self._indexed_while_planning or {}
        return {
            org: revision for org, revision in applied.items() if before.get(org, self.revisions.get(org, 0)) < revision
        }

    def _written_checked(self, plan_and_write: Callable[[], T]) -> T:
        """Make a plan and write it (the function does both, under `writing`); when the write finds
        the index lacked events applied meanwhile (another matcher's), wait for the table reader
        to index them and make the plan again, up to PLAN_ATTEMPTS times; TableBehind if the index
        does not get them within wait_s, or other matchers keep applying more first."""
        try:
            for _ in range(PLAN_ATTEMPTS):
                try:
                    return plan_and_write()
                except IndexBehind as behind:
                    self._catch_up(behind.lacking)
            raise TableBehind(f"other matchers applied events this index lacked {PLAN_ATTEMPTS} times in a row")
        finally:
            with self.lock:
                self._indexed_while_planning = None

    def _catch_up(self, lacking: Mapping[str, int] | None) -> None:
        """Wait until the index holds these revisions (None: every revision applied, read from the
        state, after the log's position: the index then holds every event up to that position)."""
        position = None
        if lacking is None:
            position = self.live.state.applied_position()
            applied = self.live.state.applied_revisions()
            with self.lock:  # waited for below are only those the index is behind on
                lacking = {org: rev for org, rev in applied.items() if self.revisions.get(org, 0) < rev}
        logger.info(
            "a plan missed events another matcher applied: planning again once the index holds them",
            extra={"orgs": len(lacking), "from_the_whole_state": position is not None},
        )
        with self.indexed:
            self._wait_until_indexed(lacking, "applied elsewhere, not indexed")
            if position is not None:
                self.log_position = position

    def _wait_until_indexed(self, revisions: Mapping[str, int], what: str) -> None:
        """Under `indexed`: wait until the index holds these revisions, or TableBehind after wait_s,
        naming (some of) those it does not hold and `what` that means."""
        if not self.indexed.wait_for(
            lambda: all(self.revisions.get(org, 0) >= revision for org, revision in revisions.items()),
            timeout=self.wait_s,
        ):
            behind = sorted(org for org, revision in revisions.items() if self.revisions.get(org, 0) < revision)
            raise TableBehind(f"{', '.join(behind[:10])}: {what} after {self.wait_s} s")

    def _unmade_partner_lists(self, current: Sequence[events.Envelope], partners: Mapping[str, set[str]]) -> set[str]:
        """The partners in pending pairs of these events' organisations whose lists the index holds
        no made list of (under the lock). A pending pair stays while either side's list held it when
        last planned (domain.wanted_by); the index reports an event's organisation as having left
        or changed in a list only where that list is made (cached), and after a start or a refresh
        of the weights none is, nor, in one of N matchers, the lists of others' partitions it never
        planned. Unless planned with the event, such a partner's list would keep, until planned for
        another reason, a pair scored and explained with the organisation's old texts, or one it
        would no longer hold. Each list made so is kept made: once per partner and refresh."""
        if not any(e.payload["org_id"] in partners for e in current):
            return set()
        engine = self.live.engine
        made: Mapping[str, object] = engine.topk if isinstance(engine, MadeLists) else {}
        return {
            partner
            for e in current
            for partner in partners.get(e.payload["org_id"], ())
            if partner not in made and partner in self.live.clusters
        }

    def _plan_awaiting(self, known: Mapping[str, set[str]], replayed: Sequence[str] = ()) -> None:
        """Plan again the lists that wanted these organisations before their profiles were applied
        (they left them out then, see the state's AWAITING): after their events are applied, as the
        transaction applying them read them (`known`), or found applied (`replayed`, read here)."""
        waiting = {**known, **(self.live.state.awaiting(replayed) if replayed else {})}
        if not waiting:
            return
        with self.writing:
            plan = self._written_checked(functools.partial(self._write_lists_of, set().union(*waiting.values())))
        for org_id, orgs in waiting.items():
            self.live.state.forget_awaiting(org_id, orgs)
        logger.info(
            "lists that waited for a partner planned",
            extra={
                "org_ids": ",".join(sorted(waiting)),
                "orgs": len(set().union(*waiting.values())),
                "suggested": len(plan.upserts),
                "withdrawn": len(plan.withdrawals),
            },
        )

    def _relisted(
        self,
        read: ListsRead | ProfilesRead,
        dislikes: Mapping[str, list[str]] | None,
        passed: Mapping[str, frozenset[str]],
    ) -> ListsRead:
        """The lists of `read` read again under the lock, with the rejections that bear on them
        (LiveMatcher.plan_read's `relist`, where one does, or where a decided pair held a place, or
        to pass over the partners in `passed`).
        The rejections read without the lock are not reused: the index may have changed the lists
        since, so they are read again under it, as they are only where one bears. Those deleted
        since are left out."""
        lists = read.lists if isinstance(read, ProfilesRead) else read
        with self.lock:
            affected = {org for org in lists.affected if org in self.live.clusters}
            # with no rejections read (a decided pair or a pass), they are read with the next snapshot
            # out of the lock, as the first read's were
            return self.live.read_lists(affected, lists.gone, dislikes is None, passed=passed)

    def _planned(self, org_id: str, revision: int) -> None:
        with self.lock:
            if org_id in self.unplanned and self.unplanned[org_id][0] <= revision:
                del self.unplanned[org_id]


def _revision(envelope: events.Envelope) -> int:
    return int(envelope.payload["revision"])


def run_matcher(
    live: LiveMatcher,
    *,
    bootstrap: str,
    profiles_topic: str,
    topics: list[str],
    group_id: str,
    client_id: str,
    handlers: EventHandlers,
    publisher: KafkaPublisher,
    stop: threading.Event,
    watch: Callable[[str], BrokerWatch] | None = None,
    reweigh_quiet_s: float = 5.0,
    reweigh_every_s: float = 600.0,
    fetch_wait_ms: int = FETCH_WAIT_MS,
) -> None:
    """One matcher of the group: the table reader and the weights' refresher in threads, the
    group's consumer in this one.

    `handlers` is the table for the events other than profiles' (see SharedIndex.handlers).

    The table starts where the group has committed: every event before those offsets is applied
    in the state the index is rebuilt from, so the offsets are read first and the state after.
    """
    start = committed_offsets(bootstrap, group_id, profiles_topic)
    shared = SharedIndex(live, reweigh_quiet_s=reweigh_quiet_s, reweigh_every_s=reweigh_every_s, topic=profiles_topic)
    shared.load()
    reader = TableReader(
        bootstrap,
        profiles_topic,
        shared.index_record,
        client_id=f"{client_id}-table",
        start=start,
        watch=watch(f"{client_id}-table") if watch else None,
        fetch_wait_ms=fetch_wait_ms,
    )

    def read_table() -> None:
        try:
            reader.run(stop)
        except Exception:
            logger.exception("the table reader failed: stopping this matcher, to be started again")
            stop.set()

    def refresh_weights() -> None:
        try:
            shared.keep_weights_fresh(stop)
        except Exception:
            logger.exception("the weights' refresher failed: stopping this matcher, to be started again")
            stop.set()

    thread = threading.Thread(target=read_table, name="profiles-table", daemon=True)
    thread.start()
    refresher = threading.Thread(target=refresh_weights, name="weights", daemon=True)
    refresher.start()
    try:
        run_consumer(
            bootstrap=bootstrap,
            topics=topics,
            group_id=group_id,
            client_id=client_id,
            handlers=shared.handlers(handlers),
            publisher=publisher,
            stop=stop,
            watch=watch(client_id) if watch else None,
            on_assignment=shared.note_assignment,
            batch=BatchHandler(frozenset(PROFILE_EVENTS), shared.handle_owned_run),
            max_poll_records=RUN_RECORDS,
            fetch_wait_ms=fetch_wait_ms,
        )
    finally:
        stop.set()
        thread.join(15)
        refresher.join(15)
