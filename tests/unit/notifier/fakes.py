"""Fakes of the notifier's outside world: the profiles service and the SMTP server; and a mailer
that dies right after a message was accepted (the integration tests wrap the real one with it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from partnermatch.smtp import ClaimLost
from services.notifier.adapters.profiles_client import ProfilesUnavailable


@dataclass
class FakeProfiles:
    orgs: dict[str, dict[str, Any]] = field(default_factory=dict)
    coordinators: dict[str, dict[str, Any]] = field(default_factory=dict)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    down: bool = False
    calls: int = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise ProfilesUnavailable("connection refused")

    def organisation(self, org_id: str) -> dict[str, Any] | None:
        self._check()
        org = self.orgs.get(org_id)
        return {k: v for k, v in org.items() if k != "contacts"} if org else None

    def contacts(self, org_id: str) -> list[dict[str, Any]] | None:
        self._check()
        org = self.orgs.get(org_id)
        return list(org.get("contacts", [])) if org else None

    def coordinator(self, username: str) -> dict[str, Any] | None:
        self._check()
        return self.coordinators.get(username)

    def cluster(self, cluster_id: str) -> dict[str, Any] | None:
        self._check()
        return self.clusters.get(cluster_id)

    def cluster_coordinators(self, cluster_id: str) -> list[dict[str, Any]] | None:
        self._check()
        if cluster_id not in self.clusters:
            return None
        return [c for c in self.coordinators.values() if c.get("cluster_id") == cluster_id]


@dataclass
class FakeMailer:
    """Accepts everything, unless told to raise: `failures` are raised in order, one per send.
    `after_data` failures happen once the ledger says `sending` (like a reply to the body)."""

    sent: list[Any] = field(default_factory=list)
    failures: list[tuple[str, Exception]] = field(default_factory=list)

    def send(self, msg, sender, recipient, before_data, on_accepted) -> None:  # type: ignore[no-untyped-def]
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None and failure[0] == "before_data":
            raise failure[1]
        if not before_data():
            raise ClaimLost("lost")
        if failure is not None:
            raise failure[1]
        self.sent.append((recipient, msg))
        on_accepted("250 OK")

    def to(self, address: str) -> list[Any]:
        return [m for r, m in self.sent if r == address]


CRASH_POINTS = ("before_ledger", "after_ledger")


class MailerThatDiesAfterAccept:
    """Wraps a mailer: the moment the server has accepted a message, `die()` ends the worker,
    before the ledger records the send (`before_ledger`) or right after (`after_ledger`). Stands
    for a process killed at the worst moment; the production code knows nothing of it."""

    def __init__(self, mailer: Any, crash_point: str, die: Callable[[], NoReturn]) -> None:
        if crash_point not in CRASH_POINTS:
            raise ValueError(f"crash_point is one of {CRASH_POINTS}")
        self.mailer = mailer
        self.crash_point = crash_point
        self.die = die

    def send(
        self,
        msg: Any,
        sender: str,
        recipient: str,
        before_data: Callable[[], bool],
        on_accepted: Callable[[str], None],
    ) -> None:
        def accepted_then_die(reply: str) -> None:
            if self.crash_point == "after_ledger":
                on_accepted(reply)
            self.die()

        self.mailer.send(msg, sender, recipient, before_data, accepted_then_die)


def org(
    org_id: str,
    cluster: str,
    name: str,
    language: str,
    contacts: list[dict[str, Any]],
    **extra: Any,
):
    return {
        "id": org_id,
        "cluster_id": cluster,
        "name": name,
        "country": extra.pop("country", "RS"),
        "language": language,
        "capabilities": extra.pop("capabilities", f"{name} offers software."),
        "goals": extra.pop("goals", f"{name} seeks partners."),
        "website": extra.pop("website", None),
        "contacts": contacts,
        **extra,
    }


def contact(name: str, email: str, language: str, consent: bool = True) -> dict[str, Any]:
    return {"id": email, "name": name, "email": email, "language": language, "consent": consent}


def decided_payload(
    org_a: str = "org_a",
    org_b: str = "org_b",
    cluster_a: str = "pl-silesia-ict",
    cluster_b: str = "rs-vojvodina-ict",
    reasons: list[dict[str, Any]] | None = None,
    b_decided_at: str = "2026-11-23T09:30:00+00:00",
    b_decision: str = "approve",
    b_reason_code: str | None = None,
):
    """A decided pair's payload: cluster a approved at 09:30, cluster b decided at `b_decided_at`
    (by default the same instant, so neither coordinator is told of the other's decision)."""
    return {
        "pair_id": f"{min(org_a, org_b)}~{max(org_a, org_b)}",
        "org_a": org_a,
        "org_b": org_b,
        "cluster_a": cluster_a,
        "cluster_b": cluster_b,
        "score": 0.71,
        "reasons": reasons
        if reasons is not None
        else [
            {
                "concept": None,
                "kind": "term",
                "direction": "a_offers_b_seeks",
                "weight": 0.4,
                "terms_a": ["oprogramowanie"],
                "terms_b": ["softver"],
            },
            {
                "concept": None,
                "kind": "term",
                "direction": "b_offers_a_seeks",
                "weight": 0.6,
                "terms_a": ["rolnictwo"],
                "terms_b": ["poljoprivreda"],
            },
        ],
        "decisions": [
            {
                "cluster_id": cluster_a,
                "coordinator": "anna",
                "decision": "approve",
                "reason_code": None,
                "reason_text": None,
                "decided_at": "2026-11-23T09:30:00+00:00",
            },
            {
                "cluster_id": cluster_b,
                "coordinator": "marko",
                "decision": b_decision,
                "reason_code": b_reason_code,
                "reason_text": "Free text stays on the coordinators' page" if b_reason_code else None,
                "decided_at": b_decided_at,
            },
        ],
    }
