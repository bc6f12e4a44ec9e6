"""The whole system as people use it, as real processes on loopback: profiles under gunicorn, its
relay, the matcher, the review page, the notifier, the broker, redis-server and the SMTP sink.

Register two organisations in two languages → a suggestion for both coordinators → both approve →
every consenting contact gets exactly one email in their language → the unsubscribe link works →
replaying match-decisions sends nothing more."""

from __future__ import annotations

import pytest

from partnermatch import events
from partnermatch.messaging import KafkaPublisher, read_partitions
from partnermatch.topics import MATCH_DECISIONS
from tests.helpers import wait_until

from .conftest import call, mails

pytestmark = pytest.mark.e2e
PASSWORD = "coordinator password e2e"


def test_register_suggest_approve_email_unsubscribe_and_replay(system):
    profiles, review = system.urls["profiles"], system.urls["review"]
    admin = system.env["PARTNERMATCH_ADMIN_TOKEN"]
    for cluster, country, coordinator, lang in (
        ("pl-silesia-ict", "PL", "anna", "pl"),
        ("rs-zlatibor-agro", "RS", "marko", "sr-Cyrl"),
    ):
        assert (
            call("POST", f"{profiles}/v1/clusters", {"id": cluster, "name": cluster, "country": country}, admin)[0]
            == 201
        )
        assert (
            call(
                "POST",
                f"{profiles}/v1/clusters/{cluster}/coordinators",
                {
                    "username": coordinator,
                    "password": PASSWORD,
                    "name": coordinator.title(),
                    "email": f"{coordinator}@coordinators.example.org",
                    "language": lang,
                },
                admin,
            )[0]
            == 201
        )
    status, pl = call(
        "POST",
        f"{profiles}/v1/organisations",
        {
            "name": "Soft Śląsk",
            "cluster_id": "pl-silesia-ict",
            "country": "PL",
            "language": "pl",
            "capabilities": "Tworzymy oprogramowanie i aplikacje mobilne dla przemysłu i rolnictwa.",
            "goals": "Szukamy partnerów z branży rolno-spożywczej: sadowników i przetwórców owoców.",
            "contacts": [
                {"name": "Ewa Zielińska", "email": "ewa@soft.example.pl", "language": "pl", "consent": True},
                {"name": "Jan Kowalski", "email": "jan@soft.example.pl", "language": "pl", "consent": False},
            ],
        },
    )
    assert status == 201
    status, rs = call(
        "POST",
        f"{profiles}/v1/organisations",
        {
            "name": "Воћарска задруга Ариље",
            "cluster_id": "rs-zlatibor-agro",
            "country": "RS",
            "language": "sr",
            "capabilities": "Прерада воћа, хладњаче и производња сокова; 300 произвођача малине.",
            "goals": "Тражимо софтвер и апликације за праћење производње и порекла воћа.",
            "contacts": [
                {
                    "name": "Јелена Петровић",
                    "email": "jelena@arilje.example.rs",
                    "language": "sr-Cyrl",
                    "consent": True,
                },
                {"name": "Besnik Krasniqi", "email": "besnik@arilje.example.rs", "language": "sq", "consent": True},
            ],
        },
    )
    assert status == 201
    pair_id = events.pair_id(pl["organisation"]["id"], rs["organisation"]["id"])

    tokens = {}
    for who in ("anna", "marko"):
        status, session = call("POST", f"{profiles}/v1/auth/login", {"username": who, "password": PASSWORD})
        assert status == 200
        tokens[who] = session["token"]

    def pending_for(who: str) -> list:
        status, items = call("GET", f"{review}/v1/suggestions?lang=pl", token=tokens[who])
        return [s for s in items if s["pair_id"] == pair_id] if status == 200 else []

    suggestion = wait_until(lambda: pending_for("anna"), timeout=60, message="the suggestion for anna")[0]
    assert suggestion["reasons"] and suggestion["partner"]["name"] == "Воћарска задруга Ариље"
    assert wait_until(lambda: pending_for("marko"), timeout=10, message="the suggestion for marko")

    for who in ("anna", "marko"):
        status, after = call(
            "POST", f"{review}/v1/suggestions/{pair_id}/decision", {"decision": "approve"}, tokens[who]
        )
        assert status == 200
    assert after["state"] == "approved"

    received = wait_until(lambda: (m := mails(system.mail)) and len(m) >= 4 and m, timeout=60, message="four emails")
    by_rcpt = {str(m["To"].addresses[0].addr_spec): m for m in received}
    assert sorted(by_rcpt) == [
        "anna@coordinators.example.org",
        "besnik@arilje.example.rs",
        "ewa@soft.example.pl",
        "jelena@arilje.example.rs",
    ], "the contacts, and anna: marko approved after her"
    notice = by_rcpt["anna@coordinators.example.org"]
    assert str(notice["Subject"]) == "Zatwierdzone przez rs-zlatibor-agro: Soft Śląsk – Воћарска задруга Ариље"
    assert "jan@soft.example.pl" not in by_rcpt, "no consent, no email"
    jelena = by_rcpt["jelena@arilje.example.rs"].get_body(("plain",)).get_content()
    assert "Soft Śląsk" in jelena and any("\u0400" <= ch <= "\u04ff" for ch in jelena)
    ewa = by_rcpt["ewa@soft.example.pl"]
    assert "Воћарска задруга Ариље" in ewa.get_body(("plain",)).get_content()
    assert ewa["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    link = ewa["List-Unsubscribe"].strip("<>")
    status, page = call("GET", link)
    assert status == 200 and "<form" in page
    status, _ = call("POST", link, form={"List-Unsubscribe": "One-Click"})
    assert status == 200

    # replay: the same approval once more on match-decisions
    bootstrap = system.env["KAFKA_BOOTSTRAP_SERVERS"]
    approved = list(read_partitions(bootstrap, MATCH_DECISIONS, idle_timeout_s=1.5))
    assert len(approved) == 1
    publisher = KafkaPublisher(bootstrap, "e2e-replay")
    try:
        publisher.publish(MATCH_DECISIONS, approved[0].key or pair_id, approved[0].value)
    finally:
        publisher.close()

    def replay_consumed() -> bool:
        """The notifier group's committed offsets cover both approvals (an offset fetch, no join)."""
        from kafka import KafkaConsumer, TopicPartition

        probe = KafkaConsumer(bootstrap_servers=bootstrap, group_id="notifier", enable_auto_commit=False)
        try:
            parts = probe.partitions_for_topic(MATCH_DECISIONS) or set()
            return sum(probe.committed(TopicPartition(MATCH_DECISIONS, p)) or 0 for p in parts) >= 2
        finally:
            probe.close(autocommit=False)

    wait_until(replay_consumed, timeout=30, message="the notifier consumed the replayed approval")
    assert len(mails(system.mail)) == 4, "a replay sends nothing more"


def test_an_organisation_s_partnerships_reach_profiles_from_the_running_matcher_as_the_stack_wires_them(system):
    """With the settings `partnermatch up` gives the profiles process, its use case reads the
    running review app (gunicorn) with the generated service token: the pair waits without
    contacts, then, approved by both coordinators, shows the partner's shared contact."""
    from launcher.stack import service_specs
    from services.profiles import services
    from services.profiles.bootstrap import build_deps
    from services.profiles.config import ProfilesSettings

    profiles, review = system.urls["profiles"], system.urls["review"]
    spec = next(s for s in service_specs(system.env) if s.name == "profiles")
    deps = build_deps(ProfilesSettings.from_env({**system.env, **spec.env}))
    admin = system.env["PARTNERMATCH_ADMIN_TOKEN"]
    for cluster, country, coordinator in (("pl-krakow-ict", "PL", "zofia"), ("rs-sumadija-agro", "RS", "milan")):
        assert (
            call(
                "POST",
                f"{profiles}/v1/clusters",
                {"id": cluster, "name": f"Klaster {cluster}", "country": country},
                admin,
            )[0]
            == 201
        )
        assert (
            call(
                "POST",
                f"{profiles}/v1/clusters/{cluster}/coordinators",
                {
                    "username": coordinator,
                    "password": PASSWORD,
                    "name": coordinator.title(),
                    "email": f"{coordinator}@coordinators.example.org",
                    "language": "en",
                },
                admin,
            )[0]
            == 201
        )
    status, pl = call(
        "POST",
        f"{profiles}/v1/organisations",
        {
            "name": "Kod Krakowski",
            "cluster_id": "pl-krakow-ict",
            "country": "PL",
            "language": "pl",
            "capabilities": "Tworzymy oprogramowanie do śledzenia produkcji owoców i aplikacje mobilne.",
            "goals": "Szukamy sadowników i przetwórców owoców jako partnerów.",
            "contacts": [
                {
                    "name": "Ola Nowak",
                    "email": "ola@kod.example.pl",
                    "language": "pl",
                    "consent": False,
                    "share_contact": True,
                }
            ],
        },
    )
    assert status == 201
    status, rs = call(
        "POST",
        f"{profiles}/v1/organisations",
        {
            "name": "Шумадијско воће",
            "cluster_id": "rs-sumadija-agro",
            "country": "RS",
            "language": "sr",
            "capabilities": "Узгој и прерада воћа, хладњаче, сокови од јабуке и шљиве.",
            "goals": "Тражимо софтвер за праћење производње воћа.",
            "contacts": [
                {
                    "name": "Милица Јовановић",
                    "email": "milica@voce.example.rs",
                    "language": "sr-Cyrl",
                    "consent": False,
                    "share_contact": True,
                },
                {"name": "Петар Петровић", "email": "petar@voce.example.rs", "language": "sr", "consent": False},
            ],
        },
    )
    assert status == 201
    pl_id, rs_id = pl["organisation"]["id"], rs["organisation"]["id"]
    pair_id = events.pair_id(pl_id, rs_id)

    def ours() -> list:
        return [p for p in services.my_partnerships(deps.store, deps.matcher, pl_id, "pl") if p["pair_id"] == pair_id]

    [waiting] = wait_until(ours, timeout=60, message="the suggestion among the organisation's partnerships")
    assert waiting["state"] == "waiting" and waiting["reason"]
    assert waiting["partner"]["name"] == "Шумадијско воће" and waiting["partner"]["contacts"] == []

    for who in ("zofia", "milan"):
        status, session = call("POST", f"{profiles}/v1/auth/login", {"username": who, "password": PASSWORD})
        assert status == 200
        assert (
            call("POST", f"{review}/v1/suggestions/{pair_id}/decision", {"decision": "approve"}, session["token"])[0]
            == 200
        )
    [approved] = ours()
    assert approved["state"] == "approved"
    assert approved["partner"]["contacts"] == [
        {"name": "Милица Јовановић", "email": "milica@voce.example.rs", "language": "sr-Cyrl"}
    ]
