"""The cross-lingual matching engine: concepts from a multilingual lexicon, two-sided scoring,
reasons. A pure library: no I/O except reading its own data files.

MatchEngine (engine.py) is a façade over the feature space (features.py), the index (index.py),
the top-K cache (topk.py, with the compiled candidate product of topn.py) and the reason finder
(reasons.py); values.py and settings.py hold what they share, workers.py the forked analysis."""

from services.matcher.engine.engine import (
    EngineSettings,
    MatchEngine,
    OrgProfile,
    Reason,
    Suggestion,
    Update,
)
from services.matcher.engine.lexicon import Lexicon, load_lexicon
from services.matcher.engine.render import render_reason

__all__ = [
    "EngineSettings",
    "Lexicon",
    "MatchEngine",
    "OrgProfile",
    "Reason",
    "Suggestion",
    "Update",
    "load_lexicon",
    "render_reason",
]
