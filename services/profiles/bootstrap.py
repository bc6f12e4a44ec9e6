"""The one place where the profiles service's real adapters are built; tests pass their own."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from services.profiles.adapters.redis_store import RedisProfileStore
from services.profiles.config import ProfilesSettings


@dataclass
class ProfilesDeps:
    store: RedisProfileStore


def build_deps(settings: ProfilesSettings) -> ProfilesDeps:
    # redis-py connects lazily, on the first command: nothing happens at import or here.
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, health_check_interval=30)
    return ProfilesDeps(store=RedisProfileStore(client))
