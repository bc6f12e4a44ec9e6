"""Shared fixtures: a real redis-server (and, for the stores that run on Redis Cluster, a real
three-node cluster) and a real Kafka-protocol broker per test session, started by the same code as
`partnermatch up` (launcher.servers). KAFKA_BOOTSTRAP_SERVERS points the
tests at a real Apache Kafka instead of starting Tansu."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from launcher.servers import RedisClusterServers, RedisServer, TansuBroker
from partnermatch.redis_client import connect


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server (AOF on) for the session; its log is in the session's tmp folder."""
    folder = tmp_path_factory.mktemp("redis")
    server = RedisServer(folder / "data", log_file=folder / "redis.log")
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on an empty database: flushed before each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """Three redis-servers on loopback as one Redis Cluster (primaries only), for the session."""
    folder = tmp_path_factory.mktemp("redis-cluster")
    cluster = RedisClusterServers(folder / "data", nodes=3, log_file=folder / "redis.log")
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster_client(redis_cluster: RedisClusterServers) -> Iterator[redis.RedisCluster]:
    """A cluster client on an empty cluster: every node flushed before each test."""
    client = connect(redis_cluster.url)
    client.flushdb(target_nodes=redis.RedisCluster.PRIMARIES)
    yield client
    client.close()


@pytest.fixture(params=["redis-server", "redis-cluster"])
def store_client(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> Iterator[redis.Redis | redis.RedisCluster]:
    """For a store's tests that must hold on one redis-server and on a Redis Cluster alike: each
    test runs twice, on an empty database of either. A test module can make it its `redis_client`."""
    if request.param == "redis-cluster":
        yield request.getfixturevalue("redis_cluster_client")
        return
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's broker (Tansu, in memory), or KAFKA_BOOTSTRAP_SERVERS when set.
    Topics outlive tests: name them with `unique_name`."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker = TansuBroker(log_file=tmp_path_factory.mktemp("kafka") / "kafka.log")
    yield broker.bootstrap
    broker.stop()


@pytest.fixture
def unique_name() -> Callable[..., str]:
    """`unique_name("profiles")` -> "profiles-3f9a0c1b2d": random topic / group / key prefixes keep
    tests apart on one broker and one Redis."""
    return lambda prefix="t": f"{prefix}-{uuid.uuid4().hex[:10]}"
