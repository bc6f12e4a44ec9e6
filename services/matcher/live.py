"""The live matcher: turns profile events into suggestion changes, using the engine's incremental index.

The engine holds every current profile in memory; Redis holds the truth (profiles as applied,
pairs and their review state). On start the index is rebuilt from Redis, so a restart resumes
where it stopped, and a replayed event (same or older revision) changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from partnermatch import events
from partnermatch.reasons import Reason
from services.matcher.adapters.redis_state import PairWrite, ProfileChange, RedisMatcherState
from services.matcher.feedback import dislikes_in, rerank

logger = logging.getLogger(__name__)

# Where rejections lower some candidates, a list is chosen from this many times top_k of the
# engine's best, so the candidates the lowered ones give way to are among them.
WIDER_LIST = 4


def reason_dict(reason: Any) -> dict[str, Any]:
    return dict(reason) if isinstance(reason, dict) else reason.to_dict()


def profile_from_payload(payload: dict[str, Any]):
    """The engine's profile of a `profile.upserted` payload, v1 or v2 (a v1 one has no structured
    needs), or of a profile stored as applied."""
    from services.matcher.engine import OrgProfile

    return OrgProfile(
        id=payload["org_id"],
        name=payload.get("name", ""),
        cluster=payload["cluster_id"],
        country=payload.get("country", ""),
        language=payload.get("language"),
        capabilities=payload.get("capabilities", ""),
        goals=payload.get("goals", ""),
        offers=tuple(payload.get("offers") or ()),
        seeks=tuple(payload.get("seeks") or ()),
        seeks_countries=tuple(payload.get("seeks_countries") or ()),
    )


class LiveMatcher:
    def __init__(
        self,
        state: RedisMatcherState,
        engine: Any,
        top_k: int = 5,
        min_score: float = 0.05,
        max_pending_per_org: int = 8,
        feedback_strength: float = 0.5,
    ) -> None:
        self.state = state
        self.engine = engine
        self.top_k = top_k
        self.min_score = min_score
        self.max_pending = max_pending_per_org
        self.feedback_strength = feedback_strength
        self.clusters: dict[str, str] = {}

    # ---- start-up -------------------------------------------------------------------------

    def load(self) -> int:
        """Rebuild the in-memory index from the profiles applied so far."""
        from services.matcher.engine.text import preload_lemmatizers

        started = time.monotonic()
        preload_lemmatizers()
        logger.info("lemma indexes open", extra={"seconds": round(time.monotonic() - started, 2)})
        self.state.build_dislikes()
        profiles = list(self.state.all_profiles())
        self.clusters = {p["org_id"]: p["cluster_id"] for p in profiles}

        def progress(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            logger.info("index rebuild", extra={"done": done, "total": total, "per_s": round(rate)})

        self.engine.fit([profile_from_payload(p) for p in profiles], progress=progress)
        logger.info("index ready", extra={"profiles": len(profiles), "seconds": round(time.monotonic() - started, 2)})
        return len(profiles)

    # ---- one event ------------------------------------------------------------------------

    def handle(self, envelope: events.Envelope) -> bool:
        """Apply one profile event; False when it was already applied (replay) or is not ours."""
        payload = envelope.payload
        if envelope.event_type not in (events.PROFILE_UPSERTED, events.PROFILE_DELETED):
            return False
        org_id, revision = payload["org_id"], int(payload["revision"])
        if revision <= self.state.applied_revision(org_id):
            return False
        return self.apply(self.plan(envelope, self.index(envelope)))

    # The three steps of a profile event, apart for matchers that share the work (table.py): each
    # indexes every event, and only the owner of the event's partition plans and applies it.

    def index(self, envelope: events.Envelope) -> set[str]:
        """Put a profile event into the in-memory index only: the organisations whose lists it
        changed, its own one included unless it was deleted."""
        payload = envelope.payload
        org_id = payload["org_id"]
        if envelope.event_type == events.PROFILE_UPSERTED:
            self.clusters[org_id] = payload["cluster_id"]
            update = self.engine.upsert(profile_from_payload(payload))
            return {org_id} | _ids(getattr(update, "entered", ())) | _ids(getattr(update, "left", ()))
        if org_id not in self.clusters:
            return set()
        update = self.engine.remove(org_id) if self._indexed(org_id) else None
        self.clusters.pop(org_id)
        return (_ids(getattr(update, "entered", ())) | _ids(getattr(update, "left", ()))) - {org_id}

    def plan(self, envelope: events.Envelope, affected: set[str]) -> ProfileChange:
        """The change a profile event already in the index makes: its profile, and the pairs of the
        lists of `affected` as the index now holds them."""
        payload = envelope.payload
        org_id, revision = payload["org_id"], int(payload["revision"])
        if envelope.event_type == events.PROFILE_UPSERTED:
            return self._plan(org_id, revision, dict(payload), affected, set())
        return self._plan(org_id, revision, None, affected, {org_id})

    def apply(self, change: ProfileChange) -> bool:
        """Write the change durably, once: False when its revision was applied before."""
        applied = self.state.apply(change)
        logger.info(
            "profile event applied",
            extra={
                "org_id": change.org_id,
                "revision": change.revision,
                "deleted": change.profile is None,
                "suggested": len(change.upserts),
                "withdrawn": len(change.withdrawals),
                "applied": applied,
            },
        )
        return applied

    def handle_decision(self, envelope: events.Envelope) -> bool:
        """Apply what a rejection teaches: the organisation whose coordinator rejected its partner as
        not relevant (recorded with the decision) gets its list planned again at once, and so do the
        partners of its pending pairs, which may lose it. Once per rejection: False when it was
        applied already (a replay) or teaches nothing."""
        if envelope.event_type != events.MATCH_REJECTED:
            return False
        pair_id = envelope.payload["pair_id"]
        dislikers = {org for org, _ in dislikes_in(envelope.payload, envelope.payload.get("decisions", []))}
        present = {org for org in dislikers if org in self.clusters and self._indexed(org)}
        if not present or self.state.lesson_applied(pair_id):
            return False
        affected = set(present)
        for org in present:
            affected |= {_other(pid, org) for pid in self.state.pending_of_org(org)}
        affected = {org for org in affected if org in self.clusters}
        upserts, withdrawals = self._pair_changes(affected, set())
        applied = self.state.apply_lesson(pair_id, upserts, withdrawals)
        logger.info(
            "rejection applied to the lists",
            extra={
                "pair_id": pair_id,
                "orgs": ",".join(sorted(present)),
                "suggested": len(upserts),
                "withdrawn": len(withdrawals),
                "applied": applied,
            },
        )
        return applied

    def plan_lists(self, orgs: set[str]) -> tuple[list[PairWrite], list[tuple[str, str]]]:
        """The pairs to suggest and to withdraw when the lists of these organisations (those in the
        index) are planned again as the index now holds them."""
        return self._pair_changes({org for org in orgs if org in self.clusters}, set())

    def _indexed(self, org_id: str) -> bool:
        try:
            self.engine.top(org_id, 1)
        except KeyError:
            return False
        return True

    def _plan(
        self, org_id: str, revision: int, profile: dict[str, Any] | None, affected: set[str], gone: set[str]
    ) -> ProfileChange:
        upserts, withdrawals = self._pair_changes(affected, gone)
        return ProfileChange(org_id, revision, profile, upserts=upserts, withdrawals=withdrawals)

    def _pair_changes(self, affected: set[str], gone: set[str]) -> tuple[list[PairWrite], list[tuple[str, str]]]:
        """The pairs to suggest and to withdraw (with why) for the lists of `affected` as they now
        are, the organisations in `gone` deleted."""
        wanted: dict[str, PairWrite] = {}
        tops: dict[str, set[str]] = {}
        for who in sorted(affected - gone):
            tops[who] = set()
            for s in self._top(who):
                tops[who].add(s.id)
                pid = events.pair_id(who, s.id)
                org_a, org_b = sorted((who, s.id))
                # the engine wrote them for `who` as "a"; the pair is stored with org_a first
                side = "a" if org_a == who else "b"
                reasons = [Reason.from_dict(reason_dict(r)).seen_from(side).to_dict() for r in s.reasons]
                if pid not in wanted or wanted[pid].score < s.score:
                    wanted[pid] = PairWrite(
                        pid, org_a, org_b, self.clusters[org_a], self.clusters[org_b], float(s.score), reasons
                    )
        for pid in self.state.decided(wanted):
            del wanted[pid]

        withdrawals: dict[str, str] = {}
        pending: dict[str, dict[str, float]] = {}
        for who in sorted(affected | gone):
            pending[who] = self.state.pending_of_org(who)
            for pid in pending[who]:
                if who in gone:
                    withdrawals[pid] = "organisation_deleted"
                    continue
                if pid in wanted:
                    continue
                other = _other(pid, who)
                if other in gone:
                    withdrawals[pid] = "organisation_deleted"
                elif who not in self._top_ids(other, tops):
                    withdrawals[pid] = "no_longer_matching"

        upserts = self._cap(wanted, pending, withdrawals)
        return upserts, sorted(withdrawals.items())

    def _cap(
        self, wanted: dict[str, PairWrite], pending: dict[str, dict[str, float]], withdrawals: dict[str, str]
    ) -> list[PairWrite]:
        """No organisation gets more than `max_pending` pending pairs: the best ones stay."""
        chosen: dict[str, PairWrite] = {}
        load: dict[str, dict[str, float]] = {}

        def current(org: str) -> dict[str, float]:
            if org not in load:
                known = pending.get(org)
                if known is None:
                    known = self.state.pending_of_org(org)
                # a pending pair planned again counts with its new score (rejections may have lowered it)
                load[org] = {p: wanted[p].score if p in wanted else s for p, s in known.items() if p not in withdrawals}
            return load[org]

        for w in sorted(wanted.values(), key=lambda w: -w.score):
            fits = True
            for org in (w.org_a, w.org_b):
                mine = current(org)
                if w.pair_id in mine or len(mine) < self.max_pending:
                    continue
                weakest = min(mine, key=lambda p: mine[p])
                if mine[weakest] < w.score and weakest not in chosen:
                    withdrawals[weakest] = "displaced_by_better_match"
                    for o in weakest.split("~"):
                        current(o).pop(weakest, None)
                else:
                    fits = False
            if fits:
                chosen[w.pair_id] = w
                for org in (w.org_a, w.org_b):
                    current(org)[w.pair_id] = w.score
        return list(chosen.values())

    def _top(self, org_id: str) -> list[Any]:
        """The organisation's best partners; where rejections bear on its list (its own, or its
        candidates'), chosen from a wider list of the engine's with their scores lowered."""
        listed = self.engine.top(org_id, self.top_k)
        if self.feedback_strength > 0 and listed:
            asked = {org_id, *(s.id for s in listed)}
            dislikes = self.state.dislikes_of(asked)
            if dislikes:
                wider = self.engine.top(org_id, WIDER_LIST * self.top_k)
                dislikes.update(self.state.dislikes_of(s.id for s in wider if s.id not in asked))
                listed = rerank(self.engine, org_id, wider, dislikes, self.feedback_strength)[: self.top_k]
        return [s for s in listed if s.score >= self.min_score]

    def _top_ids(self, org_id: str, cache: dict[str, set[str]]) -> set[str]:
        if org_id not in cache:
            try:
                cache[org_id] = {s.id for s in self._top(org_id)}
            except KeyError:
                cache[org_id] = set()
        return cache[org_id]


def _ids(value: Iterable[Any] | dict[str, Any]) -> set[str]:
    if isinstance(value, dict):
        return set(value)
    return {v if isinstance(v, str) else getattr(v, "id", v) for v in value}


def _other(pair_id: str, org_id: str) -> str:
    first, _, second = pair_id.partition("~")
    return second if first == org_id else first
