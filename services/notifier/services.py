"""The notifier's use cases: record approved matches (the consumer's side) and turn each into one
email per (match, recipient), sent exactly once (the delivery worker's side). All I/O goes through
the adapters it is given: the ledger, the profiles client, the mailer."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from partnermatch import events
from partnermatch.smtp import ClaimLost, SmtpFailure, SmtpOutcomeUnknown
from services.notifier import domain
from services.notifier.adapters.profiles_client import ProfilesUnavailable
from services.notifier.adapters.redis_ledger import NewDelivery, RedisDeliveryLedger
from services.notifier.config import NotifierSettings
from services.notifier.message import InvalidAddress, UnsafeHeader, build_message, safe_address
from services.notifier.render import (
    Coordinator,
    PartnerProfile,
    PartnershipEmail,
    SharedContact,
    email_language,
    reasons_for_side,
    render_partnership_email,
)
from services.notifier.tokens import UnsubscribeTokens, unsubscribe_url

logger = logging.getLogger(__name__)

CRASH_EXIT_CODE = 70


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


# ---- the consumer's side ----------------------------------------------------------------------


class DecisionRecorder:
    """Handles one decoded `match-decisions` event. Approved: the match is recorded in the ledger
    (durable once this returns, so the offset may be committed); a replay records nothing."""

    def __init__(
        self,
        ledger: RedisDeliveryLedger,
        clock: Callable[[], float] = time.time,
        on_recorded: Callable[[], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.on_recorded = on_recorded
        self.counts: Counter[str] = Counter()

    def handle(self, envelope: events.Envelope) -> str:
        payload = envelope.payload
        if envelope.event_type == events.MATCH_REJECTED:
            logger.info("rejected match: nothing to send", extra={"pair": payload.get("pair_id")})
            outcome = "ignored"
        elif envelope.event_type != events.MATCH_APPROVED:
            logger.info(
                "event of no interest to the notifier", extra={"event_type": envelope.event_type}
            )
            outcome = "ignored"
        else:
            new = self.ledger.record_match(
                payload["pair_id"], envelope.event_id, payload, self.clock()
            )
            outcome = "recorded" if new else "duplicate"
            logger.info(
                "approved match recorded" if new else "approved match seen before: nothing to do",
                extra={"pair": payload["pair_id"], "event_id": envelope.event_id},
            )
            if new and self.on_recorded is not None:
                self.on_recorded()
        self.counts[outcome] += 1
        return outcome


# ---- the worker's side ------------------------------------------------------------------------


class ProfilesView:
    """What the profiles service said during one worker pass: a match's deliveries read the same
    organisations once, not once per recipient. Errors are not remembered."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._memo: dict[tuple[str, str], Any] = {}

    def _get(self, kind: str, key: str) -> Any:
        if (kind, key) not in self._memo:
            self._memo[(kind, key)] = getattr(self.client, kind)(key)
        return self._memo[(kind, key)]

    def organisation(self, org_id: str) -> dict[str, Any] | None:
        return self._get("organisation", org_id)

    def contacts(self, org_id: str) -> list[dict[str, Any]] | None:
        return self._get("contacts", org_id)

    def coordinator(self, username: str) -> dict[str, Any] | None:
        return self._get("coordinator", username)

    def cluster_name(self, cluster_id: str) -> str:
        if not cluster_id:
            return ""
        cluster = self._get("cluster", cluster_id)
        return str((cluster or {}).get("name") or cluster_id)


class DeliveryStats:
    """Outcome counts of this process, for the periodic log line (counts and rates)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window: Counter[str] = Counter()
        self.total: Counter[str] = Counter()
        self._since = time.monotonic()

    def add(self, outcome: str) -> None:
        with self._lock:
            self._window[outcome] += 1
            self.total[outcome] += 1

    def take_window(self) -> tuple[Counter[str], float]:
        with self._lock:
            window, self._window = self._window, Counter()
            now = time.monotonic()
            elapsed, self._since = now - self._since, now
        return window, elapsed


def _shared_contacts(contacts: list[dict[str, Any]]) -> tuple[SharedContact, ...]:
    """The partner's contact persons who agreed to share their contact with approved partners
    (`share_contact` exactly true: a missing or odd value is no consent), with a usable address."""
    shared = []
    for contact in contacts:
        if contact.get("share_contact") is not True:
            continue
        try:
            address = safe_address(str(contact.get("name") or ""), str(contact.get("email") or ""))
        except InvalidAddress:
            continue
        shared.append(SharedContact(name=address.display_name, email=address.addr_spec))
    return tuple(shared)


class Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeliveryWorker:
    """Takes due matches and deliveries from the ledger and handles each once:
    a match is expanded into its deliveries; a delivery is checked, rendered and sent."""

    def __init__(
        self,
        *,
        ledger: RedisDeliveryLedger,
        profiles: Any,
        mailer: Any,
        tokens: UnsubscribeTokens,
        settings: NotifierSettings,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        stats: DeliveryStats | None = None,
        crash: Callable[[int], None] = os._exit,
    ) -> None:
        self.ledger = ledger
        self.profiles = profiles
        self.mailer = mailer
        self.tokens = tokens
        self.settings = settings
        self.name = name or f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self.rng = rng or random.Random()
        self.stats = stats or DeliveryStats()
        self.sender = settings.sender_address
        self._crash = crash
        self._last_recovery = 0.0
        self._stop: threading.Event | None = None

    # ---- the loop -----------------------------------------------------------------------------

    def run_once(self, limit: int = 50) -> int:
        """One pass over what is due now; how many matches and deliveries it handled."""
        now = self.clock()
        if now - self._last_recovery >= 1.0:
            self._last_recovery = now
            self.recover(now)
        view = ProfilesView(self.profiles)
        handled = 0
        for member in self.ledger.due(now, limit):
            if self._stop is not None and self._stop.is_set():
                break  # what is left stays due for the next process
            token = f"{self.name}:{uuid.uuid4().hex[:12]}"
            attempt = self.ledger.claim(member, token, self.clock())
            if not attempt:
                continue
            kind, _, ident = member.partition(":")
            if kind == "m":
                self._expand(ident, token, attempt, view)
            else:
                self._deliver(ident, token, attempt, view)
            handled += 1
        return handled

    def drain(self, max_passes: int = 100) -> int:
        """Passes until nothing is due right now."""
        total = 0
        for _ in range(max_passes):
            done = self.run_once()
            total += done
            if not done:
                break
        return total

    def run(self, stop: threading.Event, wake: threading.Event, report: bool = False) -> None:
        self._stop = stop
        poll_s = self.settings.poll_ms / 1000
        failures = 0
        last_report = time.monotonic()
        logger.info("delivery worker started", extra={"worker": self.name})
        while not stop.is_set():
            try:
                handled = self.run_once()
                failures = 0
            except Exception:
                failures += 1
                handled = 0
                logger.exception(
                    "delivery worker pass failed; will retry", extra={"worker": self.name}
                )
                if stop.wait(min(30.0, 0.5 * 2 ** min(failures, 6))):
                    break
            if report and time.monotonic() - last_report >= self.settings.stats_interval_s:
                last_report = time.monotonic()
                self.report()
            if not handled:
                wake.wait(poll_s)
                wake.clear()
        logger.info("delivery worker stopped", extra={"worker": self.name})

    def report(self) -> None:
        window, elapsed = self.stats.take_window()
        minutes = max(elapsed, 1e-9) / 60
        try:
            ledger = self.ledger.counts()
        except Exception:  # noqa: BLE001 - a log line must not stop the worker
            ledger = {}
        logger.info(
            "delivery stats",
            extra={
                "window_s": round(elapsed),
                **{
                    k: window.get(k, 0)
                    for k in ("sent", "retried", "failed", "skipped", "uncertain")
                },
                "sent_per_min": round(window.get("sent", 0) / minutes, 2),
                "backlog": ledger.get("backlog"),
                "inflight": ledger.get("inflight"),
                "uncertain_total": ledger.get("uncertain_now"),
                "sent_total": ledger.get("deliveries_sent"),
            },
        )

    def recover(self, now: float) -> None:
        for member, state in self.ledger.recover_stale(now, self.settings.claim_lease_s):
            if state == domain.UNCERTAIN:
                self.stats.add("uncertain")
                logger.warning(
                    "delivery left in `sending` by a stopped worker is now uncertain; "
                    "it is NOT resent. "
                    "An operator can check the mail server's log and release it",
                    extra={"delivery": member.partition(":")[2]},
                )
            else:
                logger.info(
                    "stale claim returned to pending", extra={"member": member, "state": state}
                )

    # ---- matches ------------------------------------------------------------------------------

    def _expand(self, pair_id: str, token: str, attempt: int, view: ProfilesView) -> None:
        member = self.ledger.match_member(pair_id)
        match = self.ledger.match(pair_id)
        payload = (match or {}).get("payload") or {}
        sides = {
            "a": (payload.get("org_a"), payload.get("org_b")),
            "b": (payload.get("org_b"), payload.get("org_a")),
        }
        try:
            orgs = {side: view.organisation(own) for side, (own, _) in sides.items()}
            contacts = {
                side: view.contacts(sides[side][0]) if orgs[side] else None for side in sides
            }
        except ProfilesUnavailable as exc:
            delay = domain.retry_delay(
                attempt, self.settings.retry_base_s, self.settings.retry_max_s, self.rng
            )
            now = self.clock()
            self.ledger.transition(
                member,
                token,
                domain.MATCH_RETRY,
                now,
                due_at=now + delay,
                counter="matches_retried",
                fields={"error": str(exc)[:500]},
            )
            logger.warning(
                "profiles unavailable; match will be expanded later",
                extra={"pair": pair_id, "retry_in_s": round(delay, 1), "error": str(exc)},
            )
            return
        deleted = sorted(
            sides[side][0] for side in sides if orgs[side] is None or contacts[side] is None
        )
        deliveries = []
        for side, (own, partner) in sides.items():
            for contact in contacts[side] or []:
                address = contact.get("email")
                if not isinstance(address, str) or "@" not in address:
                    continue
                deliveries.append(
                    NewDelivery(
                        id=domain.delivery_id(pair_id, address),
                        org_id=own,
                        partner_id=partner,
                        side=side,
                        recipient=domain.recipient_key(address),
                        state=domain.SKIPPED if deleted else domain.PENDING,
                        reason=domain.PARTNER_DELETED if deleted else "",
                    )
                )
        final = domain.MATCH_SKIPPED if deleted else domain.MATCH_EXPANDED
        reason = f"{domain.ORGANISATION_DELETED}:{','.join(deleted)}" if deleted else ""
        created = self.ledger.expand(pair_id, token, self.clock(), deliveries, final, reason)
        if created < 0:
            logger.warning("lost the claim on a match while expanding it", extra={"pair": pair_id})
            return
        logger.info(
            "approved match expanded"
            if not deleted
            else "approved match skipped: organisation deleted",
            extra={
                "pair": pair_id,
                "deliveries": len(deliveries),
                "new": created,
                "deleted": ",".join(deleted),
            },
        )

    # ---- deliveries ---------------------------------------------------------------------------

    def _deliver(self, delivery_id: str, token: str, attempt: int, view: ProfilesView) -> None:
        member = self.ledger.delivery_member(delivery_id)
        delivery = self.ledger.delivery(delivery_id) or {}
        match = self.ledger.match(delivery.get("pair_id", "")) or {}
        log = {
            "delivery": delivery_id,
            "pair": delivery.get("pair_id"),
            "org": delivery.get("org_id"),
            "attempt": attempt,
        }
        try:
            msg, recipient, language = self._prepare(
                delivery_id, delivery, match.get("payload") or {}, view
            )
        except Skip as skip:
            self.ledger.transition(
                member,
                token,
                domain.SKIPPED,
                self.clock(),
                counter="deliveries_skipped",
                fields={"reason": skip.reason},
            )
            self.stats.add("skipped")
            logger.info("delivery skipped", extra={**log, "reason": skip.reason})
            return
        except UnsafeHeader as exc:
            reason = (
                domain.INVALID_ADDRESS if isinstance(exc, InvalidAddress) else domain.UNSAFE_HEADER
            )
            self._failed(member, token, reason, str(exc), log)
            return
        except ProfilesUnavailable as exc:
            self._temporary(member, token, attempt, f"profiles: {exc}", log)
            return
        except Exception as exc:  # noqa: BLE001 - nothing was sent: record it and try later
            logger.exception("could not prepare a delivery", extra=log)
            self._temporary(member, token, attempt, f"{type(exc).__name__}: {exc}", log)
            return

        def before_data() -> bool:
            return self.ledger.transition(member, token, domain.SENDING, self.clock())

        def on_accepted(reply: str) -> None:
            # The SMTP server has the message: record that before anything else.
            if self.settings.test_crash_after_send == "before_ledger":
                self._crash(CRASH_EXIT_CODE)
            recorded = self.ledger.transition(
                member,
                token,
                domain.SENT,
                self.clock(),
                counter="deliveries_sent",
                fields={
                    "sent_at": _iso(self.clock()),
                    "smtp_reply": reply,
                    "message_id": msg["Message-ID"],
                    "language": language,
                    "error": "",
                },
            )
            if self.settings.test_crash_after_send == "after_ledger":
                self._crash(CRASH_EXIT_CODE)
            if not recorded:
                logger.error(
                    "SMTP accepted a message but the ledger no longer held its claim", extra=log
                )

        try:
            self.mailer.send(msg, self.sender.addr_spec, recipient, before_data, on_accepted)
        except ClaimLost:
            logger.warning("another worker took the delivery over; not sending", extra=log)
            return
        except SmtpFailure as exc:
            if exc.permanent:
                self._failed(member, token, "smtp_refused", f"{exc.code} {exc.detail}", log)
            else:
                self._temporary(member, token, attempt, f"{exc.code or '-'} {exc.detail}", log)
            return
        except SmtpOutcomeUnknown as exc:
            self.ledger.transition(
                member,
                token,
                domain.UNCERTAIN,
                self.clock(),
                counter="deliveries_uncertain",
                fields={"error": str(exc)[:500]},
            )
            self.stats.add("uncertain")
            logger.warning(
                "the SMTP server may or may not have taken the message; marked uncertain, not "
                "resent",
                extra={**log, "error": str(exc)},
            )
            return
        self.stats.add("sent")
        logger.info("delivery sent", extra={**log, "language": language})

    def _prepare(
        self,
        delivery_id: str,
        delivery: Mapping[str, str],
        payload: Mapping[str, Any],
        view: ProfilesView,
    ) -> tuple[Any, str, str]:
        """The message for one delivery, from what profiles says now; Skip if it must not go."""
        org_id, partner_id, side = (
            delivery.get("org_id", ""),
            delivery.get("partner_id", ""),
            delivery.get("side"),
        )
        org = view.organisation(org_id)
        if org is None:
            raise Skip(domain.ORGANISATION_DELETED)
        partner = view.organisation(partner_id)
        if partner is None:
            raise Skip(domain.PARTNER_DELETED)
        contacts = view.contacts(org_id)
        if contacts is None:
            raise Skip(domain.ORGANISATION_DELETED)
        contact = next(
            (
                c
                for c in contacts
                if isinstance(c.get("email"), str)
                and domain.recipient_key(c["email"]) == delivery.get("recipient")
            ),
            None,
        )
        if contact is None:
            raise Skip(domain.CONTACT_REMOVED)
        if contact.get("consent") is not True:
            raise Skip(domain.NO_CONSENT)
        address = contact["email"].strip()
        if self.ledger.is_suppressed(address):
            raise Skip(domain.UNSUBSCRIBED)

        language = email_language(contact.get("language"), org.get("language"))
        recipient = safe_address(contact.get("name") or "", address)
        own_cluster = org.get("cluster_id")
        coordinators, reply_to = [], []
        for decision in payload.get("decisions") or []:
            if decision.get("decision") != "approve":
                continue
            found = view.coordinator(str(decision.get("coordinator") or ""))
            if not found or not found.get("email"):
                continue
            try:
                address_of_coordinator = safe_address(found.get("name") or "", str(found["email"]))
            except InvalidAddress:
                continue
            cluster_id = str(found.get("cluster_id") or decision.get("cluster_id") or "")
            coordinators.append(
                Coordinator(
                    name=str(found.get("name") or found.get("username") or ""),
                    email=address_of_coordinator.addr_spec,
                    cluster=view.cluster_name(cluster_id),
                )
            )
            if cluster_id == own_cluster:
                reply_to.append(address_of_coordinator)

        partner_offers, own_offers, shared = reasons_for_side(
            payload.get("reasons") or [], side or "a", language
        )
        partner_contacts = _shared_contacts(view.contacts(partner_id) or [])
        token = self.tokens.sign(address, org_id, language)
        url = unsubscribe_url(self.settings.public_url, token)
        content = PartnershipEmail(
            recipient_name=str(contact.get("name") or ""),
            organisation_name=str(org.get("name") or ""),
            partner=PartnerProfile(
                name=str(partner.get("name") or ""),
                country=str(partner.get("country") or ""),
                cluster=view.cluster_name(str(partner.get("cluster_id") or "")),
                language=str(partner.get("language") or ""),
                capabilities=str(partner.get("capabilities") or ""),
                goals=str(partner.get("goals") or ""),
                website=partner.get("website") or None,
            ),
            unsubscribe_url=url,
            they_offer_you_seek=partner_offers,
            you_offer_they_seek=own_offers,
            shared=shared,
            coordinators=tuple(coordinators),
            partner_contacts=partner_contacts,
            partnerships_url=f"{self.settings.profiles_public_url}/partnerships",
        )
        rendered = render_partnership_email(content, language)
        msg = build_message(
            rendered=rendered,
            sender=self.sender,
            recipient=recipient,
            reply_to=reply_to,
            message_id=domain.message_id(delivery_id, self.sender.domain),
            unsubscribe_url=url,
            delivery_id=delivery_id,
        )
        return msg, recipient.addr_spec, rendered.language

    # ---- outcomes -----------------------------------------------------------------------------

    def _temporary(
        self, member: str, token: str, attempt: int, detail: str, log: Mapping[str, Any]
    ) -> None:
        if attempt >= self.settings.max_attempts:
            self._failed(member, token, domain.ATTEMPTS_EXHAUSTED, detail, log)
            return
        delay = domain.retry_delay(
            attempt, self.settings.retry_base_s, self.settings.retry_max_s, self.rng
        )
        now = self.clock()
        moved = self.ledger.transition(
            member,
            token,
            domain.RETRY,
            now,
            due_at=now + delay,
            counter="deliveries_retried",
            fields={"error": detail[:500], "next_at": _iso(now + delay)},
        )
        if moved:
            self.stats.add("retried")
        logger.warning(
            "delivery failed for now; will retry",
            extra={**log, "retry_in_s": round(delay, 2), "error": detail},
        )

    def _failed(
        self, member: str, token: str, reason: str, detail: str, log: Mapping[str, Any]
    ) -> None:
        moved = self.ledger.transition(
            member,
            token,
            domain.FAILED,
            self.clock(),
            counter="deliveries_failed",
            fields={"reason": reason, "error": detail[:500]},
        )
        if moved:
            self.stats.add("failed")
        logger.warning("delivery failed for good", extra={**log, "reason": reason, "error": detail})
