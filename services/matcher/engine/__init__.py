"""The cross-lingual matching engine: concepts from a multilingual lexicon, two-sided scoring,
reasons. A pure library: no I/O except reading its own data files."""

from services.matcher.engine.engine import (
    EngineSettings,
    MatchEngine,
    OrgProfile,
    Reason,
    Suggestion,
    Update,
)
from services.matcher.engine.lexicon import Lexicon, load_lexicon
from services.matcher.engine.render import concept_labels, render_reason

__all__ = [
    "EngineSettings", "Lexicon", "MatchEngine", "OrgProfile", "Reason", "Suggestion", "Update",
    "concept_labels", "load_lexicon", "render_reason",
]
