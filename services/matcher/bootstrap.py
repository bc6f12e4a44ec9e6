"""The one place where the matcher's real adapters are built; tests pass their own."""

from __future__ import annotations

from dataclasses import dataclass

from partnermatch.redis_client import connect
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
    client = connect(settings.redis_url, socket_timeout=10, health_check_interval=30)
    state = RedisMatcherState(client)
    state.adopt_untagged_keys()  # before any process of this service writes: keys from before the tag
    auth = ProfilesAuthClient(settings.profiles_url, service_token=settings.service_token)
    return MatcherDeps(state=state, review=ReviewService(state), auth=auth)
