"""What coordinators' rejections teach the matcher. A partner rejected as not relevant for an
organisation lowers, in that organisation's list, the candidates listed for the same reasons as
the rejected one (alike in how they earn their score: what they offer against its needs, the
sector they share...), so its next list differs. Pure (no I/O): the engine is passed in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import numpy as np

# Rejection reasons that say the partner is wrong for the organisation. The others teach nothing
# about resemblance: "already partners" only ends that pair (a decided pair never returns), and a
# lack of capacity or another market is no judgement of the candidate.
TEACHING_REASONS = frozenset({"not_relevant"})

# The candidate's own list a rejection of the candidate's is measured against (rerank): as long as
# the engine keeps its lists made (EngineSettings.cached_k), so reading it makes nothing.
THEIR_POOL = 10


class ReasonVectors(Protocol):
    def reason_vectors(self, org_id: str, candidate_ids: list[str]) -> np.ndarray: ...

    def top(self, org_id: str, k: int = 5) -> list[Any]: ...


def dislikes_in(pair: Mapping[str, Any], decisions: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(organisation, partner it does not want) for each cluster of the pair whose coordinator
    rejected it for a teaching reason; `decisions` as the pair record or a decision event holds them."""
    side = {pair["cluster_a"]: (pair["org_a"], pair["org_b"]), pair["cluster_b"]: (pair["org_b"], pair["org_a"])}
    return [
        side[d["cluster_id"]]
        for d in decisions
        if d.get("decision") == "reject" and d.get("reason_code") in TEACHING_REASONS and d.get("cluster_id") in side
    ]


def rerank(
    engine: ReasonVectors,
    org_id: str,
    suggestions: list[Any],
    dislikes: Mapping[str, list[str]],
    strength: float,
    pool: int | None = None,
) -> list[Any]:
    """The organisation's suggestions with their scores lowered by the rejections that bear on each
    pair, best first. A pair is lowered both by the partners the organisation rejected that the
    candidate resembles (in the organisation's list) and by those the candidate rejected that the
    organisation resembles (in the candidate's list): a pair is suggested when it leads either
    list, so both lists must agree on it. Each rejection multiplies the score by
    1 - strength x likeness (likeness from 0 to 1), so ten look-alikes rejected weigh more than one.

    The lowering is relative: the candidate least like the rejected ones among the organisation's
    (the first `pool` of `suggestions`, all by default; or the candidate's own list, at most
    THEIR_POOL long) keeps its score, and the others are lowered as much as they are more alike
    than it. Where an organisation's candidates all earn their
    score the same way (its sector, one need...), a rejection cannot tell them apart: it then
    lowers none of them, where a lowering of all would halve every score of the organisation and
    let other organisations' pairs, at the limit of pending pairs, take their places."""
    if not suggestions:
        return []
    ids = [s.id for s in suggestions]
    factor = np.ones(len(ids))
    own = dislikes.get(org_id, [])
    if own:
        factor *= _relative(_kept_share(engine, org_id, ids, own, strength), pool)
    for i, candidate in enumerate(ids):
        theirs = dislikes.get(candidate, [])
        if theirs:
            theirs_pool = [s.id for s in engine.top(candidate, THEIR_POOL) if s.id != org_id]
            kept = _kept_share(engine, candidate, [org_id, *theirs_pool], theirs, strength)
            factor[i] *= float(_relative(kept)[0])
    lowered = [dataclasses.replace(s, score=float(s.score * f)) for s, f in zip(suggestions, factor, strict=True)]
    return sorted(lowered, key=lambda s: (-round(s.score, 6), s.id))


def _kept_share(
    engine: ReasonVectors, org_id: str, candidate_ids: list[str], rejected: list[str], strength: float
) -> np.ndarray:
    """For each candidate of the organisation's list, the share of its score its rejections of
    `rejected` leave it: the product over them of 1 - strength x likeness."""
    likeness = engine.reason_vectors(org_id, candidate_ids) @ engine.reason_vectors(org_id, rejected).T
    kept: np.ndarray = np.prod(1.0 - strength * np.clip(likeness, 0.0, 1.0), axis=1)
    return kept


def _relative(kept: np.ndarray, pool: int | None = None) -> np.ndarray:
    """The shares relative to the largest of the first `pool` (all by default): that candidate
    keeps its score; at most 1."""
    best = float(kept[: pool or len(kept)].max())
    return np.minimum(kept / best, 1.0) if best > 0 else np.ones_like(kept)
