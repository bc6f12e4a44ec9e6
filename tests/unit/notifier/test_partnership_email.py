"""What the delivery worker puts in a partnership email from what profiles says at send time: the
partner's contacts who agreed to share, the link to "my partnerships", the reader's language."""

from __future__ import annotations

import pytest

from partnermatch import events
from services.notifier.adapters.redis_ledger import RedisDeliveryLedger
from services.notifier.config import NotifierSettings
from services.notifier.services import DecisionRecorder, DeliveryWorker
from services.notifier.tokens import UnsubscribeTokens
from tests.unit.notifier.fakes import FakeMailer, FakeProfiles, contact, decided_payload, org


def sharing(name: str, email: str, language: str, share: object = True, consent: bool = False):
    return {**contact(name, email, language, consent=consent), "share_contact": share}


@pytest.fixture
def send(redis_client):
    """Approve org_a ~ org_b with these organisations and send every email; the sent messages by
    recipient."""

    def run(org_a, org_b, **settings):
        profiles = FakeProfiles(
            orgs={"org_a": org_a, "org_b": org_b},
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
            clusters={"pl-silesia-ict": {"name": "Silesia ICT"}, "rs-vojvodina-ict": {"name": "Vojvodina ICT"}},
        )
        ledger, mailer = RedisDeliveryLedger(redis_client), FakeMailer()
        envelope = events.new_event(events.MATCH_APPROVED, decided_payload(), "test")
        DecisionRecorder(ledger).handle(events.decode(events.encode(envelope)))
        values = {
            "redis_url": "unused",
            "kafka_bootstrap": "unused",
            "secret_key": "k",
            "public_url": "https://n.example",
            **settings,
        }
        DeliveryWorker(
            ledger=ledger,
            profiles=profiles,
            mailer=mailer,
            tokens=UnsubscribeTokens("k"),
            settings=NotifierSettings(**values),
            name="w",
        ).drain()
        return dict(mailer.sent)

    return run


def body(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def test_the_email_names_the_partners_contacts_who_agreed_to_share_and_nobody_else(send):
    polish = org(
        "org_a",
        "pl-silesia-ict",
        "Śląski Klaster",
        "pl",
        [
            contact("Anna Kowalska", "anna.k@example.pl", "pl"),
            sharing("Piotr Wiśniewski", "piotr@example.pl", "pl"),  # shares, receives no emails
            sharing("Ola Nowak", "ola@example.pl", "pl", share=False, consent=True),
            sharing("Truthy Not True", "truthy@example.pl", "pl", share="yes"),
            sharing("Broken Address", "not an address", "pl"),
        ],
        website="https://slask.example.pl",
    )
    serbian = org(
        "org_b",
        "rs-vojvodina-ict",
        "Klaster IKT",
        "sr",
        [
            contact("Јелена", "jelena@example.rs", "sr-Cyrl"),
            contact("Milan", "milan@example.rs", "sr"),  # an old contact: no share_contact at all
        ],
    )
    sent = send(polish, serbian, profiles_public_url="https://orgs.example.org")
    assert sorted(sent) == ["anna.k@example.pl", "jelena@example.rs", "milan@example.rs", "ola@example.pl"]

    jelena = body(sent["jelena@example.rs"])
    assert "Како да контактирате Śląski Klaster" in jelena
    assert "  Piotr Wiśniewski <piotr@example.pl>" in jelena
    for hidden in ("anna.k@example.pl", "ola@example.pl", "truthy@example.pl", "not an address"):
        assert hidden not in jelena, hidden
    assert "Веб-сајт: https://slask.example.pl" in jelena
    assert "обратите се једном од наведених координатора" not in jelena
    assert "Погледајте сва партнерства организације Klaster IKT: https://orgs.example.org/partnerships" in jelena
    html = sent["jelena@example.rs"].get_body(("html",)).get_content()
    assert '<a href="https://orgs.example.org/partnerships">' in html
    assert 'href="mailto:piotr@example.pl"' in html

    anna = body(sent["anna.k@example.pl"])  # the Serbian side shares nobody: ask a coordinator
    assert "Jak skontaktować się" not in anna
    assert "Aby nawiązać kontakt z Klaster IKT, napisz do jednego z koordynatorów" in anna
    assert "jelena@example.rs" not in anna and "milan@example.rs" not in anna
    assert "Zobacz wszystkie partnerstwa organizacji Śląski Klaster: https://orgs.example.org/partnerships" in anna


def test_the_partnerships_link_defaults_to_the_local_organisations_pages(send):
    sent = send(
        org("org_a", "pl-silesia-ict", "Śląski Klaster", "pl", [contact("Anna", "anna.k@example.pl", "pl")]),
        org("org_b", "rs-vojvodina-ict", "Klaster IKT", "sr", []),
    )
    assert "http://127.0.0.1:8081/partnerships" in body(sent["anna.k@example.pl"])


def test_a_contact_without_a_language_of_ours_reads_the_organisations_language(send):
    contacts = [
        contact("Hans", "hans@example.de", "de"),
        {**contact("Ivan", "ivan@example.ua", "uk"), "language": None},
        contact("Jean", "jean@example.fr", "fr"),
    ]
    sent = send(
        org("org_a", "pl-silesia-ict", "Śląski Klaster", "pl", contacts),
        org("org_b", "rs-vojvodina-ict", "Klaster IKT", "sr", []),
    )
    assert str(sent["hans@example.de"]["Subject"]) == "Genehmigte Partnerschaft: Klaster IKT"
    assert sent["hans@example.de"]["Content-Language"] == "de"
    assert str(sent["ivan@example.ua"]["Subject"]) == "Zatwierdzone partnerstwo: Klaster IKT"
    assert str(sent["jean@example.fr"]["Subject"]) == "Zatwierdzone partnerstwo: Klaster IKT"


def test_the_public_address_of_the_organisations_pages_is_a_setting():
    settings = NotifierSettings.from_env({"NOTIFIER_PROFILES_PUBLIC_URL": "https://orgs.example.org/"})
    assert settings.profiles_public_url == "https://orgs.example.org"
    assert NotifierSettings.from_env({}).profiles_public_url == "http://127.0.0.1:8081"
    shared = {"PROFILES_PUBLIC_URL": "https://partnermatch.example.org"}
    assert NotifierSettings.from_env(shared).profiles_public_url == "https://partnermatch.example.org"
    own = {**shared, "NOTIFIER_PROFILES_PUBLIC_URL": "https://orgs.example.org"}
    assert NotifierSettings.from_env(own).profiles_public_url == "https://orgs.example.org"
