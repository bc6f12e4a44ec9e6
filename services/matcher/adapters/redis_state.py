"""The matcher's own Redis state: applied profiles, suggested pairs, their review state, the outbox.

Every change a profile event causes (profile, pairs, events) is written in one MULTI guarded by
WATCH, and so is every coordinator decision: a pair leaves `pending` exactly once and emits
exactly one event. Does I/O (Redis).

Every key shares the hash tag `{matcher}`: a profile event's MULTI writes the global revisions,
pairs with many partners and their clusters' and organisations' lists, and the outbox, so on
Redis Cluster the whole state is one slot (one node; see bench/redis_memory.py). Keys written
before the tag (`matcher:…`) are moved once by `adopt_untagged_keys`; page sessions
(adapters/page_sessions.py) are single keys and stay where they are.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from partnermatch import events
from partnermatch.outbox import Outbox
from partnermatch.redis_client import adopt_untagged_keys
from partnermatch.topics import MATCH_DECISIONS, MATCHES
from services.matcher.adapters.page_sessions import PAGE_SESSION
from services.matcher.feedback import dislikes_in

P = "{matcher}:"  # one hash tag: on Redis Cluster every key is in one slot (see the top)
UNTAGGED_PREFIX = "matcher:"  # where the keys were before they had a hash tag
REVISIONS = P + "revisions"  # org id -> last applied revision (upserts and deletes)
PROFILE = P + "profile:"  # org id -> the profile payload the index holds
PROFILES = P + "profiles"  # set of org ids with a current profile
PAIR = P + "pair:"  # pair id -> json record
DECIDED = P + "decided"  # set of pair ids approved or rejected: never suggested again
PENDING_BY_CLUSTER = P + "pending:cluster:"  # cluster -> zset pair id by score
PENDING_BY_ORG = P + "pending:org:"  # org -> zset pair id by score
HISTORY = P + "history:cluster:"  # cluster -> zset pair id by decision time
HISTORY_BY_ORG = P + "history:org:"  # org -> zset pair id by decision time
# Set once every pair decided before HISTORY_BY_ORG existed has been indexed there too.
HISTORY_BY_ORG_BUILT = P + "history:org:built"
# org -> set of partners its cluster's coordinator rejected for a teaching reason (feedback.py)
DISLIKES = P + "dislikes:org:"
# Set once every pair decided before DISLIKES existed has been indexed there too.
DISLIKES_BUILT = P + "dislikes:built"
LESSONS = P + "lessons"  # pair ids whose rejection has been applied to the lists (once)
# org id -> organisations whose lists want it as a partner before its profile is applied here: one
# matcher's index can be ahead of what the owners of other partitions have applied (table.py)
AWAITING = P + "awaiting:"
PRODUCER = "matcher"


class DecisionRefused(Exception):
    """The pair is not pending any more, or this cluster has already decided."""

    def __init__(self, reason: str, pair: dict[str, Any] | None = None) -> None:
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


@dataclass
class ProfileChange:
    """Everything one profile event changes, applied atomically."""

    org_id: str
    revision: int
    profile: dict[str, Any] | None  # None: deleted
    upserts: list[PairWrite] = field(default_factory=list)
    withdrawals: list[tuple[str, str]] = field(default_factory=list)  # (pair id, reason)
    # Write only the pairs between organisations with a profile here; the others wait (AWAITING).
    # Set by matchers sharing the work, whose index may be ahead of what is applied (table.py).
    known_partners_only: bool = False


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}+00:00"


class RedisMatcherState:
    def __init__(
        self, client: redis.Redis, matches_topic: str = MATCHES, decisions_topic: str = MATCH_DECISIONS
    ) -> None:
        self.r = client
        self.outbox = Outbox(client, P)
        self.matches_topic = matches_topic
        self.decisions_topic = decisions_topic

    def adopt_untagged_keys(self) -> int:
        """Move the keys written before they had a hash tag (`matcher:…`, page sessions aside)
        to their tagged names, once (how many); see `partnermatch.redis_client`."""
        return adopt_untagged_keys(self.r, UNTAGGED_PREFIX, P, keep=(PAGE_SESSION,))

    # ---- profiles ---------------------------------------------------------------------------

    def applied_revision(self, org_id: str) -> int:
        raw = self.r.hget(REVISIONS, org_id)
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
        return json.loads(raw) if raw else None

    def get_profiles(self, org_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(org_ids)
        raws = self.r.mget([PROFILE + i for i in ids]) if ids else []
        return {i: json.loads(r) for i, r in zip(ids, raws, strict=True) if r}

    def all_profiles(self, batch: int = 1000) -> Iterable[dict[str, Any]]:
        ids = [m.decode() for m in self.r.sscan_iter(PROFILES, count=batch)]
        for start in range(0, len(ids), batch):
            yield from self.get_profiles(ids[start : start + batch]).values()

    # ---- pairs ------------------------------------------------------------------------------

    def get_pair(self, pair_id: str) -> dict[str, Any] | None:
        raw = self.r.get(PAIR + pair_id)
        return json.loads(raw) if raw else None

    def get_pairs(self, pair_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = list(pair_ids)
        raws = self.r.mget([PAIR + i for i in ids]) if ids else []
        return [json.loads(r) for r in raws if r]

    def decided(self, pair_ids: Iterable[str]) -> set[str]:
        ids = list(pair_ids)
        if not ids:
            return set()
        flags = self.r.smismember(DECIDED, ids)
        return {i for i, f in zip(ids, flags, strict=True) if f}

    def pending_of_org(self, org_id: str) -> dict[str, float]:
        return {m.decode(): s for m, s in self.r.zrange(PENDING_BY_ORG + org_id, 0, -1, withscores=True)}

    def pending_ids_of_cluster(self, cluster_id: str) -> list[str]:
        return [m.decode() for m in self.r.zrevrange(PENDING_BY_CLUSTER + cluster_id, 0, -1)]

    def history_ids_of_cluster(self, cluster_id: str) -> list[str]:
        return [m.decode() for m in self.r.zrevrange(HISTORY + cluster_id, 0, -1)]

    def pair_ids_of_org(self, org_id: str) -> list[str]:
        """Every pair of the organisation that is pending or decided (withdrawn ones are not kept
        in an index): pending by score, then decided, latest first."""
        self._build_history_by_org()
        pending = [m.decode() for m in self.r.zrevrange(PENDING_BY_ORG + org_id, 0, -1)]
        decided = [m.decode() for m in self.r.zrevrange(HISTORY_BY_ORG + org_id, 0, -1)]
        return list(dict.fromkeys(pending + decided))

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
        applied: dict[str, bool] = {}

        def txn(pipe: redis.client.Pipeline) -> None:
            current = pipe.hget(REVISIONS, change.org_id)
            if current is not None and int(current) >= change.revision:
                applied["done"] = False
                return
            pair_ids = [w.pair_id for w in change.upserts] + [pid for pid, _ in change.withdrawals]
            if pair_ids:  # a coordinator's decision on one of them in the meantime restarts this
                pipe.watch(REVISIONS, *[PAIR + i for i in pair_ids])
            existing = {p["pair_id"]: p for p in self._read_pairs(pipe, pair_ids)}
            unknown = (
                self._unknown_orgs(pipe, change.upserts, known=change.org_id if change.profile else None)
                if change.known_partners_only
                else set()
            )
            now = _now_ms()
            pipe.multi()
            pipe.hset(REVISIONS, change.org_id, change.revision)
            if change.profile is None:
                pipe.delete(PROFILE + change.org_id)
                pipe.srem(PROFILES, change.org_id)
            else:
                pipe.set(PROFILE + change.org_id, json.dumps(change.profile, ensure_ascii=False))
                pipe.sadd(PROFILES, change.org_id)
            self._write_known_pairs(pipe, existing, change.upserts, change.withdrawals, unknown, now)
            applied["done"] = True

        self.r.transaction(txn, REVISIONS)
        return applied["done"]

    def apply_pairs(self, upserts: list[PairWrite], withdrawals: list[tuple[str, str]]) -> None:
        """Suggest and withdraw pairs outside a profile event (the lists that waited for a partner,
        planned again), atomically; a decided pair stays as it is, and a pair with an organisation
        still unknown waits again."""
        pair_ids = [w.pair_id for w in upserts] + [pid for pid, _ in withdrawals]
        if not pair_ids:
            return

        def txn(pipe: redis.client.Pipeline) -> None:
            existing = {p["pair_id"]: p for p in self._read_pairs(pipe, pair_ids)}
            unknown = self._unknown_orgs(pipe, upserts)
            pipe.multi()
            self._write_known_pairs(pipe, existing, upserts, withdrawals, unknown, _now_ms())

        self.r.transaction(txn, REVISIONS, *[PAIR + i for i in pair_ids])

    def awaiting(self, org_id: str) -> set[str]:
        """The organisations whose lists wanted this one as a partner before its profile was here."""
        return {m.decode() for m in self.r.smembers(AWAITING + org_id)}

    def forget_awaiting(self, org_id: str, orgs: Iterable[str]) -> None:
        members = list(orgs)
        if members:
            self.r.srem(AWAITING + org_id, *members)

    def _unknown_orgs(
        self, pipe: redis.client.Pipeline, upserts: list[PairWrite], known: str | None = None
    ) -> set[str]:
        """The organisations of `upserts` with no profile applied, but `known`. Read under the WATCH
        of REVISIONS, which every profile change writes, so the answer holds until EXEC."""
        orgs = sorted({org for w in upserts for org in (w.org_a, w.org_b)} - {known})
        if not orgs:
            return set()
        flags = pipe.smismember(PROFILES, orgs)
        return {org for org, present in zip(orgs, flags, strict=True) if not present}

    def _write_known_pairs(
        self,
        pipe: redis.client.Pipeline,
        existing: dict[str, dict[str, Any]],
        upserts: list[PairWrite],
        withdrawals: list[tuple[str, str]],
        unknown: set[str],
        now: int,
    ) -> None:
        """Write the pairs between known organisations; each unknown one remembers who wanted it, so
        those lists are planned again once its profile is applied (a pair never names a partner
        the coordinators' pages cannot show)."""
        for w in upserts:
            for org in {w.org_a, w.org_b} & unknown:
                pipe.sadd(AWAITING + org, *({w.org_a, w.org_b} - {org}))
        known = [w for w in upserts if not {w.org_a, w.org_b} & unknown]
        self._write_pairs(pipe, existing, known, withdrawals, now)

    def lesson_applied(self, rejected_pair_id: str) -> bool:
        return bool(self.r.sismember(LESSONS, rejected_pair_id))

    def apply_lesson(self, rejected_pair_id: str, upserts: list[PairWrite], withdrawals: list[tuple[str, str]]) -> bool:
        """The lists planned again after a rejection, applied once and atomically: False (nothing
        written) when this rejection's were already. A pair decided in the meantime stays as it is."""
        pair_ids = [w.pair_id for w in upserts] + [pid for pid, _ in withdrawals]
        applied: dict[str, bool] = {}

        def txn(pipe: redis.client.Pipeline) -> None:
            if pipe.sismember(LESSONS, rejected_pair_id):
                applied["done"] = False
                return
            existing = {p["pair_id"]: p for p in self._read_pairs(pipe, pair_ids)}
            pipe.multi()
            pipe.sadd(LESSONS, rejected_pair_id)
            self._write_pairs(pipe, existing, upserts, withdrawals, _now_ms())
            applied["done"] = True

        self.r.transaction(txn, LESSONS, *[PAIR + i for i in pair_ids])
        return applied["done"]

    def _write_pairs(
        self,
        pipe: redis.client.Pipeline,
        existing: dict[str, dict[str, Any]],
        upserts: list[PairWrite],
        withdrawals: list[tuple[str, str]],
        now: int,
    ) -> None:
        for pair_id, reason in withdrawals:
            old = existing.get(pair_id)
            if old is None or old["state"] != "pending":
                continue
            self._withdraw(pipe, old, reason, now)
        for w in upserts:
            old = existing.get(w.pair_id)
            if old is not None and old["state"] != "pending" and old["state"] != "withdrawn":
                continue  # decided pairs are never suggested again
            self._suggest(pipe, w, old, now)

    def _read_pairs(self, pipe: redis.client.Pipeline, pair_ids: list[str]) -> list[dict[str, Any]]:
        if not pair_ids:
            return []
        # MGET by name: a cluster pipeline refuses mget(), even for keys of one slot.
        raws = pipe.execute_command("MGET", *[PAIR + i for i in pair_ids])
        return [json.loads(r) for r in raws if r]

    def _suggest(self, pipe: redis.client.Pipeline, w: PairWrite, old: dict[str, Any] | None, now: int) -> None:
        unchanged = (
            old is not None
            and old["state"] == "pending"
            and abs(old["score"] - w.score) < 1e-6
            and old["reasons"] == w.reasons
            and (old["cluster_a"], old["cluster_b"]) == (w.cluster_a, w.cluster_b)
        )
        if unchanged:
            return
        still_pending = old is not None and old["state"] == "pending"
        # A re-scored pending pair keeps the decisions already given: any profile event can shift a
        # pair's score, and a coordinator's acknowledged approval must not silently vanish.
        record = {
            "pair_id": w.pair_id,
            "org_a": w.org_a,
            "org_b": w.org_b,
            "cluster_a": w.cluster_a,
            "cluster_b": w.cluster_b,
            "score": round(float(w.score), 6),
            "reasons": w.reasons,
            "state": "pending",
            "created_ms": old["created_ms"] if still_pending and old else now,
            "updated_ms": now,
            "decisions": {  # only the clusters of the pair as it now is
                cluster: decision
                for cluster, decision in (old or {}).get("decisions", {}).items()
                if cluster in (w.cluster_a, w.cluster_b)
            }
            if still_pending
            else {},
        }
        pipe.set(PAIR + w.pair_id, json.dumps(record, ensure_ascii=False))
        if old is not None:  # an organisation moved: the cluster it left no longer lists the pair
            for cluster in {old["cluster_a"], old["cluster_b"]} - {w.cluster_a, w.cluster_b}:
                pipe.zrem(PENDING_BY_CLUSTER + cluster, w.pair_id)
        for cluster in (w.cluster_a, w.cluster_b):
            pipe.zadd(PENDING_BY_CLUSTER + cluster, {w.pair_id: record["score"]})
        for org in (w.org_a, w.org_b):
            pipe.zadd(PENDING_BY_ORG + org, {w.pair_id: record["score"]})
        payload = {k: record[k] for k in ("pair_id", "org_a", "org_b", "cluster_a", "cluster_b", "score", "reasons")}
        self.outbox.add(
            pipe, events.new_event(events.MATCH_SUGGESTED, payload, PRODUCER), self.matches_topic, w.pair_id
        )

    def _withdraw(self, pipe: redis.client.Pipeline, old: dict[str, Any], reason: str, now: int) -> None:
        record = {**old, "state": "withdrawn", "updated_ms": now, "withdrawn_reason": reason}
        pipe.set(PAIR + old["pair_id"], json.dumps(record, ensure_ascii=False))
        self._unindex_pending(pipe, old)
        payload = {k: old[k] for k in ("pair_id", "org_a", "org_b", "cluster_a", "cluster_b")}
        payload["reason"] = reason
        self.outbox.add(
            pipe, events.new_event(events.MATCH_WITHDRAWN, payload, PRODUCER), self.matches_topic, old["pair_id"]
        )

    def _unindex_pending(self, pipe: redis.client.Pipeline, pair: dict[str, Any]) -> None:
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
        with self.r.pipeline(transaction=False) as pipe:
            for org in ids:
                pipe.smembers(DISLIKES + org)
            found = pipe.execute()
        return {org: sorted(m.decode() for m in members) for org, members in zip(ids, found, strict=True) if members}

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
                    self.outbox.add(pipe, _decision_event(pair), self.decisions_topic, pair["pair_id"])
                pipe.execute()
        return len(pairs)

    def decide(
        self,
        pair_id: str,
        cluster_id: str,
        coordinator: str,
        decision: str,
        reason_code: str | None = None,
        reason_text: str | None = None,
    ) -> dict[str, Any]:
        """Record one cluster's decision. Both approve → approved; either rejects → rejected.
        A pair reaches a final state once, with exactly one event, however many decide at once."""
        key = PAIR + pair_id
        result: dict[str, Any] = {}

        def txn(pipe: redis.client.Pipeline) -> None:
            pair = _pending_pair(pipe, key, cluster_id)
            if cluster_id in pair["decisions"]:
                raise DecisionRefused("already_decided", pair)
            now = _now_ms()
            pair["decisions"][cluster_id] = {
                "cluster_id": cluster_id,
                "coordinator": coordinator,
                "decision": decision,
                "reason_code": reason_code,
                "reason_text": reason_text,
                "decided_at": _iso(now),
            }
            final = None
            if decision == "reject":
                final = "rejected"
            elif all(
                pair["decisions"].get(c, {}).get("decision") == "approve"
                for c in (pair["cluster_a"], pair["cluster_b"])
            ):
                final = "approved"
            pipe.multi()
            if final is not None:
                pair["state"] = final
                pair["decided_ms"] = now
                self._unindex_pending(pipe, pair)
                pipe.sadd(DECIDED, pair_id)
                for cluster in (pair["cluster_a"], pair["cluster_b"]):
                    pipe.zadd(HISTORY + cluster, {pair_id: now})
                for org in (pair["org_a"], pair["org_b"]):
                    pipe.zadd(HISTORY_BY_ORG + org, {pair_id: now})
                for org, partner in dislikes_in(pair, pair["decisions"].values()):
                    pipe.sadd(DISLIKES + org, partner)
                self.outbox.add(pipe, _decision_event(pair), self.decisions_topic, pair_id)
            pair["updated_ms"] = now
            pipe.set(key, json.dumps(pair, ensure_ascii=False))
            result["pair"] = pair

        self.r.transaction(txn, key)
        return result["pair"]

    def withdraw_approval(self, pair_id: str, cluster_id: str) -> dict[str, Any]:
        """Take back the cluster's approval while the pair still waits for the other cluster (once
        the other side decides, the pair is final and nothing can be taken back)."""
        key = PAIR + pair_id
        result: dict[str, Any] = {}

        def txn(pipe: redis.client.Pipeline) -> None:
            pair = _pending_pair(pipe, key, cluster_id)
            mine = pair["decisions"].get(cluster_id)
            if mine is None or mine.get("decision") != "approve":
                raise DecisionRefused("nothing_to_withdraw", pair)
            del pair["decisions"][cluster_id]
            pair["updated_ms"] = _now_ms()
            pipe.multi()
            pipe.set(key, json.dumps(pair, ensure_ascii=False))
            result["pair"] = pair

        self.r.transaction(txn, key)
        return result["pair"]


def _pending_pair(pipe: redis.client.Pipeline, key: str, cluster_id: str) -> dict[str, Any]:
    """The pair at `key` (read under WATCH) when it involves the cluster and still waits; else
    DecisionRefused: not_found (missing or not the cluster's) or not_pending (with the pair)."""
    raw = pipe.get(key)
    if raw is None:
        raise DecisionRefused("not_found")
    pair = json.loads(raw)
    if cluster_id not in (pair["cluster_a"], pair["cluster_b"]):
        raise DecisionRefused("not_found")
    if pair["state"] != "pending":
        raise DecisionRefused("not_pending", pair)
    return pair


def _decision_event(pair: dict[str, Any]) -> events.Envelope:
    """`match.approved` or `match.rejected` of a decided pair, with both clusters' decisions."""
    payload = {k: pair[k] for k in ("pair_id", "org_a", "org_b", "cluster_a", "cluster_b", "score", "reasons")}
    payload["decisions"] = list(pair["decisions"].values())
    event_type = events.MATCH_APPROVED if pair["state"] == "approved" else events.MATCH_REJECTED
    return events.new_event(event_type, payload, PRODUCER)
