"""The ledger's tests run twice: on one redis-server and on a three-node Redis Cluster, where every
script must touch keys of one slot only."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["redis-server", "redis-cluster"])
def redis_client(request, redis_client):
    if request.param == "redis-cluster":
        return request.getfixturevalue("redis_cluster_client")
    return redis_client
