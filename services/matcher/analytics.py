"""A cluster's review figures: suggestions made, approved, rejected (by reason), the acceptance
rate, the median time to a decision, and the same week by week; and the CSV of a listing. Pure:
computed from pairs already read."""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass
class Week:
    start: str  # ISO date of the week's Monday (UTC)
    suggested: int = 0
    approved: int = 0
    rejected: int = 0


@dataclass
class ClusterFigures:
    suggested: int = 0  # pending and decided pairs involving the cluster
    pending: int = 0
    approved: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)  # the rejecting decision's reason
    acceptance_rate: float | None = None  # approved / decided; None before any decision
    median_days_to_decision: float | None = None
    weeks: list[Week] = field(default_factory=list)


def _monday(ms: int) -> datetime:
    day = datetime.fromtimestamp(ms / 1000, UTC).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=day.weekday())


def figures(pairs: Iterable[dict[str, Any]], now_ms: int, weeks: int = 12) -> ClusterFigures:
    """The figures of a cluster's pairs (withdrawn ones are not counted: nobody was asked)."""
    out = ClusterFigures()
    reasons: Counter[str] = Counter()
    waits: list[float] = []
    first_week = _monday(now_ms) - timedelta(weeks=weeks - 1)
    by_week = {
        first_week + timedelta(weeks=i): Week((first_week + timedelta(weeks=i)).date().isoformat())
        for i in range(weeks)
    }
    for pair in pairs:
        state = pair.get("state")
        if state not in ("pending", "approved", "rejected"):
            continue
        out.suggested += 1
        created = _monday(pair["created_ms"])
        if created in by_week:
            by_week[created].suggested += 1
        if state == "pending":
            out.pending += 1
            continue
        decided_ms = pair.get("decided_ms") or pair.get("updated_ms") or pair["created_ms"]
        waits.append(max(0, decided_ms - pair["created_ms"]) / 86_400_000)
        week = by_week.get(_monday(decided_ms))
        if state == "approved":
            out.approved += 1
            if week is not None:
                week.approved += 1
        else:
            out.rejected += 1
            if week is not None:
                week.rejected += 1
            rejecting = [d for d in pair.get("decisions", {}).values() if d.get("decision") == "reject"]
            reasons[(rejecting[0].get("reason_code") if rejecting else None) or "other"] += 1
    decided = out.approved + out.rejected
    out.acceptance_rate = out.approved / decided if decided else None
    out.median_days_to_decision = round(statistics.median(waits), 1) if waits else None
    out.rejected_by_reason = dict(reasons.most_common())
    out.weeks = list(by_week.values())
    return out


CSV_COLUMNS = (
    "pair_id",
    "state",
    "score",
    "own_org",
    "own_name",
    "partner_org",
    "partner_name",
    "partner_country",
    "partner_country_name",
    "partner_cluster",
    "partner_cluster_name",
    "suggested_at",
    "decided_at",
    "own_decision",
    "own_coordinator",
    "own_reason",
    "own_comment",
    "partner_decision",
    "partner_coordinator",
    "partner_reason",
    "partner_comment",
)


def _iso(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else ""


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (names come from the public): one
    starting, after any spaces, with a formula character gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.lstrip(" ")[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def listing_csv(
    views: Sequence[dict[str, Any]],
    cluster_name: Callable[[str], str] = str,
    country_name: Callable[[str], str] = str,
) -> str:
    """The pairs as the page lists them (pair views), one row each, both sides' decisions; the
    partner's cluster and country by id or code and by name (as the callables give them)."""
    buffer = io.StringIO()
    # Every cell quoted: a spreadsheet splitting at ";" (many European locales) cannot then cut a
    # cell into pieces that start with "=".
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for view in views:
        decisions = {d["cluster_id"]: d for d in view.get("decisions", [])}
        own = decisions.get(view["clusters"]["own"], {})
        partner = decisions.get(view["clusters"]["partner"], {})
        writer.writerow(
            [
                _cell(v)
                for v in (
                    view["pair_id"],
                    view["state"],
                    f"{view['score']:.3f}",
                    view["own"]["org_id"],
                    view["own"].get("name") or "",
                    view["partner"]["org_id"],
                    view["partner"].get("name") or "",
                    view["partner"].get("country") or "",
                    country_name(view["partner"].get("country") or ""),
                    view["clusters"]["partner"],
                    cluster_name(view["clusters"]["partner"]),
                    _iso(view.get("created_ms")),
                    _iso(view.get("decided_ms")),
                    own.get("decision", ""),
                    own.get("coordinator", ""),
                    own.get("reason_code") or "",
                    own.get("reason_text") or "",
                    partner.get("decision", ""),
                    partner.get("coordinator", ""),
                    partner.get("reason_code") or "",
                    partner.get("reason_text") or "",
                )
            ]
        )
    return buffer.getvalue()
