"""The ledger's tests run twice: on one redis-server and on a three-node Redis Cluster, where every
script must touch keys of one slot only."""

from __future__ import annotations

import pytest


@pytest.fixture
def redis_client(store_client):
    return store_client
