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


def test_both_of_a_matchers_consumers_fetch_with_the_wait_of_the_environment(monkeypatch):
    """The table reader and the group's consumer: with Tansu a profile event reaches each as late as
    this wait (messaging.FETCH_WAIT_MS), and a run waits for both."""
    import threading

    from services.matcher import table

    assert MatcherSettings.from_env({}).fetch_wait_ms == 100
    settings = MatcherSettings.from_env({"MATCHER_FETCH_WAIT_MS": "30"})
    assert settings.fetch_wait_ms == 30
    waits: dict[str, int] = {}

    class Reader:
        def __init__(self, *args, fetch_wait_ms, **kwargs) -> None:
            waits["table"] = fetch_wait_ms

        def run(self, stop: threading.Event) -> None:
            stop.wait()

    def consume(**kwargs) -> None:
        waits["group"] = kwargs["fetch_wait_ms"]

    monkeypatch.setattr(table, "TableReader", Reader)
    monkeypatch.setattr(table, "run_consumer", consume)
    monkeypatch.setattr(table, "committed_offsets", lambda *args: {})
    monkeypatch.setattr(table.SharedIndex, "keep_weights_fresh", lambda self, stop: None)
    live = LiveMatcher(FakeMatcherRepository(), FakeEngine())
    table.run_matcher(
        live,
        bootstrap="unused:9092",
        profiles_topic="profiles",
        topics=["profiles"],
        group_id="g",
        client_id="matcher",
        handlers={},
        publisher=None,  # type: ignore[arg-type]
        stop=threading.Event(),
        fetch_wait_ms=settings.fetch_wait_ms,
    )
    assert waits == {"table": 30, "group": 30}
