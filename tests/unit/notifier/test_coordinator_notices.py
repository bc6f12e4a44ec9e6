"""Coordinators' notices, with a fake profiles service and a fake SMTP server over the real ledger:
a digest of new suggestions once per cluster and period, word that the other cluster decided a
pair theirs approved, in each coordinator's language, and unsubscribing from either or both."""

from __future__ import annotations

import random

import pytest

from partnermatch import events
from services.notifier import domain
from services.notifier.adapters.redis_ledger import RedisDeliveryLedger
from services.notifier.config import NotifierSettings
from services.notifier.entrypoints.web import create_app
from services.notifier.services import DecisionRecorder, DeliveryWorker
from services.notifier.tokens import UnsubscribeTokens
from tests.unit.notifier.fakes import FakeMailer, FakeProfiles, contact, decided_payload, org

SILESIA, VOJVODINA, TIRANA = "pl-silesia-ict", "rs-vojvodina-ict", "al-tirana-creative"
DAY = 86400.0
KEY = "k"


class Clock:
    def __init__(self) -> None:
        self.now = 20_000 * DAY + 3600.0  # 01:00 UTC of day 20000

    def __call__(self) -> float:
        return self.now


def coordinator(username, cluster, name, email, language=None):
    found = {"username": username, "cluster_id": cluster, "name": name, "email": email}
    return found | ({"language": language} if language else {})


@pytest.fixture
def world(redis_client):
    class World:
        pass

    w = World()
    w.clock = Clock()
    w.profiles = FakeProfiles(
        orgs={
            "org_a": org("org_a", SILESIA, "Śląski Klaster", "pl", [contact("A", "a@example.pl", "pl")]),
            "org_b": org("org_b", VOJVODINA, "Klaster IKT", "sr", [contact("B", "b@example.rs", "sr")]),
            "org_c": org("org_c", TIRANA, "Klasteri", "sq", [contact("C", "c@example.al", "sq")]),
        },
        coordinators={
            "anna": coordinator("anna", SILESIA, "Anna Nowak", "anna@example.org", "pl"),
            "piotr": coordinator("piotr", SILESIA, "Piotr Wiśniewski", "piotr@example.org"),
            "marko": coordinator("marko", VOJVODINA, "Marko Marković", "marko@example.org", "sr-Cyrl"),
        },
        clusters={
            SILESIA: {"name": "Śląski Klaster ICT"},
            VOJVODINA: {"name": "Klaster IKT Vojvodina"},
            TIRANA: {"name": "Klasteri Krijues"},
        },
    )
    w.ledger = RedisDeliveryLedger(redis_client)
    w.mailer = FakeMailer()
    w.recorder = DecisionRecorder(w.ledger, clock=w.clock)

    def worker():
        settings = NotifierSettings(
            redis_url="unused",
            kafka_bootstrap="unused",
            secret_key=KEY,
            public_url="https://n.example",
            review_public_url="https://review.example",
            digest_interval_s=DAY,
        )
        return DeliveryWorker(
            ledger=w.ledger,
            profiles=w.profiles,
            mailer=w.mailer,
            tokens=UnsubscribeTokens(KEY),
            settings=settings,
            name="w",
            clock=w.clock,
            rng=random.Random(1),
        )

    w.worker = worker

    def publish(event_type, payload):
        envelope = events.new_event(event_type, payload, "test")
        return w.recorder.handle(events.decode(events.encode(envelope)))

    w.publish = publish

    def suggest(org_a, org_b, cluster_a, cluster_b, score=0.5):
        return publish(
            events.MATCH_SUGGESTED,
            {
                "pair_id": events.pair_id(org_a, org_b),
                "org_a": org_a,
                "org_b": org_b,
                "cluster_a": cluster_a,
                "cluster_b": cluster_b,
                "score": score,
                "reasons": [],
            },
        )

    w.suggest = suggest

    def pass_at(now):
        w.clock.now = now
        return w.worker().drain()

    w.pass_at = pass_at
    return w


def sent_to(world, address):
    return world.mailer.to(address)


def body(msg):
    return msg.get_body(("plain",)).get_content()


# ---- who hears that the other side decided ------------------------------------------------------


def decision(cluster, verdict, at):
    return {
        "cluster_id": cluster,
        "coordinator": "x",
        "decision": verdict,
        "decided_at": at,
        "reason_code": None,
        "reason_text": None,
    }


def test_the_cluster_that_approved_first_hears_of_the_others_approval_or_rejection():
    first = decision("a", "approve", "2026-11-23T09:30:00+00:00")
    later_yes = decision("b", "approve", "2026-11-23T09:31:00.500+00:00")
    later_no = decision("b", "reject", "2026-11-23T09:31:00+00:00")
    assert domain.other_side_decisions(events.MATCH_APPROVED, [first, later_yes]) == [("a", later_yes)]
    assert domain.other_side_decisions(events.MATCH_REJECTED, [first, later_no]) == [("a", later_no)]


def test_nobody_hears_of_a_rejection_nobody_had_approved_nor_of_decisions_taken_at_one_instant():
    alone = decision("b", "reject", "2026-11-23T09:31:00+00:00")
    assert domain.other_side_decisions(events.MATCH_REJECTED, [alone]) == []
    same = [
        decision("a", "approve", "2026-11-23T09:30:00+00:00"),
        decision("b", "approve", "2026-11-23T09:30:00+00:00"),
    ]
    assert domain.other_side_decisions(events.MATCH_APPROVED, same) == []


def test_a_rejection_tells_the_coordinators_who_approved_once_with_the_reason_in_their_language(world):
    payload = decided_payload(
        b_decided_at="2026-11-23T10:00:00+00:00", b_decision="reject", b_reason_code="different_markets"
    )
    assert world.publish(events.MATCH_REJECTED, payload) == "ignored", "no partnership email"
    world.publish(events.MATCH_REJECTED, payload)  # a replay
    world.worker().drain()

    assert sorted(r for r, _ in world.mailer.sent) == ["anna@example.org", "piotr@example.org"]
    [anna] = sent_to(world, "anna@example.org")
    assert str(anna["Subject"]) == "Odrzucone przez Klaster IKT Vojvodina: Śląski Klaster – Klaster IKT"
    text = body(anna)
    assert "Powód: Inne rynki" in text
    assert "Free text" not in text, "a comment stays on the coordinators' page"
    assert "https://review.example/pairs/org_a~org_b" in text
    assert anna["Content-Language"] == "pl"
    [piotr] = sent_to(world, "piotr@example.org")
    assert piotr["Content-Language"] == "en", "no stored language: English"
    assert "Reason: Different markets" in body(piotr)
    assert anna["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert world.ledger.counts()["notices_recorded"] == 1
    assert "matches_recorded" not in world.ledger.counts(), "a notice is not an approved match"


def test_an_approval_after_ours_tells_our_coordinators_and_not_the_ones_who_approved_last(world):
    payload = decided_payload(b_decided_at="2026-11-23T10:00:00+00:00")
    assert world.publish(events.MATCH_APPROVED, payload) == "recorded"
    world.worker().drain()
    assert sent_to(world, "marko@example.org") == []
    [anna] = sent_to(world, "anna@example.org")
    assert str(anna["Subject"]) == "Zatwierdzone przez Klaster IKT Vojvodina: Śląski Klaster – Klaster IKT"
    assert sorted(r for r, _ in world.mailer.sent) == [
        "a@example.pl",
        "anna@example.org",
        "b@example.rs",
        "piotr@example.org",
    ]


def test_an_approval_published_again_after_its_records_expired_emails_nobody_again(world, redis_client):
    """The matcher publishes every decided pair again after the broker lost its topics, however
    old: the match's and its decision notice's ids outlive their records."""
    payload = decided_payload(b_decided_at="2026-11-23T10:00:00+00:00")
    assert world.publish(events.MATCH_APPROVED, payload) == "recorded"
    world.worker().drain()
    assert len(world.mailer.sent) == 4  # both organisations' contacts, and the first cluster's coordinators
    records = [k for k in redis_client.scan_iter(world.ledger.prefix + "*") if b":match:" in k or b":delivery:" in k]
    assert records and all(redis_client.ttl(k) > 0 for k in records), "all of them expire"
    redis_client.delete(*records)  # as they will, NOTIFIER_LEDGER_KEEP_DAYS later
    assert world.publish(events.MATCH_APPROVED, payload) == "duplicate"
    world.pass_at(world.clock.now + DAY)
    assert len(world.mailer.sent) == 4


def test_a_coordinator_who_left_the_cluster_or_unsubscribed_from_decisions_is_skipped(world):
    del world.profiles.coordinators["piotr"]
    world.ledger.suppress("anna@example.org", SILESIA, "2026-11-23T00:00:00+00:00", (domain.DECISIONS,))
    world.publish(
        events.MATCH_REJECTED,
        decided_payload(b_decided_at="2026-11-23T10:00:00+00:00", b_decision="reject", b_reason_code="other"),
    )
    world.worker().drain()
    assert world.mailer.sent == []
    assert world.ledger.counts()["deliveries_skipped"] == 1, "anna: unsubscribed"


# ---- the digest -------------------------------------------------------------------------------


def test_a_digest_goes_once_per_period_to_each_coordinator_of_a_cluster_with_new_suggestions(world):
    day = world.clock.now // DAY
    world.suggest("org_a", "org_b", SILESIA, VOJVODINA)
    world.suggest("org_a", "org_c", SILESIA, TIRANA)
    world.pass_at(world.clock.now + 60)
    assert world.mailer.sent == [], "the day's suggestions wait for the day to end"

    world.pass_at((day + 1) * DAY + 5)
    assert sorted(r for r, _ in world.mailer.sent) == ["anna@example.org", "marko@example.org", "piotr@example.org"], (
        "Tirana has no coordinator"
    )
    [anna] = sent_to(world, "anna@example.org")
    assert str(anna["Subject"]) == "Nowe propozycje partnerów dla Śląski Klaster ICT"
    assert ": 2." in body(anna) and "https://review.example/queue" in body(anna)
    [marko] = sent_to(world, "marko@example.org")
    assert marko["Content-Language"] == "sr-Cyrl" and ": 1." in body(marko)

    # Another pass, another worker (a restart), the same suggestions again: nothing more.
    world.suggest("org_a", "org_b", SILESIA, VOJVODINA, score=0.7)
    world.pass_at((day + 1) * DAY + 3600)
    world.pass_at((day + 2) * DAY + 5)
    assert len(world.mailer.sent) == 3
    assert world.ledger.counts()["digests_recorded"] == 3, "one per cluster, Tirana's to nobody"


def test_a_withdrawn_or_decided_suggestion_no_longer_waits_and_a_new_one_waits_for_the_next_day(world):
    day = world.clock.now // DAY
    world.suggest("org_a", "org_b", SILESIA, VOJVODINA)
    world.suggest("org_a", "org_c", SILESIA, TIRANA)
    world.publish(
        events.MATCH_WITHDRAWN,
        {
            "pair_id": "org_a~org_c",
            "org_a": "org_a",
            "org_b": "org_c",
            "cluster_a": SILESIA,
            "cluster_b": TIRANA,
            "reason": "rescored",
        },
    )
    world.publish(events.MATCH_REJECTED, decided_payload(b_decision="reject", b_reason_code="other"))
    world.suggest("org_a", "org_b", SILESIA, VOJVODINA)  # late, after its decision: not new
    world.pass_at((day + 1) * DAY + 5)
    assert world.mailer.sent == []

    world.suggest("org_a", "org_c", SILESIA, TIRANA)  # suggested again after its withdrawal
    world.pass_at((day + 1) * DAY + 7200)
    assert world.mailer.sent == [], "at most one digest a day: this one waits for the next"
    world.pass_at((day + 2) * DAY + 5)
    assert sorted(r for r, _ in world.mailer.sent) == ["anna@example.org", "piotr@example.org"]
    assert ": 1." in body(sent_to(world, "anna@example.org")[0])


def test_a_coordinator_unsubscribed_from_the_digest_still_hears_of_decisions(world):
    world.ledger.suppress("anna@example.org", SILESIA, "2026-11-23T00:00:00+00:00", (domain.DIGEST,))
    day = world.clock.now // DAY
    world.suggest("org_a", "org_c", SILESIA, TIRANA)
    world.pass_at((day + 1) * DAY + 5)
    assert [r for r, _ in world.mailer.sent] == ["piotr@example.org"]
    world.publish(
        events.MATCH_REJECTED,
        decided_payload(b_decided_at="2026-11-23T10:00:00+00:00", b_decision="reject", b_reason_code="other"),
    )
    world.worker().drain()
    assert len(sent_to(world, "anna@example.org")) == 1


def test_profiles_down_while_a_digest_is_expanded_retries_it_later(world):
    day = world.clock.now // DAY
    world.suggest("org_a", "org_c", SILESIA, TIRANA)
    world.profiles.down = True
    world.pass_at((day + 1) * DAY + 5)
    assert world.mailer.sent == []
    world.profiles.down = False
    world.pass_at((day + 1) * DAY + 3600)
    assert sorted(r for r, _ in world.mailer.sent) == ["anna@example.org", "piotr@example.org"]


# ---- unsubscribing ------------------------------------------------------------------------------


@pytest.fixture
def web(world):
    class Deps:
        ledger = world.ledger
        tokens = UnsubscribeTokens(KEY)

    settings = NotifierSettings(redis_url="unused", kafka_bootstrap="unused", secret_key=KEY)
    return create_app(settings, Deps()).test_client()


def test_a_digest_link_unsubscribes_from_digests_only_and_its_page_offers_every_coordinators_email(web, world):
    link = "/unsubscribe/" + UnsubscribeTokens(KEY).sign("anna@example.org", SILESIA, "en", domain.DIGEST)
    page = web.get(link).get_data(as_text=True)
    assert "Unsubscribe from the digest of new suggestions?" in page
    assert f'action="{link}?scope=all"' in page
    r = web.post(link, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert "no further digests" in r.get_data(as_text=True)
    assert world.ledger.is_suppressed("anna@example.org", domain.DIGEST)
    assert not world.ledger.is_suppressed("anna@example.org", domain.DECISIONS)
    assert not world.ledger.is_suppressed("anna@example.org"), "partnership emails are another list"


def test_the_second_button_unsubscribes_a_coordinator_from_both_kinds(web, world):
    link = "/unsubscribe/" + UnsubscribeTokens(KEY).sign("anna@example.org", SILESIA, "pl", domain.DECISIONS)
    r = web.post(
        link + "?scope=all", data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert r.status_code == 200
    assert all(world.ledger.is_suppressed("anna@example.org", kind) for kind in domain.COORDINATOR_KINDS)


def test_a_contacts_link_ignores_the_scope_and_a_token_of_an_unknown_kind_is_refused(web, world):
    tokens = UnsubscribeTokens(KEY)
    web.post("/unsubscribe/" + tokens.sign("a@example.pl", "org_a", "pl") + "?scope=all")
    assert world.ledger.is_suppressed("a@example.pl")
    assert not world.ledger.is_suppressed("a@example.pl", domain.DIGEST)
    assert tokens.verify(tokens.sign("a@example.pl", "org_a", "pl", "everything")) is None


def test_a_pair_whose_organisation_moved_cluster_waits_for_its_new_cluster_only(world):
    day = world.clock.now // DAY
    world.suggest("org_a", "org_c", SILESIA, TIRANA)
    world.suggest("org_a", "org_c", SILESIA, VOJVODINA)  # org_c moved to Vojvodina
    world.pass_at((day + 1) * DAY + 5)
    assert sorted(r for r, _ in world.mailer.sent) == ["anna@example.org", "marko@example.org", "piotr@example.org"]
    assert ": 1." in body(sent_to(world, "anna@example.org")[0]), "still one pair for Silesia"
    assert world.ledger.counts()["digests_recorded"] == 2, "none for Tirana, which the pair left"
    assert world.ledger.clusters_with_new_suggestions() == []
