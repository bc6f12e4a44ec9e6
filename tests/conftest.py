"""Shared fixtures: a real redis-server and a real Kafka-protocol broker per test session,
started by the same code as `partnermatch up` (partnermatch.stack). KAFKA_BOOTSTRAP_SERVERS
points the tests at a real Apache Kafka instead."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from partnermatch.stack import RedisServer, TansuBroker


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def kafka_bootstrap():
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker = TansuBroker()
    yield broker.bootstrap
    broker.stop()


@pytest.fixture
def unique_name():
    """Random topic / group names keep tests apart on one broker."""
    return lambda prefix="t": f"{prefix}-{uuid.uuid4().hex[:10]}"
