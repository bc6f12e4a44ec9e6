"""The notifier's use cases: record approved matches and coordinators' notices (the consumer's side)
and turn each into one email per (match or notice, recipient), sent exactly once (the delivery
worker's side), and make each cluster's digest of new suggestions once per period. All I/O goes through
the adapters it is given: the ledger, the profiles client, the mailer."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from partnermatch import events, vocabulary
from partnermatch.smtp import ClaimLost, SmtpFailure, SmtpOutcomeUnknown
from services.notifier import domain
from services.notifier.adapters.profiles_client import ProfilesUnavailable
from services.notifier.adapters.redis_ledger import NewDelivery, RedisDeliveryLedger
from services.notifier.config import NotifierSettings
from services.notifier.message import InvalidAddress, UnsafeHeader, build_message, safe_address
from services.notifier.render import (
    Coordinator,
    DecisionNotice,
    DigestEmail,
    PartnerProfile,
    PartnershipEmail,
    SharedContact,
    email_language,
    reasons_for_side,
    render_decision_notice,
    render_digest_email,
    render_partnership_email,
)
from services.notifier.tokens import UnsubscribeTokens, unsubscribe_url

logger = logging.getLogger(__name__)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


# ---- the consumer's side ----------------------------------------------------------------------


class DecisionRecorder:
    """Handles one decoded event of `match-decisions` or `matches`. Approved: the match is recorded
    in the ledger (durable once this returns, so the offset may be committed); a replay records
    nothing. A decided pair one cluster had approved before the other decided: a notice to that
    cluster's coordinators. Suggested and withdrawn pairs: what the coordinators' digests count."""

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
        if envelope.event_type == events.MATCH_SUGGESTED:
            self.ledger.note_suggested(payload["pair_id"], (payload["cluster_a"], payload["cluster_b"]), self.clock())
            outcome = "suggested"
        elif envelope.event_type == events.MATCH_WITHDRAWN:
            self.ledger.note_gone(payload["pair_id"], (payload["cluster_a"], payload["cluster_b"]), decided=False)
            outcome = "withdrawn"
        elif envelope.event_type not in (events.MATCH_APPROVED, events.MATCH_REJECTED):
            logger.info("event of no interest to the notifier", extra={"event_type": envelope.event_type})
            outcome = "ignored"
        else:
            self.ledger.note_gone(payload["pair_id"], (payload["cluster_a"], payload["cluster_b"]), decided=True)
            self._record_decision_notices(envelope)
            outcome = self._record_match(envelope)
        self.counts[outcome] += 1
        return outcome

    # The events handle_run takes in runs (the consumer's BatchHandler).
    RUN_TYPES = frozenset({events.MATCH_SUGGESTED, events.MATCH_WITHDRAWN})

    def handle_run(self, envelopes: Sequence[events.Envelope]) -> None:
        """A run of suggestions and withdrawals, in order: what handle() does with each, noted in
        the ledger in one round trip (RedisDeliveryLedger.note_all), durable once this returns."""
        now = self.clock()
        notes, outcomes = [], Counter[str]()
        for envelope in envelopes:
            payload = envelope.payload
            clusters = (payload["cluster_a"], payload["cluster_b"])
            if envelope.event_type == events.MATCH_SUGGESTED:
                notes.append(self.ledger.suggested_note(payload["pair_id"], clusters, now))
                outcomes["suggested"] += 1
            elif envelope.event_type == events.MATCH_WITHDRAWN:
                notes.append(self.ledger.gone_note(payload["pair_id"], clusters, decided=False))
                outcomes["withdrawn"] += 1
            else:
                raise ValueError(f"not an event of a run: {envelope.event_type}")
        self.ledger.note_all(notes)
        self.counts.update(outcomes)

    def _record_match(self, envelope: events.Envelope) -> str:
        payload = envelope.payload
        if envelope.event_type == events.MATCH_REJECTED:
            logger.info("rejected match: nothing to send", extra={"pair": payload.get("pair_id")})
            return "ignored"
        new = self.ledger.record_match(payload["pair_id"], envelope.event_id, payload, self.clock())
        logger.info(
            "approved match recorded" if new else "approved match seen before: nothing to do",
            extra={"pair": payload["pair_id"], "event_id": envelope.event_id},
        )
        if new and self.on_recorded is not None:
            self.on_recorded()
        return "recorded" if new else "duplicate"

    def _record_decision_notices(self, envelope: events.Envelope) -> None:
        payload = envelope.payload
        pair_id = payload["pair_id"]
        for cluster_id, final in domain.other_side_decisions(envelope.event_type, payload.get("decisions") or []):
            notice = {
                "kind": domain.DECISIONS,
                "cluster_id": cluster_id,
                **{k: payload[k] for k in ("pair_id", "org_a", "org_b", "cluster_a", "cluster_b")},
                "decision": final.get("decision"),
                "decided_by_cluster": final.get("cluster_id"),
                "reason_code": final.get("reason_code"),
            }
            notice_id = domain.decided_notice_id(pair_id, cluster_id)
            new = self.ledger.record_match(
                notice_id, envelope.event_id, notice, self.clock(), counter="notices_recorded"
            )
            self.counts["notices" if new else "notices_seen"] += 1
            if new:
                logger.info(
                    "the other side decided a pair this cluster approved: notice recorded",
                    extra={"pair": pair_id, "cluster": cluster_id, "decision": notice["decision"]},
                )
                if self.on_recorded is not None:
                    self.on_recorded()


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

    def cluster_coordinators(self, cluster_id: str) -> list[dict[str, Any]] | None:
        return self._get("cluster_coordinators", cluster_id)

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


def _by_recipient(people: list[dict[str, Any]], recipient: Any) -> dict[str, Any] | None:
    """The contact or coordinator a delivery was made for, found again by its address's key."""
    return next(
        (p for p in people if isinstance(p.get("email"), str) and domain.recipient_key(p["email"]) == recipient), None
    )


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
        self._last_recovery = 0.0
        self._stop: threading.Event | None = None

    # ---- the loop -----------------------------------------------------------------------------

    def run_once(self, limit: int = 50) -> int:
        """One pass over what is due now; how many matches and deliveries it handled."""
        now = self.clock()
        if now - self._last_recovery >= 1.0:
            self._last_recovery = now
            self.recover(now)
            self.take_digests(now)
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
                logger.exception("delivery worker pass failed; will retry", extra={"worker": self.name})
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
                **{k: window.get(k, 0) for k in ("sent", "retried", "failed", "skipped", "uncertain")},
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
                logger.info("stale claim returned to pending", extra={"member": member, "state": state})

    def take_digests(self, now: float) -> int:
        """Record the digest of every cluster whose period has turned and for which new suggestions
        wait (the ledger makes each cluster's digest of a period once, whoever asks)."""
        interval = self.settings.digest_interval_s
        period = domain.digest_period(now, interval)
        made = 0
        for cluster_id in self.ledger.clusters_with_new_suggestions():
            count = self.ledger.take_digest(cluster_id, period, period * interval, now)
            if count:
                made += 1
                logger.info(
                    "digest of new suggestions recorded",
                    extra={"cluster": cluster_id, "period": period, "new": count},
                )
        return made

    # ---- matches and coordinators' notices ----------------------------------------------------

    def _expand(self, pair_id: str, token: str, attempt: int, view: ProfilesView) -> None:
        match = self.ledger.match(pair_id)
        payload = (match or {}).get("payload") or {}
        if payload.get("kind") in domain.COORDINATOR_KINDS:
            self._expand_notice(pair_id, payload, token, attempt, view)
            return
        # The ledger keeps a match.decided event's payload, validated: both organisations are in it.
        sides = {
            "a": (str(payload["org_a"]), str(payload["org_b"])),
            "b": (str(payload["org_b"]), str(payload["org_a"])),
        }
        try:
            orgs = {side: view.organisation(own) for side, (own, _) in sides.items()}
            contacts = {side: view.contacts(sides[side][0]) if orgs[side] else None for side in sides}
        except ProfilesUnavailable as exc:
            self._expand_later(pair_id, token, attempt, exc)
            return
        deleted = sorted(sides[side][0] for side in sides if orgs[side] is None or contacts[side] is None)
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
            "approved match expanded" if not deleted else "approved match skipped: organisation deleted",
            extra={
                "pair": pair_id,
                "deliveries": len(deliveries),
                "new": created,
                "deleted": ",".join(deleted),
            },
        )

    def _expand_later(self, pair_id: str, token: str, attempt: int, exc: ProfilesUnavailable) -> None:
        delay = domain.retry_delay(attempt, self.settings.retry_base_s, self.settings.retry_max_s, self.rng)
        now = self.clock()
        self.ledger.transition(
            self.ledger.match_member(pair_id),
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

    def _expand_notice(
        self,
        notice_id: str,
        payload: Mapping[str, Any],
        token: str,
        attempt: int,
        view: ProfilesView,
    ) -> None:
        """A coordinators' notice becomes one delivery per coordinator of its cluster (an address
        shared by two coordinators gets one)."""
        cluster_id = str(payload.get("cluster_id") or "")
        try:
            coordinators = view.cluster_coordinators(cluster_id)
        except ProfilesUnavailable as exc:
            self._expand_later(notice_id, token, attempt, exc)
            return
        deliveries = {}
        for coordinator in coordinators or []:
            address = coordinator.get("email")
            if not isinstance(address, str) or "@" not in address:
                continue
            delivery = domain.delivery_id(notice_id, address)
            deliveries[delivery] = NewDelivery(
                id=delivery,
                org_id=cluster_id,
                partner_id="",
                side="coordinator",
                recipient=domain.recipient_key(address),
            )
        final, reason = (
            (domain.MATCH_EXPANDED, "") if coordinators is not None else (domain.MATCH_SKIPPED, domain.CLUSTER_DELETED)
        )
        created = self.ledger.expand(notice_id, token, self.clock(), list(deliveries.values()), final, reason)
        if created < 0:
            logger.warning("lost the claim on a notice while expanding it", extra={"notice": notice_id})
            return
        logger.info(
            "coordinators' notice expanded",
            extra={"notice": notice_id, "deliveries": len(deliveries), "new": created, "reason": reason},
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
            msg, recipient, language = self._prepare(delivery_id, delivery, match.get("payload") or {}, view)
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
            reason = domain.INVALID_ADDRESS if isinstance(exc, InvalidAddress) else domain.UNSAFE_HEADER
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
            if not recorded:
                logger.error("SMTP accepted a message but the ledger no longer held its claim", extra=log)

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
                "the SMTP server may or may not have taken the message; marked uncertain, not resent",
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
        if payload.get("kind") in domain.COORDINATOR_KINDS:
            return self._prepare_for_coordinator(delivery_id, delivery, payload, view)
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
        contact = _by_recipient(contacts, delivery.get("recipient"))
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

        partner_offers, own_offers, shared = reasons_for_side(payload.get("reasons") or [], side or "a", language)
        partner_contacts = _shared_contacts(view.contacts(partner_id) or [])
        token = self.tokens.sign(address, org_id, language)
        url = unsubscribe_url(self.settings.public_url, token)
        content = PartnershipEmail(
            recipient_name=str(contact.get("name") or ""),
            organisation_name=str(org.get("name") or ""),
            partner=PartnerProfile(
                name=str(partner.get("name") or ""),
                country=vocabulary.country_name(language, str(partner.get("country") or "")),
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

    def _prepare_for_coordinator(
        self,
        delivery_id: str,
        delivery: Mapping[str, str],
        payload: Mapping[str, Any],
        view: ProfilesView,
    ) -> tuple[Any, str, str]:
        """A digest or decision notice to one coordinator of the cluster, found again by address;
        Skip if they left the cluster or unsubscribed from this kind."""
        kind = str(payload["kind"])
        cluster_id = str(payload.get("cluster_id") or "")
        coordinators = view.cluster_coordinators(cluster_id)
        if coordinators is None:
            raise Skip(domain.CLUSTER_DELETED)
        coordinator = _by_recipient(coordinators, delivery.get("recipient"))
        if coordinator is None:
            raise Skip(domain.COORDINATOR_REMOVED)
        address = coordinator["email"].strip()
        if self.ledger.is_suppressed(address, kind):
            raise Skip(domain.UNSUBSCRIBED)
        language = email_language(coordinator.get("language"))
        recipient = safe_address(str(coordinator.get("name") or ""), address)
        url = unsubscribe_url(self.settings.public_url, self.tokens.sign(address, cluster_id, language, kind))
        name = str(coordinator.get("name") or coordinator.get("username") or "")
        if kind == domain.DIGEST:
            rendered = render_digest_email(
                DigestEmail(
                    recipient_name=name,
                    cluster=view.cluster_name(cluster_id),
                    new_suggestions=int(payload.get("new_suggestions") or 0),
                    queue_url=f"{self.settings.review_public_url}/queue",
                    unsubscribe_url=url,
                ),
                language,
            )
        else:
            own_is_a = payload.get("cluster_a") == cluster_id
            own_id, partner_id = (
                (payload.get("org_a"), payload.get("org_b"))
                if own_is_a
                else (payload.get("org_b"), payload.get("org_a"))
            )
            own, partner = view.organisation(str(own_id)), view.organisation(str(partner_id))
            if own is None:
                raise Skip(domain.ORGANISATION_DELETED)
            if partner is None:
                raise Skip(domain.PARTNER_DELETED)
            pair = urllib.parse.quote(str(payload.get("pair_id") or ""), safe="")
            rendered = render_decision_notice(
                DecisionNotice(
                    recipient_name=name,
                    cluster=view.cluster_name(cluster_id),
                    other_cluster=view.cluster_name(str(payload.get("decided_by_cluster") or "")),
                    organisation_name=str(own.get("name") or ""),
                    partner_name=str(partner.get("name") or ""),
                    approved=payload.get("decision") == "approve",
                    reason_code=payload.get("reason_code"),
                    pair_url=f"{self.settings.review_public_url}/pairs/{pair}",
                    unsubscribe_url=url,
                ),
                language,
            )
        msg = build_message(
            rendered=rendered,
            sender=self.sender,
            recipient=recipient,
            reply_to=[],
            message_id=domain.message_id(delivery_id, self.sender.domain),
            unsubscribe_url=url,
            delivery_id=delivery_id,
        )
        return msg, recipient.addr_spec, rendered.language

    # ---- outcomes -----------------------------------------------------------------------------

    def _temporary(self, member: str, token: str, attempt: int, detail: str, log: Mapping[str, Any]) -> None:
        if attempt >= self.settings.max_attempts:
            self._failed(member, token, domain.ATTEMPTS_EXHAUSTED, detail, log)
            return
        delay = domain.retry_delay(attempt, self.settings.retry_base_s, self.settings.retry_max_s, self.rng)
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

    def _failed(self, member: str, token: str, reason: str, detail: str, log: Mapping[str, Any]) -> None:
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
