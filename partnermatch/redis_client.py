"""Redis clients from a URL: `redis://…` (one server, as always) or
`redis+cluster://host:port[,host:port…]` (Redis Cluster: the nodes to learn the slot map from; the
same scheme flask-limiter's storage takes). No I/O until a command, except that a cluster client
reads the slot map from the nodes when it is made."""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

CLUSTER_SCHEME = "redis+cluster://"


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEME)


def has_hash_tag(prefix: str) -> bool:
    """Whether keys made by appending to `prefix` share one hash tag, so Redis Cluster keeps them
    in one slot (the first `{…}` with something inside decides the slot)."""
    start = prefix.find("{")
    return start >= 0 and prefix.find("}", start + 1) > start + 1


def adopt_untagged_keys(
    client: redis.Redis | RedisCluster, untagged_prefix: str, tagged_prefix: str, keep: tuple[str, ...] = ()
) -> int:
    """Move a service's keys from before they had a hash tag (`untagged_prefix…`) to the same names
    under `tagged_prefix`, but those starting with a prefix in `keep` (how many moved), once: a
    marker key remembers it is done. Call it in every process of the service before it writes,
    so no tagged key exists beside its untagged one; a key another process moved meanwhile is
    skipped. Only key names change (values must not hold key names). Single node only: there
    was no cluster before the tags."""
    done_key = tagged_prefix + "untagged-keys-adopted"
    if client.exists(done_key):
        return 0
    moved = 0
    for raw in client.scan_iter(match=untagged_prefix + "*", count=1000):
        old = raw.decode() if isinstance(raw, bytes) else str(raw)
        if old.startswith(keep):
            continue
        try:
            moved += int(client.renamenx(old, tagged_prefix + old[len(untagged_prefix) :]))
        except redis.ResponseError as exc:
            if "no such key" not in str(exc).lower():
                raise
    client.set(done_key, str(moved))
    return moved


def connect(url: str, **options: Any) -> redis.Redis | RedisCluster:
    """A client for `url`; `options` are redis-py connection options (socket_timeout, …)."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, **options)
    hosts = url[len(CLUSTER_SCHEME) :].partition("/")[0]
    nodes = []
    for address in hosts.split(","):
        host, _, port = address.strip().rpartition(":")
        nodes.append(ClusterNode(host or "127.0.0.1", int(port or 6379)))
    return RedisCluster(startup_nodes=nodes, **options)
