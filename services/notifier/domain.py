"""The rules of the delivery ledger: states and their transitions, delivery and message ids,
retry delays, and what an SMTP reply means. Pure, no I/O.

A match is recorded once per pair (`pending`), then expanded at send time into one delivery per
(pair, recipient). A delivery moves:

    pending ──claim──▶ claimed ──(RCPT accepted, DATA next)──▶ sending ──250──▶ sent
                         │                                         │
                         ├─▶ retry(at) ─(due)─▶ claimed …          ├─▶ retry(at)  (4xx, timeout)
                         ├─▶ failed   (5xx, bad address, attempts) ├─▶ failed     (5xx)
                         └─▶ skipped  (no consent, unsubscribed,   └─▶ uncertain  (worker died,
                                       organisation deleted)                       no reply to DATA)

`claimed` means nothing has been handed to SMTP yet, so a crashed worker's claim goes back to
pending. `sending` means the message body may have reached the SMTP server; if its worker dies
there, nobody can know whether the server accepted it, so it becomes `uncertain` and is never
resent by itself (an operator decides).
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime
from typing import Any

# What an SMTP reply means is shared with every service that sends mail.
from partnermatch.mail import PERMANENT as PERMANENT
from partnermatch.mail import TEMPORARY as TEMPORARY
from partnermatch.mail import classify_smtp_code as classify_smtp_code

# ---- states -----------------------------------------------------------------------------------

PENDING = "pending"
CLAIMED = "claimed"
SENDING = "sending"
SENT = "sent"
RETRY = "retry"
FAILED = "failed"
SKIPPED = "skipped"
UNCERTAIN = "uncertain"

# A match (one per approved pair) before it is turned into deliveries.
MATCH_PENDING = "pending"
MATCH_EXPANDING = "expanding"
MATCH_EXPANDED = "expanded"
MATCH_RETRY = "retry"
MATCH_SKIPPED = "skipped"

# A delivery's states that no worker moves on from, but `uncertain`, which waits for an operator
# who may release it: a match whose deliveries are all over is finished, and its records expire
# (LEDGER_KEEP_DAYS).
OVER_STATES = frozenset({SENT, FAILED, SKIPPED})
# How long a finished match's records are kept (NOTIFIER_LEDGER_KEEP_DAYS's default); its id is
# kept for ever, so a replayed event records nothing whenever it comes.
LEDGER_KEEP_DAYS = 30
LEDGER_KEEP_DAYS_MAX = 36500

# to-state → the states it may be reached from. The Redis ledger enforces exactly this table.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    CLAIMED: (PENDING, RETRY),
    SENDING: (CLAIMED,),
    SENT: (SENDING, UNCERTAIN),  # the SMTP server's 250 is the truth, even after a lease ran out
    RETRY: (CLAIMED, SENDING),
    FAILED: (CLAIMED, SENDING),
    SKIPPED: (CLAIMED,),
    UNCERTAIN: (SENDING,),
    PENDING: (CLAIMED, UNCERTAIN),  # a stale claim, or an operator releasing an uncertain one
}
MATCH_TRANSITIONS: dict[str, tuple[str, ...]] = {
    MATCH_EXPANDING: (MATCH_PENDING, MATCH_RETRY),
    MATCH_EXPANDED: (MATCH_EXPANDING,),
    MATCH_RETRY: (MATCH_EXPANDING,),
    MATCH_SKIPPED: (MATCH_EXPANDING,),
    MATCH_PENDING: (MATCH_EXPANDING,),  # a stale claim: expansion is idempotent, safe to redo
}


def may_move(state: str | None, to: str) -> bool:
    return state in TRANSITIONS.get(to, ())


# ---- why a delivery is skipped or failed ------------------------------------------------------

NO_CONSENT = "no_consent"
UNSUBSCRIBED = "unsubscribed"
ORGANISATION_DELETED = "organisation_deleted"
PARTNER_DELETED = "partner_deleted"
CONTACT_REMOVED = "contact_removed"
INVALID_ADDRESS = "invalid_address"
UNSAFE_HEADER = "unsafe_header"
ATTEMPTS_EXHAUSTED = "attempts_exhausted"


# ---- ids --------------------------------------------------------------------------------------


def recipient_key(email: str) -> str:
    """A stable, non-reversible-at-a-glance key of an address (the ledger stores no addresses)."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:32]


def delivery_id(pair_id: str, email: str) -> str:
    """One delivery per (match, recipient): the same inputs always give the same id."""
    return hashlib.sha256(f"{pair_id}\n{recipient_key(email)}".encode()).hexdigest()[:32]


def message_id(delivery: str, domain: str) -> str:
    """Deterministic, so a resend (by an operator) is recognisably the same message."""
    return f"<partnermatch.{delivery}@{domain}>"


# ---- retries ----------------------------------------------------------------------------------


def retry_delay(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: half of the capped delay is fixed, the other half random,
    so retries of many deliveries spread out but never come sooner than half the schedule."""
    ceiling = min(max_s, base_s * 2.0 ** max(0, min(attempt - 1, 30)))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


# ---- coordinators' notices --------------------------------------------------------------------
# Besides partnership emails to contact persons, coordinators get two kinds of notice, each a
# record of the same ledger (keyed by its notice id instead of a pair id) expanded at send time
# into one delivery per coordinator of the cluster: a digest of new suggestions waiting for the
# cluster, and word that the other cluster decided a pair theirs had approved.

PARTNERSHIP = "partnership"
DIGEST = "digest"
DECISIONS = "decisions"
COORDINATOR_KINDS = (DIGEST, DECISIONS)
COORDINATOR_REMOVED = "coordinator_removed"
CLUSTER_DELETED = "cluster_deleted"


def digest_period(now: float, interval_s: float) -> int:
    """The period `now` falls in: periods are aligned to the epoch, so a day's period starts at
    midnight UTC. A digest names its period, which makes it once-only."""
    return int(now // interval_s)


DIGEST_ID_PREFIX = "digest:"


def digest_id(cluster_id: str, period: int) -> str:
    return f"{DIGEST_ID_PREFIX}{cluster_id}:{period}"


def decided_notice_id(pair_id: str, cluster_id: str) -> str:
    return f"decided:{pair_id}:{cluster_id}"


def other_side_decisions(event_type: str, decisions: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Who is to hear that the other side decided: (cluster that had approved, the decision that
    made the pair final), for each cluster whose approval came strictly before that decision.
    The final decision is the rejection of a rejected pair, the later approval of an approved one;
    decisions taken at the same instant tell nobody anything new."""
    wanted = "approve" if event_type == "match.approved" else "reject"
    timed = [(when, d) for d in decisions if (when := _decided_at(d)) is not None]
    finals = [(when, d) for when, d in timed if d.get("decision") == wanted]
    if not finals:
        return []
    final_at, final = max(finals, key=lambda item: item[0])
    return [
        (str(d["cluster_id"]), final)
        for when, d in timed
        if d.get("decision") == "approve"
        and d.get("cluster_id")
        and d.get("cluster_id") != final.get("cluster_id")
        and when < final_at
    ]


def _decided_at(decision: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(decision.get("decided_at") or ""))
    except ValueError:
        return None
