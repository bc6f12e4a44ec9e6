"""A review worker is ready when it starts: the lexicon that renders reasons is loaded by create_app,
not by a coordinator's first request (seconds on a busy machine)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.matcher.config import MatcherSettings
from services.matcher.engine.render import default_lexicon
from services.matcher.entrypoints import web

SETTINGS = MatcherSettings(redis_url="redis://unused", kafka_bootstrap="unused:9092")


def _deps(settings=None):
    return SimpleNamespace(state=SimpleNamespace(r=None))


@pytest.fixture(autouse=True)
def _no_metrics(monkeypatch):
    monkeypatch.setattr(web, "_expose_metrics", lambda app, settings: None)  # they read the stores


def test_a_worker_loads_the_reasons_lexicon_when_it_starts(monkeypatch):
    monkeypatch.setattr(web, "build_deps", _deps)
    default_lexicon.cache_clear()
    web.create_app(SETTINGS)
    assert default_lexicon.cache_info().currsize == 1


def test_an_app_given_its_dependencies_loads_nothing_more():
    default_lexicon.cache_clear()
    web.create_app(SETTINGS, deps=_deps())  # type: ignore[arg-type]
    assert default_lexicon.cache_info().currsize == 0
