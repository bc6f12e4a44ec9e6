"""The one place where the matcher's real adapters are built; tests pass their own."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from services.matcher.adapters.profiles_client import ProfilesAuthClient
from services.matcher.adapters.redis_state import RedisMatcherState
from services.matcher.config import MatcherSettings
from services.matcher.review import ReviewService


@dataclass
class MatcherDeps:
    state: RedisMatcherState
    review: ReviewService
    auth: ProfilesAuthClient


def build_deps(settings: MatcherSettings) -> MatcherDeps:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, health_check_interval=30)
    state = RedisMatcherState(client)
    auth = ProfilesAuthClient(settings.profiles_url, service_token=settings.service_token)
    return MatcherDeps(state=state, review=ReviewService(state), auth=auth)
