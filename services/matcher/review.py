"""Coordinator review use cases: list, read and decide suggestions of one's own cluster.

Pairs are shown from the coordinator's side: `own` is the organisation of their cluster,
`partner` the other one, and each reason says who offers and who seeks. Logic over the state
repository (a Protocol below; adapters/redis_state.py); the rules are the domain's. No HTTP here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from types import TracebackType
from typing import Any, Protocol

from partnermatch import i18n
from partnermatch.i18n import N_
from partnermatch.reasons import REJECTION_REASONS, SHARED, Reason
from services.matcher import domain
from services.matcher.analytics import ClusterFigures, figures
from services.matcher.domain import Ballot, DecisionRefused, PairRecord, PairSaved

logger = logging.getLogger(__name__)

STATES: tuple[str, ...] = ("pending", "approved", "rejected")
DECIDED_STATES: tuple[str, ...] = ("approved", "rejected")
QUERY_STATES: tuple[str, ...] = (*STATES, "decided")  # what a listing may ask for: "decided" is both
PUBLIC_PROFILE_FIELDS = (
    "org_id",
    "name",
    "cluster_id",
    "country",
    "language",
    "capabilities",
    "goals",
    "sectors",
    "website",
)


class HeldPair(Protocol):
    """A pair read for update: `save` queues a step, written when the `with` block ends."""

    pair: PairRecord | None
    written: bool

    def save(self, step: PairSaved | None) -> None: ...

    def __enter__(self) -> HeldPair: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class ReviewRepository(Protocol):
    """What the review reads and saves of the matcher's state (adapters/redis_state.py)."""

    def get_pair(self, pair_id: str) -> PairRecord | None: ...

    def get_pairs(self, pair_ids: Iterable[str]) -> list[PairRecord]: ...

    def get_profiles(self, org_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...

    def pending_ids_of_cluster(self, cluster_id: str) -> list[str]: ...

    def history_ids_of_cluster(self, cluster_id: str) -> list[str]: ...

    def pair_ids_of_org(self, org_id: str) -> list[str]: ...

    def pair_for_update(self, pair_id: str) -> Iterator[HeldPair]: ...


def now_ms() -> int:
    return int(time.time() * 1000)


Renderer = Callable[[dict[str, Any], str], str]
NeedRenderer = Callable[[dict[str, Any], str, str, str], str]


def _default_renderer() -> Renderer:
    from services.matcher.engine import render_reason

    return render_reason


def _need_renderer() -> NeedRenderer:
    from services.matcher.engine.render import render_need

    return render_need


DELETED = N_("deleted organisation")  # the pages' words for it (the coordinators' catalogue)


def render_reasons(
    pair: dict[str, Any],
    own_is_a: bool,
    names: dict[str, str],
    lang: str,
    render: Renderer,
    render_need: NeedRenderer | None = None,
    limit: int | None = None,
    erased: tuple[bool, bool] = (False, False),
) -> list[dict[str, Any]]:
    """The pair's reasons read from one side (`names` holds the "own" and "partner" names). The
    first reason, when it is a need met, reads as a sentence ("<own> seeks <label> — <partner>
    offers it (words)"). The words of a side whose organisation was deleted (`erased`: own,
    partner) are left out: its texts are erased, and the pair's record quotes them no more."""
    reasons: list[dict[str, Any]] = []
    for wire in pair.get("reasons", [])[:limit]:
        reason = Reason.from_dict(wire).seen_from("a" if own_is_a else "b")  # the reader's side is "a"
        if erased[0] or erased[1]:
            reason = replace(
                reason, terms_a=() if erased[0] else reason.terms_a, terms_b=() if erased[1] else reason.terms_b
            )
        try:
            if not reasons and render_need is not None and reason.side != SHARED:
                seeker, provider, need = reason.as_need()
                text = render_need(need.to_dict(), lang, names[seeker], names[provider])
            else:
                text = render(reason.to_dict(), lang)
        except Exception:  # noqa: BLE001 - a label missing must not hide the suggestion
            logger.warning("could not render a reason", exc_info=True, extra={"pair_id": pair["pair_id"]})
            text = " ↔ ".join(filter(None, [", ".join(reason.terms_a), ", ".join(reason.terms_b)]))
        reasons.append(
            {
                "text": text,
                "side": reason.side,
                "concept": reason.concept,
                "kind": reason.kind,
                "weight": reason.weight,
                "own_terms": list(reason.terms_a),
                "partner_terms": list(reason.terms_b),
            }
        )
    return reasons


def _names(profiles: dict[str, dict[str, Any]], own_id: str, partner_id: str, lang: str) -> dict[str, str]:
    """The "own" and "partner" names reasons read: a deleted organisation by the pages' words for
    it, never its id."""
    return {
        who: (profiles.get(org) or {}).get("name") or i18n.gettext(lang, "coordinators", DELETED)
        for who, org in (("own", own_id), ("partner", partner_id))
    }


def pair_view(
    pair: dict[str, Any],
    profiles: dict[str, dict[str, Any]],
    cluster_id: str,
    lang: str,
    render: Renderer,
    render_need: NeedRenderer | None = None,
) -> dict[str, Any]:
    """The pair from the coordinator's side, its reasons rendered in `lang`."""
    own_is_a = pair["cluster_a"] == cluster_id
    own_id, partner_id = (pair["org_a"], pair["org_b"]) if own_is_a else (pair["org_b"], pair["org_a"])
    names = _names(profiles, own_id, partner_id, lang)
    erased = (profiles.get(own_id) is None, profiles.get(partner_id) is None)
    reasons = render_reasons(pair, own_is_a, names, lang, render, render_need, erased=erased)

    def public(org_id: str) -> dict[str, Any]:
        found = profiles.get(org_id)
        if found is None:  # deleted since: the page says so instead of a name
            return {"org_id": org_id, "name": None, "deleted": True}
        return {k: found.get(k) for k in PUBLIC_PROFILE_FIELDS}

    return {
        "pair_id": pair["pair_id"],
        "state": pair["state"],
        "score": pair["score"],
        "created_ms": pair["created_ms"],
        "decided_ms": pair.get("decided_ms"),
        "own": public(own_id),
        "partner": public(partner_id),
        "reasons": reasons,
        "decisions": list(pair.get("decisions", {}).values()),
        "my_decision": pair.get("decisions", {}).get(cluster_id),
        "clusters": {"own": cluster_id, "partner": pair["cluster_b"] if own_is_a else pair["cluster_a"]},
    }


# A pair as its organisations see it: whether coordinators are still deciding, or what they
# decided together. Which cluster decided what, and why, stays between the coordinators.
WAITING = "waiting"
ORG_STATES: tuple[str, ...] = (WAITING, "approved", "rejected")


def state_for_organisation(pair: dict[str, Any]) -> str | None:
    """`waiting` while a decision is missing (also after one cluster approved), `approved` once
    both clusters approved, `rejected` once either rejected; None for a pair not to be shown
    (withdrawn, or a state this code does not know)."""
    state = pair.get("state")
    if state == "pending":
        return WAITING
    if state == "rejected":
        return "rejected"
    if state == "approved":
        decisions = pair.get("decisions") or {}
        # Approval is what opens contacts to the partner: record and decisions must agree.
        both = all(
            (decisions.get(cluster) or {}).get("decision") == "approve"
            for cluster in (pair["cluster_a"], pair["cluster_b"])
        )
        return "approved" if both else None
    return None


def partnership_view(
    pair: dict[str, Any],
    profiles: dict[str, dict[str, Any]],
    org_id: str,
    lang: str,
    render: Renderer,
    render_need: NeedRenderer | None = None,
) -> dict[str, Any] | None:
    """The pair from one organisation's side: its partner, the state as the organisation sees it
    and the first reason in `lang`; None when the organisation is not in the pair or must not see
    it. No decision, coordinator or rejection reason is in it."""
    if org_id not in (pair["org_a"], pair["org_b"]):
        return None
    state = state_for_organisation(pair)
    if state is None:
        return None
    own_is_a = pair["org_a"] == org_id
    partner_id, partner_cluster = (pair["org_b"], pair["cluster_b"]) if own_is_a else (pair["org_a"], pair["cluster_a"])
    partner = profiles.get(partner_id)
    erased = (profiles.get(org_id) is None, partner is None)
    first = render_reasons(
        pair, own_is_a, _names(profiles, org_id, partner_id, lang), lang, render, render_need, limit=1, erased=erased
    )
    return {
        "pair_id": pair["pair_id"],
        "state": state,
        "score": pair["score"],
        "suggested_ms": pair["created_ms"],
        "decided_ms": None if state == WAITING else pair.get("decided_ms"),
        "partner": {
            "org_id": partner_id,
            "name": (partner or {}).get("name"),
            "cluster_id": partner_cluster,
            "country": (partner or {}).get("country"),
        },
        "reason": first[0]["text"] if first else None,
    }


def order_partnerships(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Approved ones first (what the organisation can act on: the partner's contacts), latest
    first; then waiting ones, best score first; then rejected ones, latest first."""

    def latest_first(state: str) -> list[dict[str, Any]]:
        return sorted(
            (v for v in views if v["state"] == state),
            key=lambda v: (-(v["decided_ms"] or v["suggested_ms"]), v["pair_id"]),
        )

    waiting = sorted((v for v in views if v["state"] == WAITING), key=lambda v: (-v["score"], v["pair_id"]))
    return latest_first("approved") + waiting + latest_first("rejected")  # state_for_organisation's three


class ReviewService:
    def __init__(
        self, state: ReviewRepository, render: Renderer | None = None, render_need: NeedRenderer | None = None
    ) -> None:
        self.state = state
        self._render = render
        self._render_need = render_need
        self._real_renderers = render is None  # a test's fake renderer gets no need sentences

    @property
    def render(self) -> Renderer:
        if self._render is None:
            self._render = _default_renderer()
        return self._render

    @property
    def render_need(self) -> NeedRenderer | None:
        if self._render_need is None and self._real_renderers:
            self._render_need = _need_renderer()
        return self._render_need

    def list_for_cluster(
        self,
        cluster_id: str,
        *,
        state: str = "pending",
        sort: str = "score",
        country: str | None = None,
        language: str | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        q: str | None = None,
        sector: str | None = None,
        mine: bool = False,
        lang: str = "en",
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the cluster's suggestions in a state, filtered and sorted, and how many there
        are in all: the one query of the API and the page. The pending ones by score with no filter
        (the queue as it opens) are read a page at a time where the repository can (see
        _pending_page); any other query reads every pair of the cluster. `mine`: only the pairs this
        cluster has not decided (a pending one it approved waits for the other cluster)."""
        filtered = (
            country or language or min_score is not None or max_score is not None or sector or mine or (q and q.strip())
        )
        if state == "pending" and sort == "score" and not filtered and limit > 0:
            found = self._pending_page(cluster_id, lang, offset, limit)
            if found is not None:
                return found
        ids = (
            self.state.pending_ids_of_cluster(cluster_id)
            if state == "pending"
            else self.state.history_ids_of_cluster(cluster_id)
        )
        wanted_states = DECIDED_STATES if state == "decided" else (state,)
        pairs = [p for p in self.state.get_pairs(ids) if p["state"] in wanted_states]
        profiles = self.state.get_profiles({o for p in pairs for o in (p["org_a"], p["org_b"])})

        def partner_side(p: dict[str, Any]) -> str:
            return "b" if p["cluster_a"] == cluster_id else "a"

        def partner(p: dict[str, Any]) -> dict[str, Any]:
            return profiles.get(p[f"org_{partner_side(p)}"], {})

        if country:
            pairs = [p for p in pairs if partner(p).get("country") == country]
        if language:
            pairs = [p for p in pairs if partner(p).get("language") == language]
        if mine:
            pairs = [p for p in pairs if cluster_id not in (p.get("decisions") or {})]
        if min_score is not None:
            pairs = [p for p in pairs if p["score"] >= min_score]
        if max_score is not None:
            pairs = [p for p in pairs if p["score"] <= max_score]
        if sector:
            pairs = [
                p for p in pairs if _states_sector(partner(p), sector) or _reads_sector(p, partner_side(p), sector)
            ]
        if q and q.strip():
            wanted = _searchable(q)
            pairs = [
                p
                for p in pairs
                if any(
                    wanted in _searchable((profiles.get(o) or {}).get("name") or "") for o in (p["org_a"], p["org_b"])
                )
            ]
        if sort == "date":
            pairs.sort(key=lambda p: p.get("decided_ms") or p["created_ms"], reverse=True)
        else:
            pairs.sort(key=lambda p: p["score"], reverse=True)
        total = len(pairs)
        page = pairs[offset : offset + limit]
        return [pair_view(p, profiles, cluster_id, lang, self.render, self.render_need) for p in page], total

    def _pending_page(
        self, cluster_id: str, lang: str, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int] | None:
        """One page of the cluster's pending pairs by score, reading only that page's pairs and
        profiles: the cluster's pending index holds each pending pair by the score its record
        holds, written with it in one transaction, so its order is the one sorting the records
        gives. None where the repository cannot read a page, or where a pair of the page is not
        pending as its record says (then the whole cluster is read, as for any other query)."""
        read_page = getattr(self.state, "pending_page_of_cluster", None)
        if read_page is None:
            return None
        ids, total = read_page(cluster_id, offset, limit)
        pairs = self.state.get_pairs(ids)
        if len(pairs) != len(ids) or any(p["state"] != "pending" for p in pairs):
            return None
        profiles = self.state.get_profiles({o for p in pairs for o in (p["org_a"], p["org_b"])})
        return [pair_view(p, profiles, cluster_id, lang, self.render, self.render_need) for p in pairs], total

    def read(self, cluster_id: str, pair_id: str, lang: str = "en") -> dict[str, Any] | None:
        pair = self.state.get_pair(pair_id)
        if pair is None or cluster_id not in (pair["cluster_a"], pair["cluster_b"]) or pair["state"] == "withdrawn":
            return None
        profiles = self.state.get_profiles([pair["org_a"], pair["org_b"]])
        return pair_view(pair, profiles, cluster_id, lang, self.render, self.render_need)

    def partnerships_of_org(self, org_id: str, lang: str = "en") -> list[dict[str, Any]]:
        """Every pair involving the organisation, as it sees them (see `partnership_view`)."""
        pairs = self.state.get_pairs(self.state.pair_ids_of_org(org_id))
        profiles = self.state.get_profiles({o for p in pairs for o in (p["org_a"], p["org_b"])} | {org_id})
        views = (partnership_view(p, profiles, org_id, lang, self.render, self.render_need) for p in pairs)
        return order_partnerships([v for v in views if v is not None])

    def view(self, cluster_id: str, pair: dict[str, Any], lang: str = "en") -> dict[str, Any]:
        """A pair already read (e.g. the one a decision returned) as `read` shows it."""
        profiles = self.state.get_profiles([pair["org_a"], pair["org_b"]])
        return pair_view(pair, profiles, cluster_id, lang, self.render, self.render_need)

    def decide(
        self,
        cluster_id: str,
        coordinator: str,
        pair_id: str,
        decision: str,
        reason_code: str | None = None,
        reason_text: str | None = None,
    ) -> dict[str, Any]:
        """Record the cluster's decision and return the pair as it now is. Deciding again as the
        cluster already did (a retry after a lost answer, a double click) is answered with the pair
        as it is, with nothing recorded or published twice; a different decision is refused
        (DecisionRefused). Answered from one read of the pair (domain.decide)."""
        ballot = Ballot(cluster_id, coordinator, decision, reason_code, reason_text)
        for held in self.state.pair_for_update(pair_id):
            with held:
                decided = domain.decide(held.pair, ballot, now_ms())
                held.save(decided.saved)
        if decided.repeated:
            logger.info(
                "decision repeated: answered with the one recorded",
                extra={"pair_id": pair_id, "cluster_id": cluster_id, "decision": decision},
            )
        else:
            logger.info(
                "decision recorded",
                extra={
                    "pair_id": pair_id,
                    "cluster_id": cluster_id,
                    "decision": decision,
                    "state": decided.pair["state"],
                },
            )
        return decided.pair

    def analytics(self, cluster_id: str, now_ms: int, weeks: int = 12) -> ClusterFigures:
        """The cluster's review figures, from every pair still pending or decided."""
        ids = self.state.pending_ids_of_cluster(cluster_id) + self.state.history_ids_of_cluster(cluster_id)
        return figures(self.state.get_pairs(list(dict.fromkeys(ids))), now_ms, weeks)

    def withdraw_approval(self, cluster_id: str, coordinator: str, pair_id: str) -> dict[str, Any]:
        """The cluster's approval taken back while the other cluster has not decided; raises
        DecisionRefused when there is none to take back or the pair is decided."""
        for held in self.state.pair_for_update(pair_id):
            with held:
                saved = domain.withdraw_approval(held.pair, cluster_id, now_ms())
                held.save(saved)
        logger.info(
            "approval withdrawn", extra={"pair_id": pair_id, "cluster_id": cluster_id, "coordinator": coordinator}
        )
        return saved.record


def _states_sector(profile: dict[str, Any], sector: str) -> bool:
    """Whether a profile states the sector: among its sectors, or as the sector of something it
    offers ("agrifood.dairy" is agrifood)."""
    stated = list(profile.get("sectors") or []) + list(profile.get("offers") or [])
    return any(_in_sector(item, sector) for item in stated)


def _in_sector(concept: str, sector: str) -> bool:
    """The sector itself, or one of its activities ("agrifood.dairy" is agrifood)."""
    return concept == sector or concept.startswith(sector + ".")


def _reads_sector(pair: dict[str, Any], side: str, sector: str) -> bool:
    """Whether the pair's reasons found the sector, or one of its activities, as something side
    `side` ("a" or "b") does: offered to the other, or shared by both (not merely sought). Most
    organisations write only free text; the reasons name the sectors the matcher read there."""
    other = "b" if side == "a" else "a"
    return any(
        reason.get("kind") in ("sector", "activity")
        and reason.get("direction") in ("shared", f"{side}_offers_{other}_seeks")
        and _in_sector(str(reason.get("concept") or ""), sector)
        and reason.get(f"terms_{side}")
        for reason in pair.get("reasons") or ()
    )


def _searchable(text: str) -> str:
    """A name as searched: lower case, accents off, Cyrillic as Latin (the matcher's own folding),
    so "kosice" finds "Košice" and "novi sad" finds "Нови Сад"."""
    from services.matcher.engine.text import fold

    return " ".join(fold(word) for word in text.split())


__all__ = [
    "DecisionRefused",
    "ORG_STATES",
    "REJECTION_REASONS",
    "ReviewService",
    "STATES",
    "order_partnerships",
    "pair_view",
    "partnership_view",
    "render_reasons",
    "state_for_organisation",
]
