"""The matcher's entry point builds its live matcher with every setting the environment gives."""

from __future__ import annotations

import pytest

from services.matcher.config import MatcherSettings
from services.matcher.entrypoints.consumer import build_live_matcher
from services.matcher.live import LiveMatcher
from tests.unit.matcher.fakes import FakeEngine, FakeMatcherRepository


@pytest.mark.integration
def test_the_live_matcher_gets_the_settings_of_the_environment(redis_server):
    settings = MatcherSettings.from_env(
        {
            "REDIS_URL": redis_server.url,
            "MATCHER_TOP_K": "7",
            "MATCHER_MIN_SCORE": "0.11",
            "MATCHER_MAX_PENDING_PER_ORG": "3",
            "MATCHER_DISPLACE_MARGIN": "0.2",
        }
    )
    live = build_live_matcher(settings)
    assert (live.top_k, live.min_score, live.max_pending, live.displace_margin) == (7, 0.11, 3, 0.2)
    assert live.feedback_strength == settings.feedback_strength


def test_without_a_margin_in_the_environment_a_live_matcher_has_the_settings_default():
    assert MatcherSettings.from_env({}).displace_margin == 0.05
    live = LiveMatcher(FakeMatcherRepository(), FakeEngine())
    assert live.displace_margin == MatcherSettings.displace_margin
