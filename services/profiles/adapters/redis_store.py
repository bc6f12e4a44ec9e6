"""Redis adapter of the profiles service: clusters, coordinators, organisations, tokens, the outbox,
and the organisations' sign-in links and page sessions.

Every change of an organisation writes the profile and its outbox entry in one MULTI, so there
is never a 2xx without a durable event, nor an event without a profile; the index of contact
emails (who may ask for a sign-in link) changes in the same MULTI. Does I/O (Redis).

An edit read with its token (`principal_and_org`) WATCHes the record in that read, and is
stored by MULTI/EXEC on the same connection: EXEC fails if anyone wrote the record since. The
other changes compare the record in a script; Redis spends some 20 µs more on a script that
takes the records than on the same commands in a MULTI (bench/write_path.py --redis-stats).

Every key shares the hash tag `{profiles}`: a registration writes the organisation with the
global list of organisations, its cluster's set, its token, the contact index and the outbox,
so on Redis Cluster the whole store is one slot (one node; see bench/redis_memory.py).
Keys written before the tag (`profiles:…`) are moved once by `adopt_untagged_keys`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
import redis

from partnermatch import events
from partnermatch.jsonvalues import holds_float
from partnermatch.outbox import Outbox, entry_fields
from partnermatch.redis_client import DirectCommands, adopt_untagged_keys
from partnermatch.topics import PROFILES

P = "{profiles}:"  # one hash tag: on Redis Cluster every key is in one slot (see below)
UNTAGGED_PREFIX = "profiles:"  # where the keys were before they had a hash tag
ORG = P + "org:"
ORGS = P + "orgs"  # zset: org id by creation time (stable paging)
CLUSTER = P + "cluster:"
CLUSTERS = P + "clusters"
COORD = P + "coordinator:"
TOKEN = P + "token:"  # token digest -> json principal
# org id -> the payload of its deletion (id, revision, cluster; nothing personal), so a resync can
# publish deletions again for a broker that lost them.
DELETED = P + "deleted"
# set once every detected Serbian, Croatian or Bosnian was detected again with its country; and
# held by the one process doing it (several relays, or a restart while one still runs)
LANGUAGES_SETTLED = P + "languages-settled"
LANGUAGES_SETTLING = P + "languages-settling"
LANGUAGES_SETTLING_S = 600
CONTACT_EMAIL = P + "contact-email:"  # sha256 of a lower-case contact email -> set of org ids
SIGNIN = P + "signin:"  # nonce of an unused sign-in link -> json {org_id, contact_id}
WEB_SESSION = P + "web-session:"  # sha256 of a page session id -> json {org_id, contact_id}
ORG_WEB_SESSIONS = P + "org-web-sessions:"  # org id -> set of its page sessions' digests


def _dumps(value: Any) -> bytes | str:
    """A record as stored: compact JSON in UTF-8, made by orjson. What orjson refuses (an integer
    beyond 64 bits, a lone surrogate) is made as before by json, which writes the integer and
    leaves the surrogate to be refused where the command is packed."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False)


def _loads(raw: bytes | str) -> Any:
    """A stored record read back: by orjson, or by json where orjson refuses what json reads (an
    escaped lone surrogate), which also raises json's own errors. A record holds no floats: one
    read is an integer beyond 64 bits that orjson made a float, which json reads exactly."""
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
    return json.loads(raw) if holds_float(found) else found


def _org_principal(org_id: str, cluster_id: str) -> str:
    """What an organisation's token stands for, as stored under TOKEN."""
    return json.dumps({"role": "organisation", "org_id": org_id, "cluster_id": cluster_id})


def _email_key(email: str) -> str:
    # Hashed: key names show up in monitoring and slow logs, addresses should not.
    return CONTACT_EMAIL + hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def _emails(org: dict[str, Any] | None) -> set[str]:
    return {c["email"].strip().lower() for c in (org or {}).get("contacts") or [] if c.get("email")}


# The commands a change queued on a pipeline, as for a MULTI, run by a script atomically or not at
# all: ARGV from `first` on holds each command as its length and its words.
_APPLY = """
local i = {first}
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
"""
# A change computed from a record read earlier, applied only if the record still holds what was
# read (ARGV[1]): a deletion or a move to another cluster (the other changes: _PUT_IF_UNCHANGED).
_APPLY_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
""" + _APPLY.format(first=2)
_COLLECTOR = redis.Redis()  # never sends a command: it gathers the ones a change queues

# The two writes the API makes most, each as one script with its keys and values as they are: a
# registration and an edit that leaves the organisation in its cluster. A generic change above
# passes each command's words (some 40 for a registration), and packing each costs the client
# more than the script costs Redis. Both queue the event's outbox entry (outbox.entry_fields, its
# names and values in turn) with the state.
# KEYS: cluster, organisation, all organisations, the cluster's organisations, token, outbox, the
# deleted organisations, then the contact emails' keys. ARGV: record, creation ms, id, token's
# principal, token lifetime, then the outbox entry. An id in use, or once used by an organisation
# since deleted (the page's ids are drawn from its form), is refused (0).
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('HEXISTS', KEYS[7], ARGV[3]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[3])
redis.call('SET', KEYS[5], ARGV[4], 'EX', ARGV[5])
for i = 8, #KEYS do redis.call('SADD', KEYS[i], ARGV[3]) end
redis.call('XADD', KEYS[6], '*', unpack(ARGV, 6))
return 1
"""
# Applied only if the record still holds what was read (ARGV[1]). KEYS: organisation, outbox, the
# keys of the contact emails it no longer has (ARGV[4] of them), then of the ones it has now.
# ARGV: record as read, new record, id, how many emails went, then the outbox entry.
_PUT_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
local gone = 2 + tonumber(ARGV[4])
for i = 3, gone do redis.call('SREM', KEYS[i], ARGV[3]) end
for i = gone + 1, #KEYS do redis.call('SADD', KEYS[i], ARGV[3]) end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 5))
return 1
"""


def _entry_words(envelope: events.Envelope, topic: str, key: str) -> list[str | bytes]:
    return [word for pair in entry_fields(envelope, topic, key).items() for word in pair]


def _queued(pipe: redis.client.Pipeline) -> list[Any]:
    """The commands queued on a pipeline of _COLLECTOR, as the scripts above take them. The pipeline
    only collects: its client never connects (a cluster client's pipeline keeps no command_stack)."""
    return [arg for args, _options in pipe.command_stack for arg in (len(args), *args)]


# Changes of one organisation that lost the race to another this often are refused (a 409), not retried on.
CHANGE_ATTEMPTS = 50


class Conflict(Exception):
    """The object exists already (or changed under us too often)."""


class NotFound(Exception):
    pass


class MissingCluster(Exception):
    """The cluster an organisation was to be stored in does not exist."""


# How long an organisation's API token works unless rotated sooner (PROFILES_ORG_TOKEN_TTL_S).
ORG_TOKEN_TTL_S = 365 * 24 * 3600


class RedisProfileStore:
    def __init__(self, client: redis.Redis, topic: str = PROFILES, org_token_ttl_s: int = ORG_TOKEN_TTL_S) -> None:
        self.r = client
        self.topic = topic
        self.outbox = Outbox(client, P)
        self.org_token_ttl_s = org_token_ttl_s
        self._apply_if_unchanged = client.register_script(_APPLY_IF_UNCHANGED)
        self._create = client.register_script(_CREATE)
        self._put_if_unchanged = client.register_script(_PUT_IF_UNCHANGED)
        # The API's writes (a registration, an edit's read and its compare-and-set) skip redis-py's
        # layers around each command, which cost the client twice what the round trip does.
        self._direct = DirectCommands(client)
        # This thread's WATCH on its direct connection: (pid, key, the record read right after the
        # WATCH) while an edit may still store that record by EXEC; (pid, None, None) while a
        # WATCH may be left that nothing will use; None when none is.
        self._watch = threading.local()

    # ---- clusters and coordinators ----------------------------------------------------------

    def create_cluster(self, cluster: dict[str, Any]) -> None:
        if not self.r.set(CLUSTER + cluster["id"], json.dumps(cluster, ensure_ascii=False), nx=True):
            raise Conflict(f"cluster {cluster['id']} exists")
        self.r.sadd(CLUSTERS, cluster["id"])

    def get_cluster(self, cluster_id: str) -> dict[str, Any] | None:
        raw = self.r.get(CLUSTER + cluster_id)
        return json.loads(raw) if raw else None

    def list_clusters(self) -> list[dict[str, Any]]:
        ids = sorted(i.decode() for i in self.r.smembers(CLUSTERS))
        raws = self.r.mget([CLUSTER + i for i in ids]) if ids else []
        return [json.loads(r) for r in raws if r]

    def create_coordinator(self, coordinator: dict[str, Any]) -> None:
        key = COORD + coordinator["username"]
        if not self.r.set(key, json.dumps(coordinator, ensure_ascii=False), nx=True):
            raise Conflict(f"coordinator {coordinator['username']} exists")
        self.r.sadd(CLUSTER + coordinator["cluster_id"] + ":coordinators", coordinator["username"])

    def get_coordinator(self, username: str) -> dict[str, Any] | None:
        raw = self.r.get(COORD + username)
        return json.loads(raw) if raw else None

    def cluster_coordinators(self, cluster_id: str) -> list[dict[str, Any]]:
        names = sorted(n.decode() for n in self.r.smembers(CLUSTER + cluster_id + ":coordinators"))
        raws = self.r.mget([COORD + n for n in names]) if names else []
        return [json.loads(r) for r in raws if r]

    # ---- tokens -----------------------------------------------------------------------------

    def save_token(self, digest: str, principal: dict[str, Any], ttl_s: int | None = None) -> None:
        self.r.set(TOKEN + digest, json.dumps(principal), ex=ttl_s)

    def delete_token(self, digest: str) -> bool:
        return bool(self.r.delete(TOKEN + digest))

    def principal_for(self, digest: str) -> dict[str, Any] | None:
        """The principal of a live token. An organisation's token issued before tokens expired gets
        its lifetime from now on first use (EXPIRE NX leaves one that has a lifetime alone)."""
        with self.r.pipeline(transaction=False) as pipe:
            pipe.get(TOKEN + digest)
            pipe.ttl(TOKEN + digest)
            raw, ttl = pipe.execute()
        return self._principal(digest, raw, ttl)

    def principal_and_org(self, digest: str, org_id: str) -> tuple[dict[str, Any] | None, bytes | None]:
        """principal_for(digest), and the organisation's record as stored (for change_org's
        `stored`), read in one round trip."""
        token, org = TOKEN + digest, ORG + org_id
        pid = os.getpid()
        left = getattr(self._watch, "state", None)
        # An edit refused after its read left its WATCH: dropped here, so it fails no other EXEC.
        unwatch = (("UNWATCH",),) if left is not None and left[0] == pid else ()
        self._watch.state = None
        replies = self._direct.round_trip((*unwatch, ("WATCH", org), ("GET", token), ("TTL", token), ("GET", org)))
        if replies is None:  # not sent on the direct connection (or it failed): no WATCH held
            with self.r.pipeline(transaction=False) as pipe:
                pipe.get(token)
                pipe.ttl(token)
                pipe.get(org)
                replies = pipe.execute()
        else:
            replies = replies[len(unwatch) + 1 :]
            self._watch.state = (pid, org, replies[2])
        raw, ttl, stored = replies
        return self._principal(digest, raw, ttl), stored

    def _principal(self, digest: str, raw: bytes | None, ttl: int) -> dict[str, Any] | None:
        if not raw:
            return None
        principal = _loads(raw)
        if ttl == -1 and principal.get("role") == "organisation":
            self.r.expire(TOKEN + digest, self.org_token_ttl_s, nx=True)
        return principal

    def replace_org_token(self, org_id: str, digest: str | None) -> dict[str, Any]:
        """The organisation's API token replaced by the one of `digest` (None: none at all), the old
        one revoked in the same transaction; the organisation as stored now."""
        key = ORG + org_id
        result: dict[str, Any] = {}

        def txn(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(key)
            if raw is None:
                raise NotFound(org_id)
            org = _loads(raw)
            old = org.get("token_digest")
            org["token_digest"] = digest
            pipe.multi()
            if old:
                pipe.delete(TOKEN + old)
            if digest is not None:
                pipe.set(TOKEN + digest, _org_principal(org_id, org["cluster_id"]), ex=self.org_token_ttl_s)
            pipe.set(key, _dumps(org))
            result["org"] = org

        self.r.transaction(txn, key)
        return result["org"]

    # ---- organisations ----------------------------------------------------------------------

    def get_org(self, org_id: str) -> dict[str, Any] | None:
        raw = self.r.get(ORG + org_id)
        return _loads(raw) if raw else None

    def count_orgs(self, cluster_id: str | None = None) -> int:
        if cluster_id:
            return int(self.r.scard(CLUSTER + cluster_id + ":orgs"))
        return int(self.r.zcard(ORGS))

    def list_orgs(self, offset: int, limit: int, cluster_id: str | None = None) -> list[dict[str, Any]]:
        if cluster_id:
            ids = sorted(i.decode() for i in self.r.smembers(CLUSTER + cluster_id + ":orgs"))[offset : offset + limit]
        else:
            ids = [i.decode() for i in self.r.zrange(ORGS, offset, offset + limit - 1)]
        raws = self.r.mget([ORG + i for i in ids]) if ids else []
        return [_loads(r) for r in raws if r]

    def iter_deletions(self) -> Iterator[dict[str, Any]]:
        """The payload of every deletion (`profile.deleted`), for a resync."""
        for _org_id, raw in self.r.hscan_iter(DELETED):
            yield json.loads(raw)

    def iter_org_ids(self) -> Iterator[str]:
        for member, _score in self.r.zscan_iter(ORGS):
            yield member.decode()

    def create_org(
        self, org: dict[str, Any], token_digest: str, principal: dict[str, Any], envelope: events.Envelope
    ) -> None:
        """Profile, its credential, its indexes and its event: all or nothing, and only in a cluster
        that exists (MissingCluster)."""
        org_id, cluster = org["id"], CLUSTER + org["cluster_id"]
        created = self._direct.script(
            self._create,
            [
                cluster,
                ORG + org_id,
                ORGS,
                cluster + ":orgs",
                TOKEN + token_digest,
                self.outbox.stream,
                DELETED,
                *(_email_key(email) for email in _emails(org)),
            ],
            [
                _dumps(org),
                org["created_ms"],
                org_id,
                _dumps(principal),
                self.org_token_ttl_s,
                *_entry_words(envelope, self.topic, org_id),
            ],
        )
        if created == -1:
            raise MissingCluster(org["cluster_id"])
        if not created:  # an id in use or once used: the page's form sent again, or (never silent) a collision
            raise Conflict(f"organisation {org['id']} exists or existed")

    def change_org(
        self,
        org_id: str,
        change: Callable[[dict[str, Any]], tuple[dict[str, Any] | None, events.Envelope]],
        stored: bytes | None = None,
    ) -> dict[str, Any] | None:
        """Read-modify-write: `change(old)` returns the new org (None = delete) and its event, which are
        stored together only if nobody changed the org meanwhile; else it is read and changed again.
        `stored`: the record as just read (principal_and_org), which saves the first read."""
        key = ORG + org_id
        for _attempt in range(CHANGE_ATTEMPTS):
            raw, stored = stored or self.r.get(key), None
            if raw is None:
                raise NotFound(org_id)
            old = _loads(raw)
            new, envelope = change(old)
            if new is not None and new["cluster_id"] == old["cluster_id"]:
                if self._put(org_id, raw, old, new, envelope):
                    return new
                continue
            with _COLLECTOR.pipeline(transaction=True) as pipe:
                self._queue_change(pipe, org_id, old, new, envelope)
                commands = _queued(pipe)
            if self._apply_if_unchanged(keys=[key], args=[raw, *commands]):
                return new
        raise Conflict(f"organisation {org_id} changed under us {CHANGE_ATTEMPTS} times")

    def _put(
        self, org_id: str, raw: bytes, old: dict[str, Any], new: dict[str, Any], envelope: events.Envelope
    ) -> bool:
        """An organisation changed within its cluster, stored with its event if it is still `raw`."""
        before, after = _emails(old), _emails(new)
        gone = [_email_key(email) for email in before - after]
        watched = self._watched_put(org_id, raw, new, gone, after - before, envelope)
        if watched is not None:
            return watched
        return bool(
            self._direct.script(
                self._put_if_unchanged,
                [ORG + org_id, self.outbox.stream, *gone, *(_email_key(email) for email in after - before)],
                [
                    raw,
                    _dumps(new),
                    org_id,
                    len(gone),
                    *_entry_words(envelope, self.topic, org_id),
                ],
            )
        )

    def _watched_put(
        self,
        org_id: str,
        raw: bytes,
        new: dict[str, Any],
        gone: list[str],
        added: set[str],
        envelope: events.Envelope,
    ) -> bool | None:
        """The change stored by MULTI/EXEC where this thread's direct connection WATCHed the record
        before it read `raw` (principal_and_org): True if stored, False if the record was written
        since (EXEC fails). None where no such WATCH holds, or the connection failed (which drops
        its WATCH): the compare-and-set script decides then."""
        key, pid = ORG + org_id, os.getpid()
        state = getattr(self._watch, "state", None)
        if state is None or state[0] != pid or state[1] != key or state[2] is not raw:
            return None
        self._watch.state = (pid, None, None)  # used up, whatever happens now
        replies = self._direct.round_trip(
            (
                ("MULTI",),
                ("SET", key, _dumps(new)),
                *(("SREM", email_key, org_id) for email_key in gone),
                *(("SADD", _email_key(email), org_id) for email in added),
                ("XADD", self.outbox.stream, "*", *_entry_words(envelope, self.topic, org_id)),
                ("EXEC",),
            )
        )
        if replies is None:  # not sent, or its connection (and the WATCH) is gone
            return None
        self._watch.state = None  # EXEC ends the WATCH, whether it ran or not
        done = replies[-1]
        if done is None:
            return False
        for reply in done:
            if isinstance(reply, redis.ResponseError):  # as a script stops at its failing command
                raise reply
        return True

    def _queue_change(
        self,
        pipe: redis.client.Pipeline,
        org_id: str,
        old: dict[str, Any],
        new: dict[str, Any] | None,
        envelope: events.Envelope,
    ) -> None:
        key = ORG + org_id
        if new is None:
            pipe.delete(key)
            pipe.zrem(ORGS, org_id)
            pipe.hset(DELETED, org_id, json.dumps(envelope.payload))
            pipe.srem(CLUSTER + old["cluster_id"] + ":orgs", org_id)
            if old.get("token_digest"):
                pipe.delete(TOKEN + old["token_digest"])
            self._revoke_web_sessions(pipe, org_id)
        else:
            pipe.set(key, _dumps(new))
            if new["cluster_id"] != old["cluster_id"]:
                pipe.srem(CLUSTER + old["cluster_id"] + ":orgs", org_id)
                pipe.sadd(CLUSTER + new["cluster_id"] + ":orgs", org_id)
                if new.get("token_digest"):  # the same token, in its new cluster, same lifetime
                    pipe.set(
                        TOKEN + new["token_digest"], _org_principal(org_id, new["cluster_id"]), keepttl=True, xx=True
                    )  # xx: an expired token stays expired
        for email in _emails(old) - _emails(new):
            pipe.srem(_email_key(email), org_id)
        for email in _emails(new) - _emails(old):
            pipe.sadd(_email_key(email), org_id)
        self.outbox.add(pipe, envelope, self.topic, org_id)

    def _revoke_web_sessions(self, pipe: redis.client.Pipeline, org_id: str) -> None:
        # Read before the change is applied: the pipeline only queues. A session opened in between
        # is refused anyway, as its organisation no longer exists.
        digests = self.r.smembers(ORG_WEB_SESSIONS + org_id)
        for digest in digests:
            pipe.delete(WEB_SESSION + digest.decode())
        pipe.delete(ORG_WEB_SESSIONS + org_id)

    # ---- sign-in links and page sessions --------------------------------------------------------

    def orgs_of_contact(self, email: str) -> list[str]:
        """Ids of the organisations that have `email` as a contact person (case does not count)."""
        return sorted(m.decode() for m in self.r.smembers(_email_key(email)))

    def index_contacts(self, orgs: Iterable[dict[str, Any]]) -> None:
        """Add organisations stored before the index of contact emails existed (idempotent)."""
        with self.r.pipeline(transaction=False) as pipe:
            for org in orgs:
                for email in _emails(org):
                    pipe.sadd(_email_key(email), org["id"])
            pipe.execute()

    def save_signin(self, nonce: str, grant: dict[str, Any], ttl_s: int) -> None:
        self.r.set(SIGNIN + nonce, json.dumps(grant), ex=ttl_s, nx=True)

    def peek_signin(self, nonce: str) -> dict[str, Any] | None:
        raw = self.r.get(SIGNIN + nonce)
        return json.loads(raw) if raw else None

    def take_signin(self, nonce: str) -> dict[str, Any] | None:
        """The grant of an unused link, which is used up by this call: of two concurrent calls, one
        gets it (GETDEL is atomic)."""
        raw = self.r.getdel(SIGNIN + nonce)
        return json.loads(raw) if raw else None

    def save_web_session(self, digest: str, session: dict[str, Any], ttl_s: int) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.set(WEB_SESSION + digest, json.dumps(session), ex=ttl_s)
            pipe.sadd(ORG_WEB_SESSIONS + session["org_id"], digest)
            # The newest session lives longest: the set lives as long as it.
            pipe.expire(ORG_WEB_SESSIONS + session["org_id"], ttl_s)
            pipe.execute()

    def web_session(self, digest: str) -> dict[str, Any] | None:
        raw = self.r.get(WEB_SESSION + digest)
        return json.loads(raw) if raw else None

    def web_session_and_ttl(self, digest: str) -> tuple[dict[str, Any] | None, int]:
        """A page session and the seconds it has left (0 for none), in one round trip."""
        with self.r.pipeline(transaction=False) as pipe:
            pipe.get(WEB_SESSION + digest)
            pipe.ttl(WEB_SESSION + digest)
            raw, ttl = pipe.execute()
        return (json.loads(raw) if raw else None), max(0, int(ttl))

    def delete_web_session(self, digest: str) -> None:
        raw = self.r.getdel(WEB_SESSION + digest)
        if raw:
            self.r.srem(ORG_WEB_SESSIONS + json.loads(raw)["org_id"], digest)

    def adopt_untagged_keys(self) -> int:
        """Move the keys written before they had a hash tag (`profiles:…`) to their tagged names,
        once (how many); see `partnermatch.redis_client.adopt_untagged_keys`."""
        return adopt_untagged_keys(self.r, UNTAGGED_PREFIX, P)

    def languages_settled(self) -> bool:
        return bool(self.r.exists(LANGUAGES_SETTLED))

    def mark_languages_settled(self) -> None:
        self.r.set(LANGUAGES_SETTLED, "1")

    def claim_language_settling(self) -> bool:
        """Whether this process may settle the languages now (none other does, for the next 10
        minutes at most: one that died leaves it to the next start)."""
        return bool(self.r.set(LANGUAGES_SETTLING, os.getpid(), nx=True, ex=LANGUAGES_SETTLING_S))

    def end_language_settling(self) -> None:
        self.r.delete(LANGUAGES_SETTLING)

    def release_thread(self) -> None:
        """Give the connection this thread kept for its direct commands back to the pool."""
        self._direct.release()

    def enqueue(self, envelope: events.Envelope, key: str) -> None:
        """An event with no state change (resync)."""
        self.outbox.add(self.r, envelope, self.topic, key)
