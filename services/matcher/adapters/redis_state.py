"""The matcher's own Redis state: applied profiles, suggested pairs, their review state, the outbox.

A repository: it reads what the rules (services/matcher/domain.py) need (a snapshot of the pending
pairs, a pair held for update) and saves the steps they return. Every change a profile event
causes (profile, pairs, events) is written in one MULTI guarded by WATCH, and so is every
coordinator decision: a pair leaves `pending` exactly once and emits exactly one event. A withdrawn
pair's record is deleted (its event says why); records earlier versions kept of withdrawn pairs are
deleted once, at the first start (drop_withdrawn_pairs). Does I/O (Redis).

A write of many pairs does not WATCH each pair: redis-server 7.0's WATCH costs time quadratic in the
keys it names (bench/redis_watch.py: 19,000 keys hold the server for 1.6 s, every client waiting), and
a matcher's run reads thousands. It watches PAIRS_WRITTEN, a counter every transaction that writes a
pair increments, with REVISIONS: any pair written by anyone between its read and its MULTI/EXEC
starts it again, as a WATCH of that pair did (and so does a pair it did not read: rarer than a
profile applied, which restarts it anyway). A decision still watches its one pair.

With N matchers each plans lists from an index of its own, which may lack an event another matcher
has just applied. Every transaction applying profile events adds an entry to an applied log, and a
matcher's write (apply_profiles, apply_pairs) reads the entries after the position its index is
known to hold, under the same WATCH: if the index lacked one when the plan was made, nothing is
written (IndexBehind) and the matcher plans again once its index holds it (table.py).

Every key shares the hash tag `{matcher}`: a profile event's MULTI writes the global revisions,
pairs with many partners and their clusters' and organisations' lists, and the outbox, so on
Redis Cluster the whole state is one slot (one node; see bench/redis_memory.py). Keys written
before the tag (`matcher:…`) are moved once by `adopt_untagged_keys`; page sessions
(adapters/page_sessions.py) are single keys and stay where they are.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

import hiredis
import orjson
import redis

from partnermatch import events
from partnermatch.outbox import Outbox
from partnermatch.redis_client import DirectCommands, adopt_untagged_keys, script_in_batches
from partnermatch.topics import MATCH_DECISIONS, MATCHES
from services.matcher import domain
from services.matcher.adapters.page_sessions import PAGE_SESSION
from services.matcher.domain import (
    Ballot,
    DecisionRefused,
    IndexBehind,
    IndexCheck,
    ListsPlan,
    PairRecord,
    PairSaved,
    PairWrite,
    PlanSnapshot,
    ProfileChange,
    ProfilesChange,
    RunApplied,
    RunReads,
    other_of,
)
from services.matcher.feedback import dislikes_in

logger = logging.getLogger(__name__)

P = "{matcher}:"  # one hash tag: on Redis Cluster every key is in one slot (see the top)
UNTAGGED_PREFIX = "matcher:"  # where the keys were before they had a hash tag
REVISIONS = P + "revisions"  # org id -> last applied revision (upserts and deletes)
PROFILE = P + "profile:"  # org id -> the profile payload the index holds
PROFILES = P + "profiles"  # set of org ids with a current profile
PAIR = P + "pair:"  # pair id -> json record
PAIRS_WRITTEN = P + "pairs:written"  # a counter every transaction writing a pair increments (see the top)
DECIDED = P + "decided"  # set of pair ids approved or rejected: never suggested again
PENDING_BY_CLUSTER = P + "pending:cluster:"  # cluster -> zset pair id by score
PENDING_BY_ORG = P + "pending:org:"  # org -> zset pair id by score
# the pending pairs a cluster has approved (domain.approved): a plan keeps them (KEPT_WHEN_APPROVED);
# filled once from the records approved before the set existed (mark_approved_pending)
APPROVED_PENDING = P + "pending:approved"
APPROVED_MARKED = P + "pending:approved:marked"
HISTORY = P + "history:cluster:"  # cluster -> zset pair id by decision time
HISTORY_BY_ORG = P + "history:org:"  # org -> zset pair id by decision time
# Set once every pair decided before HISTORY_BY_ORG existed has been indexed there too.
HISTORY_BY_ORG_BUILT = P + "history:org:built"
WITHDRAWN_DROPPED = P + "withdrawn:dropped"  # set once the records earlier versions kept of withdrawn pairs are gone
WITHDRAWN_LOCK = P + "withdrawn:dropping"  # held by the matcher deleting them (drop_withdrawn_pairs)
WITHDRAWN_LOCK_S = 3600
# org -> set of partners its cluster's coordinator rejected for a teaching reason (feedback.py)
DISLIKES = P + "dislikes:org:"
# Set once every pair decided before DISLIKES existed has been indexed there too.
DISLIKES_BUILT = P + "dislikes:built"
LESSONS = P + "lessons"  # pair ids whose decision has been applied to the lists (once)
# org id -> organisations whose lists want it as a partner before its profile is applied here: one
# matcher's index can be ahead of what the owners of other partitions have applied (table.py)
AWAITING = P + "awaiting:"
# The log of the profile events applied (issue 17, N matchers): an entry "revision org-id" for each,
# at the next position (how many were applied before it and it); the last APPLIED_LOG_KEPT are kept
# (some 2 MB). A matcher's write checks against it that the index its plan was made from held every
# event applied by then (domain.IndexCheck), or writes nothing (IndexBehind).
APPLIED_POSITION = P + "applied:position"
APPLIED_LOG = P + "applied:log"
APPLIED_LOG_KEPT = 50_000
PRODUCER = "matcher"

# The reads a plan makes, each in one command however many organisations it names (a pipeline of
# one command per organisation cost the event path more than its other Redis work): the pending
# pairs of each organisation (KEYS but the last) with their scores, which of the pairs named in ARGV
# (ARGV[2] of them, after the prefix of a pair's key) are decided (the last KEY), and the records of
# the pending pairs of the organisations whose places in KEYS follow in ARGV that are not among
# those named (the pairs a plan may let go; see RedisMatcherState.snapshot). Those records' keys are
# made here from the prefix, not passed in KEYS: they are not known before the pending pairs are
# read, and share the hash tag of every key of the matcher, so on a cluster they are in this slot.
# Then, of all the pending pairs read, those in the set of approved ones (the KEY before the last).
# And the members of each set in KEYS.
_PENDING_AND_DECIDED = """
local prefix, count = ARGV[1], tonumber(ARGV[2])
local found, approved, seen = {}, {}, {}
for i = 1, #KEYS - 2 do
  found[i] = redis.call('ZRANGE', KEYS[i], 0, -1, 'WITHSCORES')
  for j = 1, #found[i], 2 do
    local id = found[i][j]
    if not seen[id] then
      seen[id] = true
      if redis.call('SISMEMBER', KEYS[#KEYS - 1], id) == 1 then
        approved[#approved + 1] = id
      end
    end
  end
end
local decided, named = {}, {}
for i = 1, count do
  decided[i] = redis.call('SISMEMBER', KEYS[#KEYS], ARGV[2 + i])
  named[ARGV[2 + i]] = true
end
local records = {}
for i = count + 3, #ARGV do
  local listed = found[tonumber(ARGV[i])]
  for j = 1, #listed, 2 do
    local id = listed[j]
    if not named[id] then
      named[id] = true
      records[#records + 1] = redis.call('GET', prefix .. id)
    end
  end
end
found[#KEYS - 1] = decided
found[#KEYS] = records
found[#KEYS + 1] = approved
return found
"""
# What a write of pairs reads under its WATCH (see _read_watched): the applied revisions in KEYS[1]
# (REVISIONS) of the ARGV[2] organisations that follow it, which organisations of the rest of ARGV
# have a profile (KEYS[2], PROFILES), the pairs (KEYS[5..]), and unless ARGV[1] is empty the applied
# log (KEYS[3], its position, and KEYS[4], its entries) after position ARGV[1]: the position now and
# the entries since, false in their place when the log no longer keeps them all (or the position is
# behind ARGV[1]: the state was emptied).
_WATCHED_READS = """
local count = tonumber(ARGV[2])
local revisions = {}
for i = 1, count do
  revisions[i] = redis.call('HGET', KEYS[1], ARGV[2 + i])
end
local known = {}
for i = count + 3, #ARGV do
  known[#known + 1] = redis.call('SISMEMBER', KEYS[2], ARGV[i])
end
local pairs = {}
for i = 5, #KEYS do
  pairs[i - 4] = redis.call('GET', KEYS[i])
end
local log = false
if ARGV[1] ~= '' then
  local position = tonumber(redis.call('GET', KEYS[3]) or '0')
  local since = position - tonumber(ARGV[1])
  if since == 0 then
    log = {position, {}}
  elseif since < 0 or since > redis.call('LLEN', KEYS[4]) then
    log = {position, false}
  else
    log = {position, redis.call('LRANGE', KEYS[4], -since, -1)}
  end
end
return {revisions, known, pairs, log}
"""
# The profile events a transaction applies, one entry each ("revision org-id", ARGV[2..]), added to
# the applied log (KEYS[2]) and its position (KEYS[1]) moved on by as many: the entry at the log's
# tail is at the position, the one before it at the position less one, and so on. The log keeps the
# last ARGV[1] entries.
_LOG_APPLIED = """
local position = redis.call('INCRBY', KEYS[1], #ARGV - 1)
for i = 2, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
return position
"""
# An event run's first read, for each of the n organisations in ARGV: its applied revision
# (KEYS[1]: REVISIONS), the members of its set in KEYS[2..n+1] (AWAITING) and of its sorted set in
# KEYS[n+2..2n+1] (PENDING_BY_ORG: its pending pairs).
_RUN_READS = """
local n = #ARGV
local revisions, waiting, pending = {}, {}, {}
for i = 1, n do
  revisions[i] = redis.call('HGET', KEYS[1], ARGV[i])
  waiting[i] = redis.call('SMEMBERS', KEYS[1 + i])
  pending[i] = redis.call('ZRANGE', KEYS[1 + n + i], 0, -1)
end
return {revisions, waiting, pending}
"""
# Of the pairs in KEYS, the records of withdrawn ones deleted (read again here: one suggested again
# since the caller found it stays); how many. Only a record naming "withdrawn" somewhere is decoded.
_DROP_WITHDRAWN = """
local dropped = 0
for i = 1, #KEYS do
  local raw = redis.call('GET', KEYS[i])
  if raw and string.find(raw, 'withdrawn', 1, true) then
    local ok, pair = pcall(cjson.decode, raw)
    if ok and type(pair) == 'table' and pair['state'] == 'withdrawn' then
      redis.call('DEL', KEYS[i])
      dropped = dropped + 1
    end
  end
end
return dropped
"""
_MEMBERS = """
local found = {}
for i = 1, #KEYS do
  found[i] = redis.call('SMEMBERS', KEYS[i])
end
return found
"""
# What callers import from here: the domain's values they write and the refusal they catch too.
__all__ = [
    "DecisionRefused",
    "HeldPair",
    "ListsPlan",
    "PairWrite",
    "ProfileChange",
    "ProfilesChange",
    "RedisMatcherState",
]


def _json(record: Any) -> bytes:
    """A record as stored: UTF-8 JSON, made by orjson (a run writes thousands; json.dumps took some
    12 µs a pair, orjson under 1, and orjson.loads reads one in a third of json.loads' time)."""
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)


def _now_ms() -> int:
    return int(time.time() * 1000)


# How many records a ParsedRecords keeps parsed: a pair's is some 7 KB (the text and its objects),
# so about 56 MiB at most.
PARSED_KEPT = 8192


class ParsedRecords:
    """Records (pairs, profiles) parsed from their stored text, kept by that text: a plan reads the
    records of the pairs of the lists it makes, most of them as the last plan of those lists left
    them, and a coordinator's page reads the cluster's pending pairs and their organisations again
    at each request. orjson parses a pair of some 1.2 KB in about 4.8 µs; finding it by its text
    (hashed and compared, as a dict does) takes about 0.5. A record whose text changed is parsed
    again, so what is handed out is always what Redis holds. Records handed out are shared: their
    readers (the domain's rules, the review's views) make new records and never change one. Past
    `capacity` records the keeping starts again empty."""

    def __init__(self, capacity: int = PARSED_KEPT) -> None:
        self.capacity = capacity
        self._by_text: dict[bytes, PairRecord] = {}
        self.parsed = self.reused = 0

    def __call__(self, raw: bytes) -> PairRecord:
        record = self._by_text.get(raw)
        if record is not None:
            self.reused += 1
            return record
        record = orjson.loads(raw)
        if len(self._by_text) >= self.capacity:
            self._by_text = {}
        self._by_text[raw] = record
        self.parsed += 1
        return record


# The arguments hiredis packs as redis-py's encoder does: a str in UTF-8 (strict), bytes as they are,
# an int in decimal and a float by repr (a subclass, a bool, a memoryview: redis-py packs them).
_PLAIN_ARGS = frozenset({str, bytes, int, float})


def _pack(conn: Any, commands: list[tuple[Any, ...]]) -> list[bytes]:
    """The commands as redis-py's conn.pack_commands() sends them, packed by hiredis where every
    argument is plain: a profile event's MULTI holds some 40 commands (each pair's record, its
    places in four sorted sets, its event), which redis-py's Python packer took some 190 µs to
    write, hiredis about 30. A command name of several words (redis-py splits it) goes to redis-py."""
    encoder = conn.encoder
    plain = (encoder.encoding, encoder.encoding_errors) == ("utf-8", "strict") and all(
        type(c[0]) is str and " " not in c[0] and all(type(a) in _PLAIN_ARGS for a in c) for c in commands
    )
    if plain:
        return [b"".join([hiredis.pack_command(c) for c in commands])]
    packed: list[bytes] = conn.pack_commands(commands)
    return packed


def _check_index(checked: IndexCheck, log: list[Any] | None) -> None:
    """The check of _read_watched: the entries of the applied log after the index's position (`log`
    as _WATCHED_READS read it) are held by the index, which then holds every event up to the log's
    position now; or IndexBehind, with the revisions it lacked (None: the log no longer keeps all
    the entries since, or the state was emptied, so every applied revision is to be held)."""
    assert log is not None, "the applied log is read whenever a write is checked"
    position, entries = int(log[0]), log[1]
    if entries is None:
        raise IndexBehind(None)
    applied: dict[str, int] = {}
    for entry in entries:
        revision, _, org = entry.decode().partition(" ")
        applied[org] = max(int(revision), applied.get(org, 0))
    lacking = checked.lacking(applied) if applied else {}
    if lacking:
        raise IndexBehind(lacking)
    checked.log_position = position


def _watch_and_run(pipe: redis.client.Pipeline, watched: list[str], command: tuple[Any, ...]) -> Any:
    """WATCH `watched` on the pipeline's connection and run `command` there, both sent at once; the
    command's reply. After it the pipeline is watching, as after its own watch(): its MULTI/EXEC
    fails with WatchError if a watched key changed. A connection lost on the way is dropped, its
    WATCH with it, and both are sent again on a new one, as redis-py retries a command."""
    conn = pipe.connection
    if conn is None:
        conn = pipe.connection = pipe.connection_pool.get_connection()

    def attempt() -> Any:
        conn.send_packed_command(_pack(conn, [("WATCH", *watched), command]))
        pipe.parse_response(conn, "WATCH")
        return pipe.parse_response(conn, command[0])

    def failed(error: Exception) -> None:
        pipe.watching = False
        conn.disconnect()

    return conn.retry.call_with_retry(attempt, failed)


def _execute_watched(pipe: redis.client.Pipeline) -> list[Any]:
    """What pipe.execute() does for a transaction whose WATCH was sent with its read (_watch_and_run):
    MULTI, the queued commands and EXEC in one round trip, WatchError if a watched key changed (or
    the connection was lost: the caller starts again), the first error of a command raised. EXEC's
    replies are returned as they come, none parsed further (redis-py runs a callback on each; a
    set's members are a list of bytes here)."""
    conn = pipe.connection
    commands = [args for args, _ in pipe.command_stack]
    try:
        if conn is None or not pipe.watching:  # nothing watched on a connection: as redis-py does it
            return list(pipe.execute())
        try:
            conn.send_packed_command(_pack(conn, [("MULTI",), *commands, ("EXEC",)]))
            queued: list[redis.ResponseError] = []
            for _ in range(len(commands) + 1):  # MULTI's OK, then QUEUED or an error each
                try:
                    conn.read_response()
                except redis.ResponseError as error:
                    queued.append(error)
            try:
                replies = conn.read_response()
            except redis.exceptions.ExecAbortError:
                pipe.watching = False
                if queued:
                    raise queued[0] from None
                raise
        except (redis.ConnectionError, redis.TimeoutError) as error:
            conn.disconnect()
            raise redis.WatchError(f"A {type(error).__name__} occurred while watching one or more keys") from error
        pipe.watching = False  # EXEC ends every WATCH
        if replies is None:
            raise redis.WatchError("Watched variable changed.")
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        return list(replies)
    finally:
        pipe.reset()


def _pair_ids(
    upserts: Iterable[PairWrite], withdrawals: Iterable[tuple[str, str]], unlisted: Iterable[tuple[str, str]]
) -> list[str]:
    """The pairs a write touches, each once, in order: they are read and watched."""
    return list(dict.fromkeys([*(w.pair_id for w in upserts), *(p for p, _ in withdrawals), *(p for p, _ in unlisted)]))


class HeldPair:
    """One attempt at changing a pair (see `RedisMatcherState.pair_for_update`): `pair` as read under
    WATCH (None: there is none), `save` the steps to write. Leaving the `with` block writes them in
    one MULTI/EXEC, unless the pair changed meanwhile: then `written` stays False and the loop of
    attempts reads it again."""

    def __init__(self, state: RedisMatcherState, pipe: redis.client.Pipeline, pair: PairRecord | None) -> None:
        self.pair = pair
        self.written = False
        self._state = state
        self._pipe = pipe
        self._steps: list[PairSaved] = []

    def save(self, step: PairSaved | None) -> None:
        if step is not None:
            self._steps.append(step)

    def __enter__(self) -> HeldPair:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self._pipe.reset()  # the WATCH ends here: nothing is written
            return
        if self._steps:
            try:
                self._pipe.multi()
                for step in self._steps:
                    self._state.save(self._pipe, step)
                self._pipe.incr(PAIRS_WRITTEN)
                self._pipe.execute()
            except redis.WatchError:
                return
        self.written = True


class RedisMatcherState:
    def __init__(
        self, client: redis.Redis, matches_topic: str = MATCHES, decisions_topic: str = MATCH_DECISIONS
    ) -> None:
        self.r = client
        self.outbox = Outbox(client, P)
        self.matches_topic = matches_topic
        self.decisions_topic = decisions_topic
        self._pending_and_decided = client.register_script(_PENDING_AND_DECIDED)
        self._members = client.register_script(_MEMBERS)
        self._drop_withdrawn = client.register_script(_DROP_WITHDRAWN)
        self._run_reads = client.register_script(_RUN_READS)
        # the reads each profile event makes before its write (its revision, the pending pairs, the
        # rejections): on a connection the consumer's thread keeps, without redis-py's layers
        self._direct = DirectCommands(client)
        # the pairs a plan reads (its snapshot's, its write's) and a page shows, and the profiles
        # a page shows; not those a start loads, each once (all_profiles)
        self._parsed = ParsedRecords()
        self._parsed_profiles = ParsedRecords()

    def adopt_untagged_keys(self) -> int:
        """Move the keys written before they had a hash tag (`matcher:…`, page sessions aside)
        to their tagged names, once (how many); see `partnermatch.redis_client`."""
        return adopt_untagged_keys(self.r, UNTAGGED_PREFIX, P, keep=(PAGE_SESSION,))

    # ---- profiles ---------------------------------------------------------------------------

    def applied_revision(self, org_id: str) -> int:
        replies = self._direct.round_trip([("HGET", REVISIONS, org_id)])
        raw = replies[0] if replies is not None else self.r.hget(REVISIONS, org_id)
        return int(raw) if raw else 0

    def applied_revisions(self, org_ids: Iterable[str] | None = None) -> dict[str, int]:
        """The last applied revision of each of `org_ids` that has one (default: of every
        organisation, deleted ones included)."""
        if org_ids is None:
            return {k.decode(): int(v) for k, v in self.r.hscan_iter(REVISIONS, count=1000)}
        ids = list(org_ids)
        raws = self.r.hmget(REVISIONS, ids) if ids else []
        return {i: int(raw) for i, raw in zip(ids, raws, strict=True) if raw}

    def get_profile(self, org_id: str) -> dict[str, Any] | None:
        raw = self.r.get(PROFILE + org_id)
        return orjson.loads(raw) if raw else None

    def get_profiles(self, org_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The profiles applied of these organisations (shared records: see ParsedRecords)."""
        return self._profiles_of(org_ids, self._parsed_profiles)

    def _profiles_of(
        self, org_ids: Iterable[str], parse: Callable[[bytes], dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        ids = list(org_ids)
        raws = self.r.mget([PROFILE + i for i in ids]) if ids else []
        return {i: parse(r) for i, r in zip(ids, raws, strict=True) if r}

    def all_profiles(self, batch: int = 1000) -> Iterable[dict[str, Any]]:
        """Every profile applied, each parsed anew: a start reads each once."""
        ids = [m.decode() for m in self.r.sscan_iter(PROFILES, count=batch)]
        for start in range(0, len(ids), batch):
            yield from self._profiles_of(ids[start : start + batch], orjson.loads).values()

    # ---- pairs ------------------------------------------------------------------------------

    def get_pair(self, pair_id: str) -> dict[str, Any] | None:
        """The pair as stored (a shared record: see ParsedRecords)."""
        raw = self.r.get(PAIR + pair_id)
        return self._parsed(raw) if raw else None

    def get_pairs(self, pair_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The pairs as stored, those that are (shared records: see ParsedRecords)."""
        ids = list(pair_ids)
        raws = self.r.mget([PAIR + i for i in ids]) if ids else []
        return [self._parsed(r) for r in raws if r]

    def snapshot(self, org_ids: Iterable[str], pair_ids: Iterable[str], sides_of: Iterable[str] = ()) -> PlanSnapshot:
        """The pending pairs of each organisation (by score, lowest first), which of `pair_ids` were
        decided, and for the pending pairs of `sides_of` (organisations among `org_ids`) not in
        `pair_ids` the sides whose lists held each when last planned (domain.wanted_by): what a plan
        of the lists reads, in one round trip."""
        orgs, ids = list(dict.fromkeys(org_ids)), list(pair_ids)
        keys, args = self._snapshot_words(orgs, ids, sides_of)
        return self._snapshot_of(orgs, ids, self._direct.script(self._pending_and_decided, keys, args))

    def dislikes_and_snapshot(
        self, dislikes_of: Iterable[str], org_ids: Iterable[str], pair_ids: Iterable[str], sides_of: Iterable[str] = ()
    ) -> tuple[dict[str, list[str]], PlanSnapshot]:
        """What dislikes_of(dislikes_of) and snapshot(org_ids, pair_ids, sides_of) answer, read in one
        round trip (both scripts sent at once): a profile event's plan reads both, and needs the
        snapshot again only where the rejections read bear on its lists (see LiveMatcher)."""
        wanting = list(dict.fromkeys(dislikes_of))
        orgs, ids = list(dict.fromkeys(org_ids)), list(pair_ids)
        keys, args = self._snapshot_words(orgs, ids, sides_of)
        try:
            replies = self._direct.round_trip(
                [
                    ("EVALSHA", self._members.sha, len(wanting), *(DISLIKES + org for org in wanting)),
                    ("EVALSHA", self._pending_and_decided.sha, len(keys), *keys, *args),
                ]
            )
        except redis.exceptions.NoScriptError:  # a server that lost its scripts: each call loads its own
            replies = None
        if replies is None:
            return self.dislikes_of(wanting), self.snapshot(orgs, ids, sides_of)
        return self._dislikes_found(wanting, replies[0]), self._snapshot_of(orgs, ids, replies[1])

    def _snapshot_words(
        self, orgs: list[str], ids: list[str], sides_of: Iterable[str]
    ) -> tuple[list[str], list[str | int]]:
        """The keys and arguments of the snapshot's script (_PENDING_AND_DECIDED)."""
        place = {org: i for i, org in enumerate(orgs, start=1)}
        wanting = sorted({place[org] for org in sides_of})
        return [*(PENDING_BY_ORG + org for org in orgs), APPROVED_PENDING, DECIDED], [PAIR, len(ids), *ids, *wanting]

    def _snapshot_of(self, orgs: list[str], ids: list[str], replies: list[Any]) -> PlanSnapshot:
        pending = {
            org: {reply[i].decode(): float(reply[i + 1]) for i in range(0, len(reply), 2)}
            for org, reply in zip(orgs, replies[: len(orgs)], strict=True)
        }
        flags = replies[len(orgs)]
        records = (self._parsed(raw) for raw in replies[len(orgs) + 1] if raw)
        return PlanSnapshot(
            pending,
            frozenset(i for i, flag in zip(ids, flags, strict=True) if flag),
            {pair["pair_id"]: domain.wanted_by(pair) for pair in records},
            frozenset(i.decode() for i in replies[len(orgs) + 2]),
        )

    def pending_of_org(self, org_id: str) -> dict[str, float]:
        return {m.decode(): s for m, s in self.r.zrange(PENDING_BY_ORG + org_id, 0, -1, withscores=True)}

    def pending_ids_of_cluster(self, cluster_id: str) -> list[str]:
        return [m.decode() for m in self.r.zrevrange(PENDING_BY_CLUSTER + cluster_id, 0, -1)]

    def pending_page_of_cluster(self, cluster_id: str, offset: int, limit: int) -> tuple[list[str], int]:
        """The ids of one page of the cluster's pending pairs by score, highest first (as
        pending_ids_of_cluster orders them), and how many there are: one round trip."""
        with self.r.pipeline(transaction=False) as pipe:
            pipe.zrevrange(PENDING_BY_CLUSTER + cluster_id, offset, offset + limit - 1)
            pipe.zcard(PENDING_BY_CLUSTER + cluster_id)
            page, total = pipe.execute()
        return [m.decode() for m in page], int(total)

    def history_ids_of_cluster(self, cluster_id: str) -> list[str]:
        return [m.decode() for m in self.r.zrevrange(HISTORY + cluster_id, 0, -1)]

    def pair_ids_of_org(self, org_id: str) -> list[str]:
        """Every pair of the organisation that is pending or decided (withdrawn ones are not kept):
        pending by score, then decided, latest first."""
        self._build_history_by_org()
        pending = [m.decode() for m in self.r.zrevrange(PENDING_BY_ORG + org_id, 0, -1)]
        decided = [m.decode() for m in self.r.zrevrange(HISTORY_BY_ORG + org_id, 0, -1)]
        return list(dict.fromkeys(pending + decided))

    def drop_withdrawn_pairs(self, batch: int = 500) -> int:
        """Delete the records of withdrawn pairs that versions before this one kept, once (a later
        withdrawal deletes its own); how many. Each batch's records are read again by a script as
        it deletes them, so a pair suggested again meanwhile stays. One matcher at a time does it
        (a lock for WITHDRAWN_LOCK_S): another starting meanwhile leaves it to that one. Optional
        work: a failure is logged, the flag left unset (the next start tries again), and the
        matcher starts all the same. An older matcher still running (a rolling upgrade of several)
        may keep records of the pairs it withdraws after the flag is set: deleting the flag
        (`{matcher}:withdrawn:dropped`) has the next start look again."""
        if self.r.exists(WITHDRAWN_DROPPED):
            return 0
        if not self.r.set(WITHDRAWN_LOCK, os.getpid(), nx=True, ex=WITHDRAWN_LOCK_S):
            return 0
        started, dropped = time.monotonic(), 0
        try:
            for done in script_in_batches(self.r, self._drop_withdrawn, PAIR + "*", "string", batch):
                dropped += done
            self.r.set(WITHDRAWN_DROPPED, 1)
        except redis.RedisError:
            logger.exception(
                "deleting the records earlier versions kept of withdrawn pairs failed; the next start tries again",
                extra={"pairs": dropped},
            )
            return dropped
        finally:
            try:
                self.r.delete(WITHDRAWN_LOCK)
            except redis.RedisError:
                pass  # it expires
        if dropped:
            logger.info(
                "records of withdrawn pairs deleted (kept by earlier versions)",
                extra={"pairs": dropped, "seconds": round(time.monotonic() - started, 1)},
            )
        return dropped

    def _build_history_by_org(self, batch: int = 500) -> None:
        """Index pairs decided before the per-organisation history existed, once. Idempotent, so
        two processes doing it at the same time, or a decision meanwhile, change nothing."""
        if self.r.exists(HISTORY_BY_ORG_BUILT):
            return
        ids = [m.decode() for m in self.r.sscan_iter(DECIDED, count=batch)]
        for start in range(0, len(ids), batch):
            with self.r.pipeline(transaction=False) as pipe:
                for pair in self.get_pairs(ids[start : start + batch]):
                    when = pair.get("decided_ms") or pair.get("updated_ms") or 0
                    for org in (pair["org_a"], pair["org_b"]):
                        pipe.zadd(HISTORY_BY_ORG + org, {pair["pair_id"]: when})
                pipe.execute()
        self.r.set(HISTORY_BY_ORG_BUILT, 1)

    # ---- applying a profile event -----------------------------------------------------------

    def apply(self, change: ProfileChange) -> bool:
        """Apply once: returns False (and writes nothing) if this revision was already applied."""
        return bool(self.apply_profiles(ProfilesChange.of(change)).applied)

    def apply_profiles(self, change: ProfilesChange) -> RunApplied:
        """Apply a run of profile events in one transaction: each organisation's profile once, and
        the pairs if any was new; the organisations applied now (none: each had this revision or a
        later one applied before, and nothing is written). For those, the same transaction takes
        the lists the change planned out of AWAITING (forget_waiting) and reads the lists left
        there: once it is applied no list comes to wait for them (a plan's write reads PROFILES
        under its WATCH of REVISIONS), so none is missed, and no round trip of its own reads them."""
        applied: set[str] = set()
        pair_ids = _pair_ids(change.upserts, change.withdrawals, change.unlisted)
        upserts_known = change.upserts if change.known_partners_only else []
        orgs = sorted(change.profiles)
        present = {org for org in orgs if change.profiles[org][1] is not None}

        def txn(pipe: redis.client.Pipeline, watch: list[str] | None) -> None:
            applied.clear()
            currents, existing, unknown = self._read_watched(
                pipe, orgs, pair_ids, upserts_known, present, watch, change.checked
            )
            fresh = [
                org
                for org, current in zip(orgs, currents, strict=True)
                if current is None or int(current) < change.profiles[org][0]
            ]
            if not fresh:
                return
            now = _now_ms()
            pipe.multi()
            for org in fresh:
                revision, profile = change.profiles[org]
                pipe.hset(REVISIONS, org, revision)
                if profile is None:
                    pipe.delete(PROFILE + org)
                    pipe.srem(PROFILES, org)
                else:
                    pipe.set(PROFILE + org, _json(profile))
                    pipe.sadd(PROFILES, org)
            moved = {
                org: profile["cluster_id"]
                for org in fresh
                if (profile := change.profiles[org][1]) is not None and "cluster_id" in profile
            }
            self._save_known_pairs(
                pipe, existing, change.upserts, change.withdrawals, change.unlisted, unknown, now, moved
            )
            entries = [f"{change.profiles[org][0]} {org}" for org in fresh]
            pipe.execute_command("EVAL", _LOG_APPLIED, 2, APPLIED_POSITION, APPLIED_LOG, APPLIED_LOG_KEPT, *entries)
            for org in fresh:
                planned = change.forget_waiting.get(org)
                if planned:
                    pipe.srem(AWAITING + org, *sorted(planned))
            for org in fresh:  # EXEC's last replies
                pipe.smembers(AWAITING + org)
            applied.update(fresh)

        # a pair written by anyone in the meantime (PAIRS_WRITTEN: a coordinator's decision, another
        # matcher's run) restarts this, as does another profile applied (REVISIONS), which may make a
        # partner known
        replies = self._transaction(txn, [REVISIONS, PAIRS_WRITTEN])
        now_applied = sorted(applied)
        left = replies[len(replies) - len(now_applied) :] if now_applied else []
        waiting = {
            org: {m.decode() if isinstance(m, bytes) else m for m in members}
            for org, members in zip(now_applied, left, strict=True)
            if members
        }
        return RunApplied(set(applied), waiting)

    def apply_pairs(self, plan: ListsPlan) -> None:
        """Write a plan of lists made outside a profile event (lists planned again), atomically; a
        decided pair stays as it is, and a pair with an organisation still unknown waits again."""
        pair_ids = _pair_ids(plan.upserts, plan.withdrawals, plan.unlisted)
        if not pair_ids:
            return

        def txn(pipe: redis.client.Pipeline, watch: list[str] | None) -> None:
            _, existing, unknown = self._read_watched(pipe, [], pair_ids, plan.upserts, (), watch, plan.checked)
            pipe.multi()
            self._save_known_pairs(pipe, existing, plan.upserts, plan.withdrawals, plan.unlisted, unknown, _now_ms())

        self._transaction(txn, [REVISIONS, PAIRS_WRITTEN])

    def applied_position(self) -> int:
        """The applied log's position: how many profile events have been applied."""
        return int(self.r.get(APPLIED_POSITION) or 0)

    def awaiting(self, org_ids: Iterable[str]) -> dict[str, set[str]]:
        """For each of these organisations that has some, the organisations whose lists wanted it as
        a partner before its profile was here (one round trip)."""
        ids = list(dict.fromkeys(org_ids))
        if not ids:
            return {}
        found = self._direct.script(self._members, [AWAITING + org for org in ids], ())
        return {org: {m.decode() for m in members} for org, members in zip(ids, found, strict=True) if members}

    def run_reads(self, org_ids: Iterable[str]) -> RunReads:
        """What applied_revisions and awaiting answer for these organisations, and each one's
        partners in its pending pairs, read together (one round trip): an event run's first read."""
        ids = list(dict.fromkeys(org_ids))
        if not ids:
            return RunReads({}, {}, {})
        raws, found, pending = self._direct.script(
            self._run_reads,
            [REVISIONS, *(AWAITING + org for org in ids), *(PENDING_BY_ORG + org for org in ids)],
            ids,
        )
        revisions = {org: int(raw) for org, raw in zip(ids, raws, strict=True) if raw}
        waiting = {org: {m.decode() for m in members} for org, members in zip(ids, found, strict=True) if members}
        partners = {
            org: {other_of(pair_id.decode(), org) for pair_id in pairs}
            for org, pairs in zip(ids, pending, strict=True)
            if pairs
        }
        return RunReads(revisions, waiting, partners)

    def forget_awaiting(self, org_id: str, orgs: Iterable[str]) -> None:
        members = list(orgs)
        if members:
            self.r.srem(AWAITING + org_id, *members)

    def _transaction(
        self, txn: Callable[[redis.client.Pipeline, list[str] | None], None], watched: list[str]
    ) -> list[Any]:
        """Run `txn` as redis-py's transaction() does (WATCH `watched`, read, then MULTI/EXEC, again
        from the start when a watched key changed meanwhile), with the WATCH sent together with
        txn's first read (txn is given the keys to watch and passes them to _read_watched): one
        round trip where transaction() takes two, its WATCH waiting for its reply. A client other
        than a plain Redis one (a cluster's) runs transaction() itself (txn is given None). EXEC's
        replies, one per command queued after MULTI (none when txn queued none)."""
        if type(self.r) is not redis.Redis:
            return list(self.r.transaction(lambda pipe: txn(pipe, None), *watched) or [])
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    txn(pipe, watched)
                    return _execute_watched(pipe)
                except redis.WatchError:
                    continue

    def _read_watched(
        self,
        pipe: redis.client.Pipeline,
        org_ids: list[str],
        pair_ids: list[str],
        upserts: list[PairWrite],
        known: Collection[str] = (),
        watch: list[str] | None = None,
        checked: IndexCheck | None = None,
    ) -> tuple[list[bytes | None], dict[str, PairRecord], set[str]]:
        """What a write of pairs reads under its WATCH (of REVISIONS, which every profile change
        writes, and of the pairs), in one round trip: the applied revision of each of `org_ids`, the
        pairs by id, and the organisations of `upserts` with no profile applied, but those `known`.
        With `checked`, the index the write's plan was made from: the profile events applied since
        its log position are read too, and IndexBehind raised (nothing written) if it lacked any.
        Sent as EVAL with the script's text: a script object on a pipeline makes its EXEC ask
        whether the server has it first, one round trip more. `watch`: the keys to WATCH first, in
        the same round trip (see _transaction)."""
        orgs = sorted({org for w in upserts for org in (w.org_a, w.org_b)}.difference(known))
        keys = [REVISIONS, PROFILES, APPLIED_POSITION, APPLIED_LOG, *[PAIR + i for i in pair_ids]]
        since = "" if checked is None else checked.log_position
        read = ("EVAL", _WATCHED_READS, len(keys), *keys, since, len(org_ids), *org_ids, *orgs)
        if watch is None:
            currents, flags, raws, log = pipe.execute_command(*read)
        else:
            currents, flags, raws, log = _watch_and_run(pipe, watch, read)
        if checked is not None:
            _check_index(checked, log)
        existing = {pair["pair_id"]: pair for pair in (self._parsed(r) for r in raws if r)}
        return currents, existing, {org for org, present in zip(orgs, flags, strict=True) if not present}

    def _save_known_pairs(
        self,
        pipe: redis.client.Pipeline,
        existing: dict[str, PairRecord],
        upserts: list[PairWrite],
        withdrawals: list[tuple[str, str]],
        unlisted: list[tuple[str, str]],
        unknown: set[str],
        now: int,
        clusters: Mapping[str, str] | None = None,
    ) -> None:
        """Save the pairs between known organisations; each unknown one remembers who wanted it, so
        those lists are planned again once its profile is applied. `clusters`: the current cluster
        of the organisations whose profiles the same transaction applies (domain.pair_steps)."""
        known, awaiting = domain.between_known(upserts, unknown)
        for org, wanting in awaiting.items():
            pipe.sadd(AWAITING + org, *wanting)
        steps = domain.pair_steps(existing, known, withdrawals, now, unlisted, clusters or {})
        for step in steps:
            self.save(pipe, step)
        if steps:
            pipe.incr(PAIRS_WRITTEN)

    def lesson_applied(self, decided_pair_id: str) -> bool:
        return bool(self.r.sismember(LESSONS, decided_pair_id))

    def apply_lesson(self, decided_pair_id: str, plan: ListsPlan) -> bool:
        """The lists planned again after a decision, applied once and atomically: False (nothing
        written) when this decision's were already. A pair decided in the meantime stays as it is.
        A plan with `checked` is checked as apply_pairs checks it (IndexBehind)."""
        pair_ids = _pair_ids(plan.upserts, plan.withdrawals, plan.unlisted)
        applied: dict[str, bool] = {}

        def txn(pipe: redis.client.Pipeline) -> None:
            if pipe.sismember(LESSONS, decided_pair_id):
                applied["done"] = False
                return
            if plan.checked is None:
                existing = self._read_pairs(pipe, pair_ids)
            else:  # one of N matchers: its index is checked against the events applied (and watched)
                _, existing, _ = self._read_watched(pipe, [], pair_ids, [], (), None, plan.checked)
            pipe.multi()
            pipe.sadd(LESSONS, decided_pair_id)
            for step in domain.pair_steps(existing, plan.upserts, plan.withdrawals, _now_ms(), plan.unlisted):
                self.save(pipe, step)
            pipe.incr(PAIRS_WRITTEN)
            applied["done"] = True

        self.r.transaction(txn, LESSONS, PAIRS_WRITTEN, *([REVISIONS] if plan.checked is not None else []))
        return applied["done"]

    def _read_pairs(self, pipe: redis.client.Pipeline, pair_ids: list[str]) -> dict[str, PairRecord]:
        if not pair_ids:
            return {}
        # MGET by name: a cluster pipeline refuses mget(), even for keys of one slot.
        raws = pipe.execute_command("MGET", *[PAIR + i for i in pair_ids])
        return {pair["pair_id"]: pair for pair in (orjson.loads(r) for r in raws if r)}

    def save(self, pipe: redis.client.Pipeline, step: PairSaved) -> None:
        """Queue the writes of one step of a pair on a transaction's pipeline: the record, the lists
        that hold it (pending ones by score, decided ones by decision time), and its event."""
        pair = step.record
        pair_id = pair["pair_id"]
        if step.step == "withdrawn":
            # no record is kept of a withdrawn pair: every page, list and decision treats one as
            # not found, one suggested again starts afresh either way, and its event says why.
            # Kept, they outnumbered the pending pairs (bench/redis_memory.py).
            pipe.delete(PAIR + pair_id)
        else:
            pipe.set(PAIR + pair_id, _json(pair))
        if step.step == "suggested":
            for cluster in step.left_clusters:
                pipe.zrem(PENDING_BY_CLUSTER + cluster, pair_id)
            for cluster in (pair["cluster_a"], pair["cluster_b"]):
                pipe.zadd(PENDING_BY_CLUSTER + cluster, {pair_id: pair["score"]})
            for org in (pair["org_a"], pair["org_b"]):
                pipe.zadd(PENDING_BY_ORG + org, {pair_id: pair["score"]})
        elif step.step in ("withdrawn", "decided"):
            self._unindex_pending(pipe, pair)
        self._mark_approved(pipe, step)
        if step.step == "decided":
            pipe.sadd(DECIDED, pair_id)
            for cluster in (pair["cluster_a"], pair["cluster_b"]):
                pipe.zadd(HISTORY + cluster, {pair_id: pair["decided_ms"]})
            for org in (pair["org_a"], pair["org_b"]):
                pipe.zadd(HISTORY_BY_ORG + org, {pair_id: pair["decided_ms"]})
            for org, partner in step.dislikes:
                pipe.sadd(DISLIKES + org, partner)
        if step.event is not None:
            self._queue(pipe, step.event)

    def _mark_approved(self, pipe: redis.client.Pipeline, step: PairSaved) -> None:
        """Keep APPROVED_PENDING to the steps that may change it: a decision recorded or taken back
        (noted), decisions kept, or dropped with a cluster the pair left (suggested), the pair's end
        (withdrawn, decided). A suggestion with no decision anywhere adds no command."""
        pair, pair_id = step.record, step.record["pair_id"]
        if step.step in ("suggested", "noted") and domain.approved(pair):
            pipe.sadd(APPROVED_PENDING, pair_id)
        elif step.step == "noted" or (step.step == "suggested" and step.left_clusters) or pair.get("decisions"):
            pipe.srem(APPROVED_PENDING, pair_id)

    def _queue(self, pipe: redis.client.Pipeline, event: domain.PairEvent) -> None:
        decided = event.event_type in (events.MATCH_APPROVED, events.MATCH_REJECTED)
        topic = self.decisions_topic if decided else self.matches_topic
        self.outbox.add(pipe, events.new_event(event.event_type, event.payload, PRODUCER), topic, event.pair_id)

    def _unindex_pending(self, pipe: redis.client.Pipeline, pair: PairRecord) -> None:
        for cluster in (pair["cluster_a"], pair["cluster_b"]):
            pipe.zrem(PENDING_BY_CLUSTER + cluster, pair["pair_id"])
        for org in (pair["org_a"], pair["org_b"]):
            pipe.zrem(PENDING_BY_ORG + org, pair["pair_id"])

    # ---- what rejections taught --------------------------------------------------------------

    def dislikes_of(self, org_ids: Iterable[str]) -> dict[str, list[str]]:
        """The partners each organisation's coordinator rejected for a teaching reason, sorted; only
        organisations that have some."""
        ids = list(dict.fromkeys(org_ids))
        if not ids:
            return {}
        return self._dislikes_found(ids, self._direct.script(self._members, [DISLIKES + org for org in ids], ()))

    @staticmethod
    def _dislikes_found(ids: list[str], found: list[list[bytes]]) -> dict[str, list[str]]:
        return {org: sorted(m.decode() for m in members) for org, members in zip(ids, found, strict=True) if members}

    def mark_approved_pending(self, batch: int = 500) -> None:
        """Put the pending pairs a cluster approved before APPROVED_PENDING existed in it, once.
        Idempotent (a set): a decision meanwhile, or two processes at once, change nothing; a pair
        missed (an approval an older matcher records during a rolling upgrade) is marked when a
        plan finds it approved at its write (domain.pair_steps)."""
        if self.r.exists(APPROVED_MARKED):
            return
        orgs = [m.decode() for m in self.r.sscan_iter(PROFILES, count=batch)]
        for start in range(0, len(orgs), batch):
            with self.r.pipeline(transaction=False) as pipe:
                for org in orgs[start : start + batch]:
                    pipe.zrange(PENDING_BY_ORG + org, 0, -1)
                ids = sorted({m.decode() for found in pipe.execute() for m in found})
            found = [
                pair["pair_id"] for pair in self.get_pairs(ids) if pair["state"] == "pending" and domain.approved(pair)
            ]
            if found:
                self.r.sadd(APPROVED_PENDING, *found)
        self.r.set(APPROVED_MARKED, 1)

    def build_dislikes(self, batch: int = 500) -> None:
        """Index the teaching rejections of pairs decided before DISLIKES existed, once. Idempotent
        (sets), so a decision meanwhile or two processes at once change nothing."""
        if self.r.exists(DISLIKES_BUILT):
            return
        ids = [m.decode() for m in self.r.sscan_iter(DECIDED, count=batch)]
        for start in range(0, len(ids), batch):
            with self.r.pipeline(transaction=False) as pipe:
                for pair in self.get_pairs(ids[start : start + batch]):
                    if pair["state"] == "rejected":
                        for org, partner in dislikes_in(pair, pair["decisions"].values()):
                            pipe.sadd(DISLIKES + org, partner)
                pipe.execute()
        self.r.set(DISLIKES_BUILT, 1)

    # ---- decisions --------------------------------------------------------------------------

    def requeue_decisions(self, batch: int = 500) -> int:
        """Queue the event of every decided pair again, oldest decision first, for a broker that lost
        its topics: the approvals whose emails were never recorded reach the notifier, whose
        ledger keeps one email per match and recipient however often it reads one."""
        ids = [m.decode() for m in self.r.sscan_iter(DECIDED, count=batch)]
        pairs = [
            p
            for start in range(0, len(ids), batch)
            for p in self.get_pairs(ids[start : start + batch])
            if p["state"] in ("approved", "rejected")
        ]
        pairs.sort(key=lambda p: p.get("decided_ms") or p.get("updated_ms") or 0)
        for start in range(0, len(pairs), batch):
            with self.r.pipeline(transaction=True) as pipe:
                for pair in pairs[start : start + batch]:
                    self._queue(pipe, domain.decision_event(pair))
                pipe.execute()
        return len(pairs)

    def pair_for_update(self, pair_id: str) -> Iterator[HeldPair]:
        """Attempts at changing one pair, each a `HeldPair` to use as a context: the pair is read
        under WATCH, and what is saved in the block is written at its end in one MULTI/EXEC. A write
        by anyone else in between starts another attempt; an exception in the block writes nothing.

            for held in state.pair_for_update(pair_id):
                with held:
                    held.save(domain.withdraw(held.pair, "why", now))
        """
        key = PAIR + pair_id
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                pipe.watch(key)
                raw = pipe.get(key)
                held = HeldPair(self, pipe, orjson.loads(raw) if raw else None)
                yield held
                if held.written:
                    return

    def decide(
        self,
        pair_id: str,
        cluster_id: str,
        coordinator: str,
        decision: str,
        reason_code: str | None = None,
        reason_text: str | None = None,
    ) -> PairRecord:
        """Record one cluster's decision (domain.record_decision) and return the pair, or refuse it
        (DecisionRefused), a repeat too: the review's use case answers repeats (domain.decide). A
        pair reaches a final state once, with exactly one event, however many decide at once."""
        ballot = Ballot(cluster_id, coordinator, decision, reason_code, reason_text)
        for held in self.pair_for_update(pair_id):
            with held:
                refused = domain.refusal(held.pair, cluster_id)
                if refused is not None:
                    raise refused
                assert held.pair is not None
                saved = domain.record_decision(held.pair, ballot, _now_ms())
                held.save(saved)
        return saved.record
