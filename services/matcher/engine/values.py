"""The engine's values: an organisation's profile as it reads it, a suggestion with its reasons, and
what one change to the index changed. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)  # slots: a fit keeps one per organisation (id, cluster, country)
class OrgProfile:
    id: str
    name: str = ""
    cluster: str = ""
    country: str = ""
    capabilities: str = ""
    goals: str = ""
    language: str | None = None
    # Optional structured needs, chosen from lists: sector or activity ids of the lexicon, and
    # ISO 3166-1 alpha-2 codes. Strong evidence where given; the texts are read either way.
    offers: tuple[str, ...] = ()
    seeks: tuple[str, ...] = ()
    seeks_countries: tuple[str, ...] = ()


class Reason(NamedTuple):  # a tuple: millions are made in a batch run
    concept: str | None
    kind: str  # sector | activity | cooperation | term
    direction: str  # a_offers_b_seeks | b_offers_a_seeks | shared
    weight: float
    terms_a: tuple[str, ...]
    terms_b: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "concept": self.concept,
            "kind": self.kind,
            "direction": self.direction,
            "weight": round(self.weight, 4),
            "terms_a": list(self.terms_a),
            "terms_b": list(self.terms_b),
        }


@dataclass(frozen=True, slots=True)  # slots: thousands of lists made are kept (no instance dictionary each)
class Suggestion:
    id: str
    score: float
    reasons: tuple[Reason, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": round(self.score, 4), "reasons": [r.to_dict() for r in self.reasons]}


@dataclass
class Update:
    """What one upsert or removal changed: the organisation's own list (made with its reasons when
    first read, from the index as it is then: a caller that writes other lengths of it pays for
    none), and the other organisations whose cached lists it entered or left (their new lists:
    top())."""

    org_id: str
    make_suggestions: Callable[[], list[Suggestion]] = field(default=list, repr=False)
    entered: set[str] = field(default_factory=set)
    left: set[str] = field(default_factory=set)

    @cached_property
    def suggestions(self) -> list[Suggestion]:
        return self.make_suggestions()
