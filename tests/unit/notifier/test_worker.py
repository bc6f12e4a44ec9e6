"""The delivery worker's decisions, with a fake profiles service and a fake SMTP server over the
real ledger: who gets an email, who is skipped and why, what is retried, what is never resent."""

from __future__ import annotations

import random
from typing import NoReturn

import pytest

from partnermatch import events
from partnermatch.smtp import SmtpFailure, SmtpOutcomeUnknown
from services.notifier import domain
from services.notifier.adapters.redis_ledger import RedisDeliveryLedger
from services.notifier.config import NotifierSettings
from services.notifier.services import DecisionRecorder, DeliveryWorker
from services.notifier.tokens import UnsubscribeTokens
from tests.unit.notifier.fakes import (
    FakeMailer,
    FakeProfiles,
    MailerThatDiesAfterAccept,
    contact,
    decided_payload,
    org,
)

PAIR = "org_a~org_b"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Crashed(BaseException):
    """Stands in for os._exit: nothing after it runs."""


def crash() -> NoReturn:
    raise Crashed


@pytest.fixture
def world(redis_client):
    clock = Clock()
    profiles = FakeProfiles(
        orgs={
            "org_a": org(
                "org_a",
                "pl-silesia-ict",
                "Śląski Klaster",
                "pl",
                [
                    contact("Anna Kowalska", "anna.k@example.pl", "pl"),
                    contact("No Consent", "nc@example.pl", "pl", consent=False),
                ],
            ),
            "org_b": org(
                "org_b",
                "rs-vojvodina-ict",
                "Klaster IKT",
                "sr",
                [contact("Јелена", "jelena@example.rs", "sr-Cyrl")],
            ),
        },
        coordinators={
            "anna": {
                "username": "anna",
                "cluster_id": "pl-silesia-ict",
                "name": "Anna Nowak",
                "email": "anna@example.org",
            },
            "marko": {
                "username": "marko",
                "cluster_id": "rs-vojvodina-ict",
                "name": "Marko Marković",
                "email": "marko@example.org",
            },
        },
        clusters={
            "pl-silesia-ict": {"name": "Silesia ICT"},
            "rs-vojvodina-ict": {"name": "Vojvodina ICT"},
        },
    )
    ledger = RedisDeliveryLedger(redis_client)
    mailer = FakeMailer()

    def make_worker(mailer=mailer, **settings_over):
        values = {
            "redis_url": "unused",
            "kafka_bootstrap": "unused",
            "retry_base_s": 10,
            "retry_max_s": 100,
            "max_attempts": 3,
            "claim_lease_s": 30,
            "secret_key": "k",
            "public_url": "https://n.example",
        }
        values.update(settings_over)
        return DeliveryWorker(
            ledger=ledger,
            profiles=profiles,
            mailer=mailer,
            tokens=UnsubscribeTokens("k"),
            settings=NotifierSettings(**values),
            name="w",
            clock=clock,
            rng=random.Random(1),
        )

    class World:
        pass

    w = World()
    w.clock, w.profiles, w.ledger, w.mailer, w.make_worker = (
        clock,
        profiles,
        ledger,
        mailer,
        make_worker,
    )
    w.worker = make_worker()
    return w


def approve(world, payload=None):
    envelope = events.new_event(events.MATCH_APPROVED, payload or decided_payload(), "test")
    return DecisionRecorder(world.ledger, clock=world.clock).handle(events.decode(events.encode(envelope)))


def states(world):
    return {d["recipient"]: (d["state"], d.get("reason", "")) for d in world.ledger.deliveries_of(PAIR)}


def key(email):
    return domain.recipient_key(email)


def test_every_consenting_contact_of_both_organisations_gets_one_email_about_the_partner(world):
    assert approve(world) == "recorded"
    world.worker.drain()
    assert sorted(r for r, _ in world.mailer.sent) == ["anna.k@example.pl", "jelena@example.rs"]
    [polish] = world.mailer.to("anna.k@example.pl")
    assert str(polish["Subject"]) == "Zatwierdzone partnerstwo: Klaster IKT"
    assert polish["Reply-To"].addresses[0].addr_spec == "anna@example.org", "the reader's own coordinator"
    [serbian] = world.mailer.to("jelena@example.rs")
    assert str(serbian["Subject"]) == "Одобрено партнерство: Śląski Klaster"
    body = serbian.get_body(("plain",)).get_content()
    assert "Anna Nowak <anna@example.org> (Silesia ICT)" in body and "Marko Marković" in body
    assert states(world)[key("nc@example.pl")] == (domain.SKIPPED, domain.NO_CONSENT)
    assert world.ledger.counts()["deliveries_sent"] == 2


def test_a_replayed_approval_sends_nothing_more(world):
    approve(world)
    world.worker.drain()
    assert approve(world) == "duplicate"
    assert world.worker.drain() == 0
    assert len(world.mailer.sent) == 2


def test_a_rejected_match_is_ignored(world):
    envelope = events.new_event(events.MATCH_REJECTED, decided_payload(), "test")
    assert DecisionRecorder(world.ledger).handle(envelope) == "ignored"
    assert world.ledger.due(world.clock.now + 1) == []


def test_an_unsubscribed_contact_is_skipped(world):
    world.ledger.suppress("Jelena@example.rs", "org_b", "2026-01-01T00:00:00+00:00")
    approve(world)
    world.worker.drain()
    assert [r for r, _ in world.mailer.sent] == ["anna.k@example.pl"]
    assert states(world)[key("jelena@example.rs")] == (domain.SKIPPED, domain.UNSUBSCRIBED)


def test_consent_is_checked_when_sending_not_when_the_match_was_recorded(world):
    approve(world)
    world.worker.run_once()  # expands the match only
    world.profiles.orgs["org_b"]["contacts"][0]["consent"] = False
    world.worker.drain()
    assert states(world)[key("jelena@example.rs")] == (domain.SKIPPED, domain.NO_CONSENT)


def test_a_deleted_organisation_gets_nothing_and_its_partner_gets_nothing_about_it(world):
    del world.profiles.orgs["org_b"]
    approve(world)
    world.worker.drain()
    assert world.mailer.sent == []
    match = world.ledger.match(PAIR)
    assert match["state"] == domain.MATCH_SKIPPED and match["reason"] == "organisation_deleted:org_b"
    assert states(world)[key("anna.k@example.pl")] == (domain.SKIPPED, domain.PARTNER_DELETED)


def test_an_organisation_deleted_after_expansion_is_skipped_at_send_time(world):
    approve(world)
    world.worker.run_once()
    del world.profiles.orgs["org_a"]
    world.worker.drain()
    assert states(world)[key("anna.k@example.pl")] == (domain.SKIPPED, domain.ORGANISATION_DELETED)
    assert states(world)[key("jelena@example.rs")] == (domain.SKIPPED, domain.PARTNER_DELETED)


def test_profiles_being_down_delays_the_match_without_losing_it(world):
    world.profiles.down = True
    approve(world)
    world.worker.drain()
    assert world.ledger.match(PAIR)["state"] == domain.MATCH_RETRY
    world.profiles.down = False
    assert world.worker.drain() == 0, "not due yet"
    world.clock.now += 10
    world.worker.drain()
    assert len(world.mailer.sent) == 2


def test_a_temporary_smtp_failure_is_retried_later_with_backoff_and_sent_once(world):
    world.mailer.failures = [("after_data", SmtpFailure("temporary", 451, "try later"))]
    approve(world, decided_payload())
    del world.profiles.orgs["org_a"]["contacts"][0]  # one recipient: jelena
    world.worker.drain()
    [(recipient, (state, _))] = [(r, s) for r, s in states(world).items() if s[0] != domain.SKIPPED]
    assert state == domain.RETRY
    due_at = world.ledger.next_due_at()
    assert 5 <= due_at - world.clock.now <= 10
    world.clock.now = due_at
    world.worker.drain()
    assert [r for r, _ in world.mailer.sent] == ["jelena@example.rs"]
    delivery = world.ledger.delivery(domain.delivery_id(PAIR, "jelena@example.rs"))
    assert delivery["state"] == domain.SENT and delivery["attempts"] == "2"


def test_a_permanent_smtp_failure_is_recorded_and_not_retried(world):
    world.mailer.failures = [("before_data", SmtpFailure("permanent", 550, "no such mailbox"))]
    approve(world)
    world.worker.drain()
    world.clock.now += 10_000
    world.worker.drain()
    failed = [d for d in world.ledger.deliveries_of(PAIR) if d["state"] == domain.FAILED]
    assert len(failed) == 1 and failed[0]["reason"] == "smtp_refused" and "550" in failed[0]["error"]
    assert len(world.mailer.sent) == 1, "the other recipient still got theirs"


def test_temporary_failures_stop_after_the_last_attempt(world):
    world.mailer.failures = [("before_data", SmtpFailure("temporary", 421, "busy"))] * 3
    del world.profiles.orgs["org_a"]["contacts"][0]
    approve(world)
    for _ in range(4):
        world.worker.drain()
        world.clock.now += 1000
    delivery = world.ledger.delivery(domain.delivery_id(PAIR, "jelena@example.rs"))
    assert delivery["state"] == domain.FAILED and delivery["reason"] == domain.ATTEMPTS_EXHAUSTED
    assert delivery["attempts"] == "3"


def test_no_reply_to_the_message_body_is_uncertain_and_never_resent(world):
    world.mailer.failures = [("after_data", SmtpOutcomeUnknown("timed out"))]
    del world.profiles.orgs["org_a"]["contacts"][0]
    approve(world)
    world.worker.drain()
    world.clock.now += 10_000
    world.worker.drain()
    delivery = world.ledger.delivery(domain.delivery_id(PAIR, "jelena@example.rs"))
    assert delivery["state"] == domain.UNCERTAIN
    assert world.mailer.sent == []


@pytest.mark.parametrize("crash_point, final", [("before_ledger", domain.UNCERTAIN), ("after_ledger", domain.SENT)])
def test_a_crash_right_after_the_smtp_accept_never_leads_to_a_second_email(world, crash_point, final):
    approve(world)
    with pytest.raises(Crashed):
        world.make_worker(MailerThatDiesAfterAccept(world.mailer, crash_point, crash)).drain()
    assert len(world.mailer.sent) == 1
    first = world.mailer.sent[0][0]
    # a new process: the match is replayed, the lease of the dead worker runs out
    assert approve(world) == "duplicate"
    world.clock.now += 31
    world.worker.drain()
    assert sorted(r for r, _ in world.mailer.sent) == ["anna.k@example.pl", "jelena@example.rs"]
    assert world.ledger.delivery(domain.delivery_id(PAIR, first))["state"] == final


def test_a_worker_that_lost_its_claim_does_not_send(world):
    approve(world)
    world.worker.run_once()
    member = f"d:{domain.delivery_id(PAIR, 'jelena@example.rs')}"
    original = world.ledger.transition

    def steal(m, token, to, now, **kw):
        if to == domain.SENDING:
            world.ledger.r.hset(world.ledger.delivery_key(m[2:]), "claim", "thief")
        return original(m, token, to, now, **kw)

    world.ledger.transition = steal
    world.worker.drain()
    assert "jelena@example.rs" not in [r for r, _ in world.mailer.sent]
    assert world.ledger.delivery(member[2:])["state"] == domain.CLAIMED


def test_an_address_that_cannot_be_put_in_a_header_fails_the_delivery(world):
    world.profiles.orgs["org_b"]["contacts"][0]["email"] = "jelena@example.rs\r\nBcc: x@evil.example"
    approve(world)
    world.worker.drain()
    failed = [d for d in world.ledger.deliveries_of(PAIR) if d["state"] == domain.FAILED]
    assert [d["reason"] for d in failed] == [domain.INVALID_ADDRESS]
    assert [r for r, _ in world.mailer.sent] == ["anna.k@example.pl"]
