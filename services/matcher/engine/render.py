"""Reasons as a person reads them, in any of the 16 languages (and Serbian Cyrillic), with the
engine's lexicon: how a reason reads is partnermatch.reasons. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from partnermatch.reasons import ConceptLabels, Reason
from services.matcher.engine.lexicon import Lexicon, load_lexicon


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    return load_lexicon()


def labels_of(lexicon: Lexicon) -> ConceptLabels:
    """The lexicon's concept labels, as partnermatch.reasons reads them."""

    def labels(concept_id: str) -> Mapping[str, str] | None:
        concept = lexicon.concepts.get(concept_id)
        return concept.labels if concept is not None else None

    return labels


def render_reason(reason: Any, lang: str = "en", lexicon: Lexicon | None = None) -> str:
    """One reason (a dict or the engine's Reason) as a line in `lang` (see partnermatch.reasons)."""
    data = reason if isinstance(reason, dict) else reason.to_dict()
    return Reason.from_dict(data).render(lang, labels_of(lexicon or default_lexicon()))


def render_need(reason: Any, lang: str, seeker: str, provider: str, lexicon: Lexicon | None = None) -> str:
    """A need met as a sentence in `lang`, the reason oriented so that `terms_a` are the seeker's
    words and `terms_b` the provider's (see partnermatch.reasons)."""
    data = reason if isinstance(reason, dict) else reason.to_dict()
    return Reason.from_dict(data).render_need(lang, seeker, provider, labels_of(lexicon or default_lexicon()))
