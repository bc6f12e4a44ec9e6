"""N matchers in one consumer group, each with the whole index (issue 17).

Every matcher reads `profiles` as a table (every partition, no group: the global table of Kafka
Streams) into its own in-memory index, and plans and writes only the events of the partitions
its group assigns it. Kafka decides who owns what; pair ids are deterministic and Redis's WATCH
serialises two matchers writing one pair. Does I/O (Kafka, Redis).

Not yet shared: the weights. Each matcher learns them from the profiles it holds when it starts
and again after many changes (the engine's reweigh), so matchers started at different times can
score one pair a little differently until the weights follow one corpus (issue 17 item 2).

A gap left open: two matchers planning one organisation's list at the same moment, each with an
index that lacks the other's newest event, can leave that list as neither index now has it, until
the list changes again. Closing it takes the apply checking, under its WATCH, that the index held
every event applied so far (applied offsets per partition in the state), and planning again if not.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

from partnermatch import events
from partnermatch.broker import BrokerWatch
from partnermatch.messaging import EventHandlers, KafkaPublisher, Record, TableReader, committed_offsets, run_consumer
from services.matcher.live import LiveMatcher

logger = logging.getLogger(__name__)

PROFILE_EVENTS = (events.PROFILE_UPSERTED, events.PROFILE_DELETED)


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

    def __init__(self, live: LiveMatcher, wait_s: float = 10.0, forget_every: int = 1000) -> None:
        self.live = live
        self.wait_s = wait_s
        self.forget_every = forget_every
        self.lock = threading.Lock()  # the engine and the maps below: the table and the consumer share them
        self.indexed = threading.Condition(self.lock)
        self.revisions: dict[str, int] = {}  # org id -> revision the index holds (deleted ones too)
        self.unplanned: dict[str, tuple[int, set[str]]] = {}  # org id -> (revision, lists changed since planned)
        self._since_forget = 0

    def load(self) -> int:
        """Rebuild the index from the state. The revisions are read before the profiles, so each is at
        most the one the index holds: an event read again is indexed again (harmless), never skipped."""
        self.revisions = self.live.state.applied_revisions()
        return self.live.load()

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

    # ---- the owner's side -------------------------------------------------------------------

    def handlers(self, others: EventHandlers) -> EventHandlers:
        """The table of the group's consumer: a profile event is planned and applied here (handle_owned);
        the handlers of the other event types run under the lock, since they may read the index too."""
        return {
            event_type: functools.partial(self._locked, handler) for event_type, handler in others.items()
        } | dict.fromkeys(PROFILE_EVENTS, self.handle_owned)

    def _locked(self, handler: Callable[[events.Envelope], object], envelope: events.Envelope) -> object:
        with self.lock:
            return handler(envelope)

    def handle_owned(self, envelope: events.Envelope) -> bool:
        """Plan and apply an owned profile event once the index holds it; False when it was applied
        before (a replay, or a takeover reading what the former owner did not commit) or when a
        later revision of the organisation is indexed already (that event plans for both)."""
        org_id, revision = envelope.payload["org_id"], int(envelope.payload["revision"])
        applied_before = self.live.state.applied_revision(org_id)
        if revision <= applied_before:
            self._planned(org_id, applied_before)
            self._plan_awaiting(org_id)  # this matcher may replace one that stopped before doing it
            return False
        with self.indexed:
            if not self.indexed.wait_for(lambda: self.revisions.get(org_id, 0) >= revision, timeout=self.wait_s):
                raise TableBehind(f"{org_id} revision {revision} is not in the index after {self.wait_s} s")
            if self.revisions[org_id] > revision:
                return False
            _, changed = self.unplanned.get(org_id, (revision, set()))
            # lists changed by events indexed since may name organisations deleted meanwhile
            change = self.live.plan(envelope, {org for org in changed if org in self.live.clusters})
        change.known_partners_only = True
        applied = self.live.apply(change)
        self._planned(org_id, revision)
        self._plan_awaiting(org_id)
        return applied

    def _plan_awaiting(self, org_id: str) -> None:
        """Plan again the lists that wanted this organisation before its profile was applied (they
        left it out then, see the state's AWAITING); after its event is applied, or found applied."""
        waiting = self.live.state.awaiting(org_id)
        if not waiting:
            return
        with self.lock:
            upserts, withdrawals = self.live.plan_lists(waiting)
        self.live.state.apply_pairs(upserts, withdrawals)
        self.live.state.forget_awaiting(org_id, waiting)
        logger.info(
            "lists that waited for a partner planned",
            extra={"org_id": org_id, "orgs": len(waiting), "suggested": len(upserts), "withdrawn": len(withdrawals)},
        )

    def _planned(self, org_id: str, revision: int) -> None:
        with self.lock:
            if org_id in self.unplanned and self.unplanned[org_id][0] <= revision:
                del self.unplanned[org_id]


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
) -> None:
    """One matcher of the group: the table reader in a thread, the group's consumer in this one.

    `handlers` is the table for the events other than profiles' (see SharedIndex.handlers).

    The table starts where the group has committed: every event before those offsets is applied
    in the state the index is rebuilt from, so the offsets are read first and the state after.
    """
    start = committed_offsets(bootstrap, group_id, profiles_topic)
    shared = SharedIndex(live)
    shared.load()
    reader = TableReader(
        bootstrap,
        profiles_topic,
        shared.index_record,
        client_id=f"{client_id}-table",
        start=start,
        watch=watch(f"{client_id}-table") if watch else None,
    )

    def read_table() -> None:
        try:
            reader.run(stop)
        except Exception:
            logger.exception("the table reader failed: stopping this matcher, to be started again")
            stop.set()

    thread = threading.Thread(target=read_table, name="profiles-table", daemon=True)
    thread.start()
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
        )
    finally:
        stop.set()
        thread.join(15)
