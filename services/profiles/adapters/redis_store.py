"""Redis adapter of the profiles service: clusters, coordinators, organisations, tokens and the outbox.

Every change of an organisation writes the profile and its outbox entry in one MULTI, so there
is never a 2xx without a durable event, nor an event without a profile. Does I/O (Redis).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import redis

from partnermatch import events
from partnermatch.outbox import Outbox
from partnermatch.topics import PROFILES

P = "profiles:"
ORG = P + "org:"
ORGS = P + "orgs"  # zset: org id by creation time (stable paging)
CLUSTER = P + "cluster:"
CLUSTERS = P + "clusters"
COORD = P + "coordinator:"
TOKEN = P + "token:"  # token digest -> json principal


class Conflict(Exception):
    """The object exists already (or changed under us too often)."""


class NotFound(Exception):
    pass


class RedisProfileStore:
    def __init__(self, client: redis.Redis, topic: str = PROFILES) -> None:
        self.r = client
        self.topic = topic
        self.outbox = Outbox(client, P)

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

    def principal_for(self, digest: str) -> dict[str, Any] | None:
        raw = self.r.get(TOKEN + digest)
        return json.loads(raw) if raw else None

    # ---- organisations ----------------------------------------------------------------------

    def get_org(self, org_id: str) -> dict[str, Any] | None:
        raw = self.r.get(ORG + org_id)
        return json.loads(raw) if raw else None

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
        return [json.loads(r) for r in raws if r]

    def iter_org_ids(self) -> Iterator[str]:
        for member, _score in self.r.zscan_iter(ORGS):
            yield member.decode()

    def create_org(self, org: dict[str, Any], token_digest: str, principal: dict[str, Any],
                   envelope: events.Envelope) -> None:
        """Profile, its credential, its indexes and its event: all or nothing."""
        key = ORG + org["id"]
        with self.r.pipeline(transaction=True) as pipe:
            pipe.set(key, json.dumps(org, ensure_ascii=False), nx=True)
            pipe.zadd(ORGS, {org["id"]: org["created_ms"]})
            pipe.sadd(CLUSTER + org["cluster_id"] + ":orgs", org["id"])
            pipe.set(TOKEN + token_digest, json.dumps(principal))
            self.outbox.add(pipe, envelope, self.topic, org["id"])
            result = pipe.execute()
        if not result[0]:  # an id collision: astronomically unlikely, never silent
            raise Conflict(f"organisation {org['id']} exists")

    def change_org(
        self,
        org_id: str,
        change: Callable[[dict[str, Any]], tuple[dict[str, Any] | None, events.Envelope]],
    ) -> dict[str, Any] | None:
        """Read-modify-write under WATCH: `change(old)` returns the new org (None = delete) and its event."""
        key = ORG + org_id
        result: dict[str, Any] = {}

        def txn(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(key)
            if raw is None:
                raise NotFound(org_id)
            old = json.loads(raw)
            new, envelope = change(old)
            pipe.multi()
            if new is None:
                pipe.delete(key)
                pipe.zrem(ORGS, org_id)
                pipe.srem(CLUSTER + old["cluster_id"] + ":orgs", org_id)
                pipe.delete(TOKEN + old["token_digest"])
            else:
                pipe.set(key, json.dumps(new, ensure_ascii=False))
                if new["cluster_id"] != old["cluster_id"]:
                    pipe.srem(CLUSTER + old["cluster_id"] + ":orgs", org_id)
                    pipe.sadd(CLUSTER + new["cluster_id"] + ":orgs", org_id)
                    pipe.set(TOKEN + new["token_digest"], json.dumps(
                        {"role": "organisation", "org_id": org_id, "cluster_id": new["cluster_id"]}))
            self.outbox.add(pipe, envelope, self.topic, org_id)
            result["org"] = new

        self.r.transaction(txn, key)
        return result["org"]

    def enqueue(self, envelope: events.Envelope, key: str) -> None:
        """An event with no state change (resync)."""
        self.outbox.add(self.r, envelope, self.topic, key)
