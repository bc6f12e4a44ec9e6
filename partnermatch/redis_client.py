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


def connect(url: str, **options: Any) -> redis.Redis | RedisCluster:
    """A client for `url`; `options` are redis-py connection options (socket_timeout, …)."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, **options)
    hosts = url[len(CLUSTER_SCHEME):].partition("/")[0]
    nodes = []
    for address in hosts.split(","):
        host, _, port = address.strip().rpartition(":")
        nodes.append(ClusterNode(host or "127.0.0.1", int(port or 6379)))
    return RedisCluster(startup_nodes=nodes, **options)
