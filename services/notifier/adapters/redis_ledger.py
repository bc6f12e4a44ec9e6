"""The delivery ledger in Redis (keys under `{notifier}:`): approved matches, one delivery per
(match, recipient), the due-time sorted set that drives retries, claims with leases, and the
suppression list of unsubscribed addresses. Every claim and transition is one Lua script, so it
is atomic and fenced by the claim token of the worker that holds it. Does I/O (Redis).

Every key shares the hash tag `{notifier}`, so on Redis Cluster all of them live in one slot and
each script may touch any of them: every claim and transition moves its record and the global due
and in-flight sets together. A key a script does not declare (a digest's counts by cluster, a
match's other deliveries) fails it on the node the slot is leaving while the slot migrates; the
scripts that finish a match read such keys before they write anything. The ledger grows with
approved matches and deliveries, not with organisations, so one node holds it (see
`bench/redis_memory.py`). Keys written before the tag (`notifier:…`) are moved once by
`adopt_untagged_keys`.

Keys (`notifier:` below stands for `{notifier}:`):
    notifier:match:<pair_id>              hash: state, event_id, payload (JSON), attempts, claim, …
    notifier:match:<pair_id>:deliveries   set of delivery ids
    notifier:delivery:<id>                hash: state, pair_id, org_id, partner_id, side, recipient,
                                          attempts, claim, message_id, reason, error, sent_at, …
    notifier:due                          zset "m:<pair_id>" | "d:<id>" → when it is due (epoch s)
    notifier:inflight                     zset of claimed members → when they were claimed
    notifier:uncertain                    zset of delivery ids left in `sending` by a dead worker
    notifier:suppressed                   hash recipient key → JSON {at, org_id}; a coordinator's
                                          unsubscribe from one kind of notice is "<kind>:<key>"
    notifier:stats                        hash of counters since the ledger began
    notifier:finished                     set of the ids of finished matches and decision notices:
                                          once their records expired, what a replay finds

A match is finished when it is expanded or skipped and each of its deliveries is sent, failed or
skipped (not uncertain: an operator may still release one). Then its id is added to `finished`,
kept for ever (some 100 bytes), and its record, its set of deliveries and those deliveries expire
`keep_s` seconds later (NOTIFIER_LEDGER_KEEP_DAYS; 0: never): the script that finishes it (the last
delivery's transition, or the expansion) does both, in that order, having read all it decides on
before it writes anything. Until then a delivery still reads its match's payload. A replayed event,
even one of the decided pairs the matcher publishes again after the broker lost its topics (however
old), finds the record or the id and records nothing. A digest leaves no id: its period, remembered
apart, keeps it from being made twice. `expire_finished` gives the records finished while nothing
expired theirs.

A coordinators' notice is a record like a match, under its notice id (`domain.digest_id`,
`domain.decided_notice_id`) with `kind` in its payload, expanded into one delivery per
coordinator. What the digests count:
    notifier:digest:pairs                 hash pair id → its clusters (space-separated), pending pairs
    notifier:digest:new:<cluster>         hash pair id → when first seen, not yet in a digest
    notifier:digest:clusters              set of clusters with pairs not yet in a digest
    notifier:digest:periods               hash cluster → the last period a digest was made for
    notifier:digest:closed                set of decided pairs: a late or replayed suggestion of
                                          one is not new

No email address is stored: deliveries name their recipient by `domain.recipient_key` and the
notifier asks the profiles service for the address when it sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script

from partnermatch.redis_client import DirectCommands, adopt_untagged_keys, script_in_batches
from services.notifier import domain

PREFIX = "{notifier}:"
UNTAGGED_PREFIX = "notifier:"  # where the ledger lived before its keys had a hash tag

_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then redis.call('ZREM', KEYS[2], ARGV[1]) return 0 end
local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if not string.find(',' .. ARGV[5] .. ',', ',' .. state .. ',', 1, true) then return 0 end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'claim', ARGV[3],
           'claimed_at', ARGV[2], 'updated_at', ARGV[2])
return redis.call('HINCRBY', KEYS[1], 'attempts', 1)
"""


def _lua_set(names: Iterable[str]) -> str:
    """A Lua table literal holding each of `names` as a key (a set)."""
    return "{" + ", ".join(f"['{name}'] = true" for name in sorted(names)) + "}"


# A finished match (see the module's docstring): `finished_keys` reads whether the match `id` is
# finished once the deliveries in `changes` (id -> state) are in those states (and the match in
# `match_state`, unless nil: as stored), and returns its keys then (else nil). It only reads, and
# a script calls it before its first write: on a cluster, a key it did not declare (the match, its
# other deliveries) that has moved away fails the script there, with nothing written. `finish`
# remembers the id (not a digest's) in `finished`, a key the script declares, and then sets the
# keys' expiry where none is set (keep 0: none): a failure in between leaves an id and no expiry,
# never the other way round.
_EXPIRE_IF_FINISHED = (
    """
local done_match, over = @DONE_MATCH@, @OVER@
local function finished_keys(prefix, id, match_state, changes)
  local match = prefix .. 'match:' .. id
  local state = match_state or redis.call('HGET', match, 'state')
  if not state or not done_match[state] then return nil end
  local listed = match .. ':deliveries'
  local keys, seen = {match, listed}, {}
  for _, delivery in ipairs(redis.call('SMEMBERS', listed)) do
    seen[delivery] = true
    local now = changes[delivery] or redis.call('HGET', prefix .. 'delivery:' .. delivery, 'state')
    if now and not over[now] then return nil end
    table.insert(keys, prefix .. 'delivery:' .. delivery)
  end
  for delivery, now in pairs(changes) do
    if not seen[delivery] then
      if not over[now] then return nil end
      table.insert(keys, prefix .. 'delivery:' .. delivery)
    end
  end
  return keys
end
local function finish(finished, id, keys, keep)
  if string.sub(id, 1, @DIGEST_LEN@) ~= '@DIGEST@' then redis.call('SADD', finished, id) end
  if keep <= 0 then return 0 end
  local given = redis.call('EXPIRE', keys[1], keep, 'NX')
  for i = 2, #keys do redis.call('EXPIRE', keys[i], keep, 'NX') end
  return given
end
""".replace("@DONE_MATCH@", _lua_set([domain.MATCH_EXPANDED, domain.MATCH_SKIPPED]))
    .replace("@OVER@", _lua_set(domain.OVER_STATES))
    .replace("@DIGEST_LEN@", str(len(domain.DIGEST_ID_PREFIX)))
    .replace("@DIGEST@", domain.DIGEST_ID_PREFIX)
)

# KEYS: record, due, inflight, stats, uncertain, finished
# ARGV: member, token, to_state, from_csv, now, due_at, counter, uncertain_id, keep (seconds),
#       prefix, field, value, …
_TRANSITION = (
    _EXPIRE_IF_FINISHED
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or not string.find(',' .. ARGV[4] .. ',', ',' .. state .. ',', 1, true) then
  return 0
end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'claim') ~= ARGV[2] then return 0 end
local to, keep, prefix = ARGV[3], tonumber(ARGV[9]), ARGV[10]
-- what finishes a match is read before anything is written
local finished, finished_id = nil, nil
if string.sub(ARGV[1], 1, 2) == 'm:' and done_match[to] then
  finished_id = string.sub(ARGV[1], 3)
  finished = finished_keys(prefix, finished_id, to, {})
elseif string.sub(ARGV[1], 1, 2) == 'd:' and over[to] then
  finished_id = redis.call('HGET', KEYS[1], 'pair_id')
  if finished_id then finished = finished_keys(prefix, finished_id, nil, {[ARGV[8]] = to}) end
end
redis.call('HSET', KEYS[1], 'state', to, 'updated_at', ARGV[5])
for i = 11, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if to == 'claimed' or to == 'sending' or to == 'expanding' then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
if ARGV[6] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if ARGV[8] ~= '' then
  if to == 'uncertain' then
    redis.call('ZADD', KEYS[5], ARGV[5], ARGV[8])
  else
    redis.call('ZREM', KEYS[5], ARGV[8])
  end
end
if ARGV[7] ~= '' then redis.call('HINCRBY', KEYS[4], ARGV[7], 1) end
if finished then finish(KEYS[6], finished_id, finished, keep) end
return 1
"""
)

# A claim older than the lease belongs to a worker that died (or hangs). Nothing was handed to
# SMTP while `claimed`/`expanding`: back to pending. In `sending` nobody knows: `uncertain`.
# KEYS: record, due, inflight, stats, uncertain ; ARGV: member, now, cutoff, uncertain_id
_RECOVER = """
local claimed_at = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not claimed_at or tonumber(claimed_at) > tonumber(ARGV[3]) then return false end
redis.call('ZREM', KEYS[3], ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'claimed' or state == 'expanding' then
  redis.call('HSET', KEYS[1], 'state', 'pending', 'claim', '', 'updated_at', ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
  redis.call('HINCRBY', KEYS[4], 'claims_recovered', 1)
  return 'pending'
elseif state == 'sending' then
  redis.call('HSET', KEYS[1], 'state', 'uncertain', 'updated_at', ARGV[2],
             'error', 'the worker stopped while handing the message to SMTP; '
               .. 'not resent automatically')
  redis.call('ZADD', KEYS[5], ARGV[2], ARGV[4])
  redis.call('HINCRBY', KEYS[4], 'deliveries_uncertain', 1)
  return 'uncertain'
end
return state or false
"""

# KEYS: match, due, stats, finished ; ARGV: pair_id, event_id, payload, now, member, counter
_RECORD_MATCH = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'pending', 'pair_id', ARGV[1], 'event_id', ARGV[2],
           'payload', ARGV[3], 'recorded_at', ARGV[4], 'updated_at', ARGV[4], 'attempts', 0)
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('HINCRBY', KEYS[3], ARGV[6], 1)
return 1
"""

# KEYS: match, due, inflight, stats, match_deliveries, finished, delivery1, delivery2, …
# ARGV: member, token, now, final_state, reason, pair_id, keep (seconds), prefix, then 7 per
#       delivery: id, state, org_id, partner_id, side, recipient, reason
_EXPAND = (
    _EXPIRE_IF_FINISHED
    + """
if redis.call('HGET', KEYS[1], 'state') ~= 'expanding'
   or redis.call('HGET', KEYS[1], 'claim') ~= ARGV[2] then
  return -1
end
local keep, prefix = tonumber(ARGV[7]), ARGV[8]
-- what finishes the match is read before anything is written: each delivery's state once this
-- has run (one that exists keeps its own)
local finished = nil
if done_match[ARGV[4]] then
  local changes = {}
  for i = 7, #KEYS do
    local base = 9 + (i - 7) * 7
    changes[ARGV[base]] = redis.call('HGET', KEYS[i], 'state') or ARGV[base + 1]
  end
  finished = finished_keys(prefix, ARGV[6], ARGV[4], changes)
end
local created = 0
for i = 7, #KEYS do
  local base = 9 + (i - 7) * 7
  local id = ARGV[base]
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local state = ARGV[base + 1]
    redis.call('HSET', KEYS[i], 'id', id, 'pair_id', ARGV[6], 'state', state,
               'org_id', ARGV[base + 2], 'partner_id', ARGV[base + 3],
               'side', ARGV[base + 4], 'recipient', ARGV[base + 5], 'reason', ARGV[base + 6],
               'attempts', 0, 'created_at', ARGV[3], 'updated_at', ARGV[3])
    if state == 'pending' then redis.call('ZADD', KEYS[2], ARGV[3], 'd:' .. id) end
    if state == 'skipped' then redis.call('HINCRBY', KEYS[4], 'deliveries_skipped', 1) end
    redis.call('HINCRBY', KEYS[4], 'deliveries_created', 1)
    created = created + 1
  end
  redis.call('SADD', KEYS[5], id)
end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'reason', ARGV[5], 'expanded_at', ARGV[3],
           'updated_at', ARGV[3], 'claim', '')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[4], 'matches_' .. ARGV[4], 1)
if finished then finish(KEYS[6], ARGV[6], finished, keep) end
return created
"""
)

# The matches finished while nothing gave their records an expiry (see expire_finished): KEYS,
# finished and then the matches' records; ARGV: keep (seconds), prefix. How many got one now. Each
# match is read before its own writes (not before those of the matches ahead of it).
_EXPIRE_FINISHED = (
    _EXPIRE_IF_FINISHED
    + """
local keep, prefix, given = tonumber(ARGV[1]), ARGV[2], 0
for i = 2, #KEYS do
  local id = string.sub(KEYS[i], #prefix + #'match:' + 1)
  local finished = finished_keys(prefix, id, nil, {})
  if finished then given = given + finish(KEYS[1], id, finished, keep) end
end
return given
"""
)

# KEYS: pairs, closed, clusters ; ARGV: pair_id, clusters (space-separated slugs), now, new-hash prefix
_NOTE_SUGGESTED = """
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old == ARGV[2] then return 0 end
local before, now = {}, {}
for c in string.gmatch(old or '', '%S+') do before[c] = true end
for c in string.gmatch(ARGV[2], '%S+') do now[c] = true end
for c, _ in pairs(before) do
  if not now[c] then redis.call('HDEL', ARGV[4] .. c, ARGV[1]) end
end
local added = 0
for c, _ in pairs(now) do
  if not before[c] then
    redis.call('HSETNX', ARGV[4] .. c, ARGV[1], ARGV[3])
    redis.call('SADD', KEYS[3], c)
    added = added + 1
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return added
"""

# A pair that no longer waits (withdrawn, or decided: then closed for good).
# KEYS: pairs, closed ; ARGV: pair_id, "1" to close, clusters (space-separated), new-hash prefix
_NOTE_GONE = """
local known = (redis.call('HGET', KEYS[1], ARGV[1]) or '') .. ' ' .. ARGV[3]
for c in string.gmatch(known, '%S+') do redis.call('HDEL', ARGV[4] .. c, ARGV[1]) end
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[2] == '1' then redis.call('SADD', KEYS[2], ARGV[1]) end
return 1
"""

# One digest per cluster and period, of the pairs first seen before the period began: made once
# (the period is remembered in the same script), so crashes and many workers never make two.
# KEYS: new, periods, notice, due, stats, clusters
# ARGV: cluster, period, period_start, now, notice id
_TAKE_DIGEST = """
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
if last >= tonumber(ARGV[2]) then return 0 end
local entries = redis.call('HGETALL', KEYS[1])
local ready = {}
for i = 1, #entries, 2 do
  if tonumber(entries[i + 1]) < tonumber(ARGV[3]) then table.insert(ready, entries[i]) end
end
if #ready == 0 then
  if #entries == 0 then redis.call('SREM', KEYS[6], ARGV[1]) end
  return 0
end
for _, id in ipairs(ready) do redis.call('HDEL', KEYS[1], id) end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[6], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local payload = cjson.encode({kind = 'digest', cluster_id = ARGV[1], period = ARGV[2],
                              new_suggestions = #ready})
redis.call('HSET', KEYS[3], 'state', 'pending', 'pair_id', ARGV[5], 'event_id', '',
           'payload', payload, 'recorded_at', ARGV[4], 'updated_at', ARGV[4], 'attempts', 0)
redis.call('ZADD', KEYS[4], ARGV[4], 'm:' .. ARGV[5])
redis.call('HINCRBY', KEYS[5], 'digests_recorded', 1)
return #ready
"""

_SUPPRESS = """
local added = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if added == 1 then redis.call('HINCRBY', KEYS[2], 'unsubscribes', 1) end
return added
"""


@dataclass(frozen=True)
class NewDelivery:
    id: str
    org_id: str
    partner_id: str
    side: str  # "a" or "b": which organisation of the pair the recipient belongs to
    recipient: str  # domain.recipient_key of the address
    state: str = domain.PENDING
    reason: str = ""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _hash(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _suppression(email: str, kind: str) -> str:
    key = domain.recipient_key(email)
    return key if kind == domain.PARTNERSHIP else f"{kind}:{key}"


def _num(value: float) -> str:
    return repr(round(float(value), 6))


@dataclass(frozen=True)
class DigestNote:
    """One call of a digest script (see RedisDeliveryLedger.note_all): the script, its keys and
    arguments."""

    script: Script
    keys: list[str]
    args: list[str]


class RedisDeliveryLedger:
    def __init__(
        self, client: redis.Redis, prefix: str = PREFIX, keep_s: int = domain.LEDGER_KEEP_DAYS * 86400
    ) -> None:
        """`keep_s`: how long a finished match's records are kept (0: for ever; see the module's
        docstring)."""
        self.r = client
        self.prefix = prefix
        self.keep_s = max(0, int(keep_s))
        self.finished_key = prefix + "finished"
        self.due_key = prefix + "due"
        self.inflight_key = prefix + "inflight"
        self.uncertain_key = prefix + "uncertain"
        self.suppressed_key = prefix + "suppressed"
        self.stats_key = prefix + "stats"
        self._claim = client.register_script(_CLAIM)
        self._transition = client.register_script(_TRANSITION)
        self._recover = client.register_script(_RECOVER)
        self._record_match = client.register_script(_RECORD_MATCH)
        self._expand = client.register_script(_EXPAND)
        self._expire_finished = client.register_script(_EXPIRE_FINISHED)
        self._suppress = client.register_script(_SUPPRESS)
        self._note_suggested = client.register_script(_NOTE_SUGGESTED)
        self._note_gone = client.register_script(_NOTE_GONE)
        self._take_digest = client.register_script(_TAKE_DIGEST)
        # The scripts run for every suggestion and withdrawal the consumer reads (the digests'
        # counts) go on a connection of the consumer's thread, without redis-py's layers.
        self._direct = DirectCommands(client)
        self.digest_pairs_key = prefix + "digest:pairs"
        self.digest_new_prefix = prefix + "digest:new:"
        self.digest_clusters_key = prefix + "digest:clusters"
        self.digest_periods_key = prefix + "digest:periods"
        self.digest_closed_key = prefix + "digest:closed"

    # ---- keys ---------------------------------------------------------------------------------

    def match_key(self, pair_id: str) -> str:
        return f"{self.prefix}match:{pair_id}"

    def delivery_key(self, delivery_id: str) -> str:
        return f"{self.prefix}delivery:{delivery_id}"

    def _record_key(self, member: str) -> str:
        kind, _, ident = member.partition(":")
        return self.match_key(ident) if kind == "m" else self.delivery_key(ident)

    @staticmethod
    def match_member(pair_id: str) -> str:
        return f"m:{pair_id}"

    @staticmethod
    def delivery_member(delivery_id: str) -> str:
        return f"d:{delivery_id}"

    # ---- the consumer's side ------------------------------------------------------------------

    def record_match(
        self,
        pair_id: str,
        event_id: str,
        payload: Mapping[str, Any],
        now: float,
        counter: str = "matches_recorded",
    ) -> bool:
        """Remember an approved match (or, under its notice id, a coordinators' notice) to be sent,
        once; True if it is new (replays return False)."""
        created = self._record_match(
            keys=[self.match_key(pair_id), self.due_key, self.stats_key, self.finished_key],
            args=[
                pair_id,
                event_id,
                json.dumps(payload, ensure_ascii=False, sort_keys=True),
                _num(now),
                self.match_member(pair_id),
                counter,
            ],
        )
        return bool(created)

    # ---- the worker's side --------------------------------------------------------------------

    def due(self, now: float, limit: int = 50) -> list[str]:
        return [_text(m) for m in self.r.zrangebyscore(self.due_key, "-inf", _num(now), start=0, num=limit)]

    def next_due_at(self) -> float | None:
        first = self.r.zrange(self.due_key, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def claim(self, member: str, token: str, now: float) -> int:
        """Take a due match or delivery for this worker; the attempt number, or 0 if someone else
        has it, it is not due, or it is already final."""
        if member.startswith("m:"):
            to, allowed = domain.MATCH_EXPANDING, domain.MATCH_TRANSITIONS[domain.MATCH_EXPANDING]
        else:
            to, allowed = domain.CLAIMED, domain.TRANSITIONS[domain.CLAIMED]
        return int(
            self._claim(
                keys=[self._record_key(member), self.due_key, self.inflight_key],
                args=[member, _num(now), token, to, ",".join(allowed)],
            )
        )

    def match(self, pair_id: str) -> dict[str, Any] | None:
        raw = _hash(self.r.hgetall(self.match_key(pair_id)))
        if not raw:
            return None
        record: dict[str, Any] = dict(raw)
        record["payload"] = json.loads(raw.get("payload") or "{}")
        return record

    def delivery(self, delivery_id: str) -> dict[str, str] | None:
        raw = _hash(self.r.hgetall(self.delivery_key(delivery_id)))
        return raw or None

    def deliveries_of(self, pair_id: str) -> list[dict[str, str]]:
        ids = sorted(_text(i) for i in self.r.smembers(self.match_key(pair_id) + ":deliveries"))
        found = [self.delivery(i) for i in ids]
        return [d for d in found if d is not None]

    def expand(
        self,
        pair_id: str,
        token: str,
        now: float,
        deliveries: Sequence[NewDelivery],
        final_state: str = domain.MATCH_EXPANDED,
        reason: str = "",
    ) -> int:
        """Turn a claimed match into its deliveries, atomically; existing deliveries are kept as
        they are, so expanding twice creates nothing twice. -1 if the claim was lost."""
        keys = [
            self.match_key(pair_id),
            self.due_key,
            self.inflight_key,
            self.stats_key,
            self.match_key(pair_id) + ":deliveries",
            self.finished_key,
        ]
        args: list[str] = [
            self.match_member(pair_id),
            token,
            _num(now),
            final_state,
            reason,
            pair_id,
            str(self.keep_s),
            self.prefix,
        ]
        for d in deliveries:
            keys.append(self.delivery_key(d.id))
            args += [d.id, d.state, d.org_id, d.partner_id, d.side, d.recipient, d.reason]
        return int(self._expand(keys=keys, args=args))

    def transition(
        self,
        member: str,
        token: str,
        to: str,
        now: float,
        *,
        due_at: float | None = None,
        counter: str = "",
        fields: Mapping[str, Any] | None = None,
        allowed_from: Iterable[str] | None = None,
    ) -> bool:
        """Move a claimed record to `to` if it is in a state `to` may be reached from (the table in
        `domain`) and this worker's claim still holds it (empty token: no claim check)."""
        is_match = member.startswith("m:")
        table = domain.MATCH_TRANSITIONS if is_match else domain.TRANSITIONS
        sources = tuple(allowed_from) if allowed_from is not None else table[to]
        args: list[str] = [
            member,
            token,
            to,
            ",".join(sources),
            _num(now),
            "" if due_at is None else _num(due_at),
            counter,
            "" if is_match else member.partition(":")[2],
            str(self.keep_s),
            self.prefix,
        ]
        for key, value in (fields or {}).items():
            args += [key, "" if value is None else str(value)]
        done = self._transition(
            keys=[
                self._record_key(member),
                self.due_key,
                self.inflight_key,
                self.stats_key,
                self.uncertain_key,
                self.finished_key,
            ],
            args=args,
        )
        return bool(done)

    def recover_stale(self, now: float, lease_s: float, limit: int = 100) -> list[tuple[str, str]]:
        """Claims older than the lease: what became of each ((member, new state))."""
        cutoff = now - lease_s
        stale = [_text(m) for m in self.r.zrangebyscore(self.inflight_key, "-inf", _num(cutoff), start=0, num=limit)]
        outcome = []
        for member in stale:
            result = self._recover(
                keys=[
                    self._record_key(member),
                    self.due_key,
                    self.inflight_key,
                    self.stats_key,
                    self.uncertain_key,
                ],
                args=[
                    member,
                    _num(now),
                    _num(cutoff),
                    "" if member.startswith("m:") else member.partition(":")[2],
                ],
            )
            if result:
                outcome.append((member, _text(result)))
        return outcome

    # ---- operators ----------------------------------------------------------------------------

    def uncertain(self, limit: int = 1000) -> list[dict[str, str]]:
        ids = [_text(i) for i in self.r.zrange(self.uncertain_key, 0, limit - 1)]
        return [d for d in (self.delivery(i) for i in ids) if d is not None]

    def release(self, delivery_id: str, now: float) -> bool:
        """An operator checked that an uncertain delivery did not arrive: send it again."""
        return self.transition(
            self.delivery_member(delivery_id),
            "",
            domain.PENDING,
            now,
            due_at=now,
            counter="deliveries_released",
            allowed_from=(domain.UNCERTAIN,),
            fields={"claim": "", "error": "released by an operator"},
        )

    def counts(self) -> dict[str, int]:
        stats = {k: int(v) for k, v in _hash(self.r.hgetall(self.stats_key)).items()}
        pipe = self.r.pipeline(transaction=False)
        pipe.zcard(self.due_key)
        pipe.zcard(self.inflight_key)
        pipe.zcard(self.uncertain_key)
        pipe.hlen(self.suppressed_key)
        due, inflight, uncertain, suppressed = pipe.execute()
        stats.update(
            backlog=int(due),
            inflight=int(inflight),
            uncertain_now=int(uncertain),
            suppressed=int(suppressed),
        )
        return stats

    # ---- suppressions -------------------------------------------------------------------------

    def suppress(self, email: str, org_id: str, now_iso: str, kinds: Iterable[str] = (domain.PARTNERSHIP,)) -> bool:
        """Unsubscribe an address from the given kinds of email (partnership emails unless told);
        True the first time for any of them."""
        entry = json.dumps({"at": now_iso, "org_id": org_id})
        added = [
            self._suppress(
                keys=[self.suppressed_key, self.stats_key],
                args=[_suppression(email, kind), entry],
            )
            for kind in kinds
        ]
        return any(added)

    def unsuppress(self, email: str, kinds: Iterable[str] = (domain.PARTNERSHIP,)) -> bool:
        """Subscribe an address again to the given kinds of email (its owner undid an unsubscribe);
        True when it was unsubscribed from any of them."""
        removed = self.r.hdel(self.suppressed_key, *(_suppression(email, kind) for kind in kinds))
        if removed:
            self.r.hincrby(self.stats_key, "resubscribes", 1)
        return bool(removed)

    def is_suppressed(self, email: str, kind: str = domain.PARTNERSHIP) -> bool:
        return bool(self.r.hexists(self.suppressed_key, _suppression(email, kind)))

    # ---- what the coordinators' digests count ---------------------------------------------------

    def note_suggested(self, pair_id: str, clusters: Iterable[str], now: float) -> int:
        """A pair waits for its clusters: new to each cluster that did not have it waiting (how
        many). A re-scored pair, a replay, or a pair already decided is not new."""
        note = self.suggested_note(pair_id, clusters, now)
        return int(self._direct.script(note.script, note.keys, note.args))

    def note_gone(self, pair_id: str, clusters: Iterable[str], decided: bool) -> None:
        """A pair no longer waits: withdrawn, or decided (then never new again)."""
        note = self.gone_note(pair_id, clusters, decided)
        self._direct.script(note.script, note.keys, note.args)

    def suggested_note(self, pair_id: str, clusters: Iterable[str], now: float) -> DigestNote:
        """note_suggested's script call, for note_all."""
        keys = [self.digest_pairs_key, self.digest_closed_key, self.digest_clusters_key]
        return DigestNote(
            self._note_suggested, keys, [pair_id, " ".join(sorted(set(clusters))), _num(now), self.digest_new_prefix]
        )

    def gone_note(self, pair_id: str, clusters: Iterable[str], decided: bool) -> DigestNote:
        """note_gone's script call, for note_all."""
        keys = [self.digest_pairs_key, self.digest_closed_key]
        return DigestNote(
            self._note_gone, keys, [pair_id, "1" if decided else "", " ".join(clusters), self.digest_new_prefix]
        )

    def note_all(self, notes: Sequence[DigestNote]) -> None:
        """Notes (suggested_note, gone_note) run in order, as many calls of note_suggested and
        note_gone would, in one round trip where the client allows (see DirectCommands; a cluster
        client sends them one by one). The consumer reads a suggestion or withdrawal for each pair
        step of the matcher, some 27 for each profile written at 2,000 organisations with every
        list cached (bench/event_path.py --cached 1.0), each a round trip of its own before. A
        server that lost the scripts has them loaded and the notes sent again: each note is
        idempotent (a pair noted twice is not new twice, one gone twice is gone), so those the
        first sending ran change nothing more."""
        if not notes:
            return
        commands = [("EVALSHA", n.script.sha, len(n.keys), *n.keys, *n.args) for n in notes]
        for attempt in range(2):
            try:
                if self._direct.round_trip(commands) is not None:
                    return
                break
            except redis.exceptions.NoScriptError:
                if attempt:
                    break
                for script in {id(n.script): n.script for n in notes}.values():
                    self.r.script_load(script.script)
        for note in notes:
            self._direct.script(note.script, note.keys, note.args)

    def clusters_with_new_suggestions(self) -> list[str]:
        return sorted(_text(c) for c in self.r.smembers(self.digest_clusters_key))

    def take_digest(self, cluster_id: str, period: int, period_start: float, now: float) -> int:
        """Record the cluster's digest of `period` for sending, once: the pairs first seen before
        the period began and not yet in a digest (how many; 0 when none, or already made)."""
        notice = domain.digest_id(cluster_id, period)
        return int(
            self._take_digest(
                keys=[
                    self.digest_new_prefix + cluster_id,
                    self.digest_periods_key,
                    self.match_key(notice),
                    self.due_key,
                    self.stats_key,
                    self.digest_clusters_key,
                ],
                args=[cluster_id, str(period), _num(period_start), _num(now), notice],
            )
        )

    def adopt_untagged_keys(self) -> int:
        """Move the keys the ledger wrote before they had a hash tag (`notifier:…`) to their tagged
        names, once (how many); see `partnermatch.redis_client.adopt_untagged_keys`."""
        return adopt_untagged_keys(self.r, UNTAGGED_PREFIX, self.prefix)

    def expire_finished(self, batch: int = 500) -> int:
        """Give the matches finished while nothing set their records' expiry theirs (before this
        version, or while keep_s was 0), remembering their ids: the match records are scanned in
        batches, each batch one script; a record that expires already keeps its time, one not
        finished waits for its last delivery. How many got an expiry now (none with keep_s 0).
        Every start runs it: the ledger holds the last keep_s's records, and two notifiers starting
        together only find the other's work done."""
        if not self.keep_s:
            return 0
        calls = script_in_batches(
            self.r,
            self._expire_finished,
            self.match_key("*"),  # of type hash: not a match's set of deliveries
            "hash",
            batch,
            first_keys=[self.finished_key],
            args=[str(self.keep_s), self.prefix],
        )
        return sum(calls)

    def was_finished(self, pair_id: str) -> bool:
        """Whether the match (or decision notice) was finished: its records may have expired."""
        return bool(self.r.sismember(self.finished_key, pair_id))

    def ping(self) -> bool:
        return bool(self.r.ping())
