from __future__ import annotations

from pathlib import Path

import pytest

from services.matcher.engine import MatchEngine, load_lexicon

MINI = Path(__file__).with_name("mini_lexicon.yaml")


@pytest.fixture(scope="session")
def mini_lexicon():
    return load_lexicon([MINI])


@pytest.fixture
def engine(mini_lexicon):
    return MatchEngine(mini_lexicon)
