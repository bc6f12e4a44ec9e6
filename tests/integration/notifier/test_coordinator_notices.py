"""Coordinators' notices as the notifier runs: its consumer reads `matches` and `match-decisions`
from the real broker, its workers read the coordinators from the real profiles service and send
through a real SMTP server. The digest arrives once, whatever is read again; the coordinator of a
cluster that approved hears once, in their language, what the other cluster decided."""

from __future__ import annotations

import threading
import time

import pytest

from partnermatch import events
from partnermatch.broker import ensure_topics
from partnermatch.messaging import read_partitions
from partnermatch.topics import dlq
from services.notifier.bootstrap import build_deps
from services.notifier.entrypoints.consumer import Notifier
from tests.helpers import wait_until
from tests.integration.notifier.conftest import ADMIN, approval

pytestmark = pytest.mark.integration

ANNA, MARKO, BESA = (f"{u}@coordinators.example.org" for u in ("anna", "marko", "besa"))
OLA = "ola@coordinators.example.org"
DIGEST_S = 2.0


@pytest.fixture
def topics(kafka_bootstrap, unique_name):
    decisions, matches = unique_name("decisions"), unique_name("matches")
    ensure_topics(kafka_bootstrap, {decisions: 1, dlq(decisions): 1, matches: 1, dlq(matches): 1})
    return decisions, matches


@pytest.fixture
def polish_coordinator(profiles):
    """A second coordinator of the Silesian cluster, who reads Polish."""
    r = profiles.client.post(
        "/v1/clusters/pl-silesia-ict/coordinators",
        headers={"Authorization": f"Bearer {ADMIN}"},
        json={
            "username": "ola",
            "password": "coordinator password 2",
            "name": "Ola Zielińska",
            "email": OLA,
            "language": "pl",
        },
    )
    assert r.status_code == 201, r.json


@pytest.fixture
def running(kafka_bootstrap, notifier_settings, topics, unique_name):
    started = []

    def start():
        settings = notifier_settings(
            kafka_bootstrap=kafka_bootstrap,
            group_id=unique_name("notifier"),
            digest_interval_s=DIGEST_S,
            review_public_url="https://review.example.org",
        )
        notifier = Notifier(settings, build_deps(settings), topic=topics[0], matches_topic=topics[1])
        thread = threading.Thread(target=notifier.run, daemon=True)
        thread.start()
        started.append((notifier, thread))
        return notifier

    yield start
    for notifier, thread in started:
        notifier.stop.set()
        thread.join(20)
        assert not thread.is_alive()


def suggested(payload, event_type=events.MATCH_SUGGESTED):
    fields = {k: payload[k] for k in ("pair_id", "org_a", "org_b", "cluster_a", "cluster_b")}
    if event_type == events.MATCH_SUGGESTED:
        fields |= {"score": payload["score"], "reasons": payload["reasons"]}
    else:
        fields["reason"] = "rescored"
    return events.encode(events.new_event(event_type, fields, "notifier-tests"))


def plain(received):
    return received.parsed().get_body(("plain",)).get_content()


def test_the_digest_email_arrives_once_in_the_mail_sink_for_each_coordinator_in_their_language(
    running, profiles, polish_coordinator, sink, publisher, topics, kafka_bootstrap
):
    _, matches = topics
    waiting = approval(profiles, "silesia", "vojvodina")
    gone = approval(profiles, "silesia", "tirana")
    publisher.publish(matches, waiting["pair_id"], suggested(waiting))
    publisher.publish(matches, gone["pair_id"], suggested(gone))
    publisher.publish(matches, gone["pair_id"], suggested(gone, events.MATCH_WITHDRAWN))
    publisher.publish(matches, waiting["pair_id"], b"{not json")
    notifier = running()

    wait_until(
        lambda: all(sink.messages_to(a) for a in (ANNA, OLA, MARKO)),
        timeout=30,
        message="a digest for each coordinator of both clusters",
    )
    [ola] = sink.messages_to(OLA)
    assert str(ola.parsed()["Subject"]) == "Nowe propozycje partnerów dla Cluster pl-silesia-ict"
    assert "od ostatniego zestawienia: 1." in plain(ola), "the withdrawn pair no longer waits"
    assert "https://review.example.org/queue" in plain(ola)
    assert ola.parsed()["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [anna] = sink.messages_to(ANNA)
    assert str(anna.parsed()["Subject"]) == "New partner suggestions for Cluster pl-silesia-ict"
    assert sink.messages_to(BESA) == [], "Tirana's pair was withdrawn before its digest"
    dead = wait_until(
        lambda: read_partitions(kafka_bootstrap, dlq(matches), idle_timeout_s=0.5),
        timeout=10,
        message="the undecodable message in the DLQ",
    )
    assert [r.value for r in dead] == [b"{not json"]

    # The same suggestion again (a re-score, a replay), later periods, and a whole new consumer
    # group reading both topics from the beginning: nothing more is sent.
    publisher.publish(matches, waiting["pair_id"], suggested(waiting))
    again = running()
    wait_until(lambda: again.recorder.counts["suggested"] >= 3, timeout=20, message="the second group to catch up")
    time.sleep(2 * DIGEST_S + 1.5)
    assert len(sink.messages_to(OLA)) == 1 and len(sink.messages_to(ANNA)) == 1
    assert len(sink.messages_to(MARKO)) == 1
    assert len(sink.messages) == 3
    assert notifier.deps.ledger.counts()["digests_recorded"] == 2, "one per cluster"
    assert "matches_recorded" not in notifier.deps.ledger.counts()


def test_a_coordinator_whose_cluster_approved_hears_once_that_the_other_cluster_rejected(
    running, profiles, polish_coordinator, sink, publisher, topics
):
    decisions, _ = topics
    payload = approval(profiles, "silesia", "vojvodina")
    silesia = next(d for d in payload["decisions"] if d["cluster_id"] == "pl-silesia-ict")
    other = next(d for d in payload["decisions"] if d["cluster_id"] != "pl-silesia-ict")
    other |= {
        "decision": "reject",
        "reason_code": "not_relevant",
        "reason_text": "Za daleko",
        "decided_at": "2026-11-23T09:45:00+00:00",
    }
    assert silesia["decided_at"] < other["decided_at"]
    rejected = events.encode(events.new_event(events.MATCH_REJECTED, payload, "notifier-tests"))
    publisher.publish(decisions, payload["pair_id"], rejected)
    publisher.publish(decisions, payload["pair_id"], rejected)  # a producer's retry
    notifier = running()

    wait_until(
        lambda: sink.messages_to(OLA) and sink.messages_to(ANNA),
        timeout=20,
        message="the Silesian coordinators' notices",
    )
    wait_until(lambda: notifier.recorder.counts["notices_seen"] == 1, timeout=10)
    [ola] = sink.messages_to(OLA)
    text = plain(ola)
    assert str(ola.parsed()["Subject"]).startswith("Odrzucone przez Cluster rs-vojvodina-ict: ")
    assert "Powód: Nietrafiona" in text, "the reason as the coordinators' page labels it"
    assert "Za daleko" not in text, "the comment stays on the coordinators' page"
    assert f"https://review.example.org/pairs/{payload['pair_id']}" in text
    assert "Reason: Not relevant" in plain(sink.messages_to(ANNA)[0])
    assert sink.messages_to(MARKO) == [], "the coordinator who rejected is not told"
    assert len(sink.messages) == 2, "no partnership email for a rejected pair"
