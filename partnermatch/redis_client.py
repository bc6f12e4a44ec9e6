"""Redis clients from a URL: `redis://…` (one server, as always) or
`redis+cluster://host:port[,host:port…]` (Redis Cluster: the nodes to learn the slot map from; the
same scheme flask-limiter's storage takes). No I/O until a command, except that a cluster client
reads the slot map from the nodes when it is made. DirectCommands sends the commands of the API's
writes on a connection of their own."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import hiredis
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError

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


def script_in_batches(
    client: redis.Redis | RedisCluster,
    script: Script,
    match: str,
    key_type: str,
    batch: int = 500,
    first_keys: Sequence[str] = (),
    args: Sequence[str] = (),
) -> Iterator[int]:
    """`script` run over every key named like `match` of type `key_type` (SCAN, which walks each
    node of a cluster), `batch` of them a call after `first_keys`: each call's reply, as it comes
    (a caller counting them keeps what was done before a failure)."""
    keys: list[Any] = []
    for key in client.scan_iter(match=match, count=batch, _type=key_type):
        keys.append(key)
        if len(keys) >= batch:
            yield int(script(keys=[*first_keys, *keys], args=list(args)))
            keys = []
    if keys:
        yield int(script(keys=[*first_keys, *keys], args=list(args)))


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


class DirectCommands:
    """Commands of a single-server client sent on a connection this thread keeps for them, without
    redis-py's layers around each command (the pool's checks, retries and observability hooks):
    measured on a real redis-server, a script call cost the client 46 µs through redis-py and 15
    µs this way, a pipeline of three reads 45 µs against about 16.

    `round_trip` answers None where it cannot send (a cluster client, another kind of pool, an
    argument other than str, bytes or int) and where the connection failed, which it then drops:
    the caller sends the same commands through redis-py, which retries as it does for any command.
    So a command whose connection failed is sent again, as redis-py's own retry sends it again."""

    def __init__(self, client: redis.Redis | RedisCluster) -> None:
        pool = getattr(client, "connection_pool", None)
        plain = type(client) is redis.Redis and type(pool) is redis.ConnectionPool
        self._pool: redis.ConnectionPool | None = pool if plain and client.connection is None else None
        self._local = threading.local()

    def _connection(self) -> Any:
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        assert self._pool is not None
        connection = self._pool.get_connection()
        self._local.held = (os.getpid(), connection)
        return connection

    def _drop(self, connection: Any) -> None:
        self._local.held = None
        assert self._pool is not None
        try:
            connection.disconnect()
        finally:
            self._pool.release(connection)

    def release(self) -> None:
        """Give this thread's connection back to the pool (a thread that is done with Redis)."""
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None and held[0] == os.getpid() and self._pool is not None:
            self._pool.release(held[1])

    def round_trip(self, commands: Sequence[Sequence[Any]]) -> list[Any] | None:
        """The replies of `commands`, sent together and read in one round trip, as Redis sends them
        (redis-py's reply callbacks are not applied: a SET answers b"OK", where redis-py gives True;
        GET, TTL and EVALSHA answer as through redis-py); None when they were not sent this way (see
        the class). An error reply is raised once every reply is read, the first of them, as
        redis-py's pipeline raises it."""
        if self._pool is None:
            return None
        words = [tuple(command) for command in commands]
        if not all(type(arg) in _WORDS for command in words for arg in command):
            return None
        # hiredis writes them as redis-py's encoder does: a str in UTF-8 (strict: a lone surrogate
        # raises UnicodeEncodeError, as redis-py raises it), an int in decimal, bytes as they are.
        packed = b"".join(hiredis.pack_command(command) for command in words)
        connection = self._connection()
        replies: list[Any] = []
        try:
            connection.send_packed_command([packed])
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except redis.ResponseError as error:  # read whole: the connection stays in step
                    replies.append(error)
        except BaseException as failed:
            self._drop(connection)
            if isinstance(failed, Exception):
                return None
            raise
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        return replies

    def script(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """`script(keys=keys, args=args)`, by EVALSHA on this thread's connection where it can;
        through redis-py (which loads the script where the server lacks it) where it cannot."""
        try:
            replies = self.round_trip([("EVALSHA", script.sha, len(keys), *keys, *args)])
        except NoScriptError:
            replies = None
        if replies is None:
            return script(keys=keys, args=args)
        return replies[0]


# The argument types sent directly; any other (a float, a bool, ...) is left to redis-py's encoder.
_WORDS = frozenset({str, bytes, int})
