"""The notifier as it runs: its consumer reads match decisions from the real broker, its delivery
workers send through a real SMTP server, in each contact's language, exactly once."""

from __future__ import annotations

import threading

import pytest

from partnermatch.messaging import read_partitions
from partnermatch.topics import dlq
from services.notifier.bootstrap import build_deps
from services.notifier.entrypoints.consumer import Notifier
from tests.helpers import wait_until
from tests.integration.notifier.conftest import approval, approved_event

pytestmark = pytest.mark.integration

SUBJECT_START = {  # what each contact reads, by address
    "anna.kowalska@silesia.example.pl": "Zatwierdzone partnerstwo: Кластер ИКТ Нови Сад",
    "hans.mueller@silesia.example.pl": "Genehmigte Partnerschaft: Кластер ИКТ Нови Сад",
    "jelena@vojvodina.example.rs": "Одобрено партнерство: Śląski Klaster ICT",
    "milan@vojvodina.example.rs": "Odobreno partnerstvo: Śląski Klaster ICT",
}


class Running:
    def __init__(self, settings, topic):
        self.notifier = Notifier(settings, build_deps(settings), topic=topic)
        self.thread = threading.Thread(target=self.notifier.run, daemon=True)
        self.thread.start()

    def stop(self):
        self.notifier.stop.set()
        self.thread.join(20)
        assert not self.thread.is_alive()


@pytest.fixture
def running(kafka_bootstrap, notifier_settings, decisions_topic, unique_name):
    started = []

    def start(**over):
        settings = notifier_settings(kafka_bootstrap=kafka_bootstrap, group_id=unique_name("notifier"), **over)
        started.append(Running(settings, decisions_topic))
        return started[-1].notifier

    yield start
    for r in started:
        r.stop()


def test_each_consenting_contact_gets_one_email_in_their_language_and_replays_send_nothing(
    running, profiles, sink, publisher, decisions_topic, kafka_bootstrap
):
    payload = approval(profiles, "silesia", "vojvodina")
    event = approved_event(payload)
    publisher.publish(decisions_topic, payload["pair_id"], b"{not json")
    publisher.publish(decisions_topic, payload["pair_id"], approved_event(payload, "match.rejected"))
    publisher.publish(decisions_topic, payload["pair_id"], event)
    notifier = running()

    wait_until(lambda: all(sink.messages_to(a) for a in SUBJECT_START), timeout=20, message="four emails")
    wait_until(lambda: notifier.deps.ledger.counts().get("deliveries_skipped") == 1, timeout=5)
    assert sink.messages_to("piotr.nowak@silesia.example.pl") == [], "no consent, no email"
    for address, subject in SUBJECT_START.items():
        [received] = sink.messages_to(address)
        msg = received.parsed()
        assert str(msg["Subject"]) == subject
        assert msg["List-Unsubscribe"].startswith("<http://127.0.0.1:8083/unsubscribe/")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Message-ID"].endswith("@partnermatch.example.org>")
        assert msg.get_body(("html",)) is not None and msg.get_body(("plain",)) is not None
    jelena = sink.messages_to("jelena@vojvodina.example.rs")[0].parsed().get_body(("plain",)).get_content()
    assert "Tworzymy oprogramowanie <dla> rolnictwa & przemysłu." in jelena, "partner text as written"
    assert "Anna Nowak <anna@coordinators.example.org>" in jelena
    assert "Држава: Пољска" in jelena, "the partner's country by name, in the reader's language and script"
    html = sink.messages_to("jelena@vojvodina.example.rs")[0].parsed().get_body(("html",)).get_content()
    assert "oprogramowanie &lt;dla&gt; rolnictwa &amp; przemysłu." in html
    anna = sink.messages_to("anna.kowalska@silesia.example.pl")[0].parsed().get_body(("plain",)).get_content()
    assert "Jak skontaktować się z Кластер ИКТ Нови Сад" in anna
    assert "Kraj: Serbia" in anna
    assert "  Milan Jovanović <milan@vojvodina.example.rs>" in anna, "the partner's shared contact"
    assert "jelena@vojvodina.example.rs" not in anna, "a contact that did not agree is not shared"
    assert "napisz do jednego z koordynatorów" not in anna
    assert "/partnerships" in anna
    assert "обратите се једном од наведених координатора" in jelena, (
        "the Polish side shares nobody: its partner is sent to a coordinator"
    )

    dead = wait_until(
        lambda: list(read_partitions(kafka_bootstrap, dlq(decisions_topic), idle_timeout_s=0.5)),
        timeout=10,
        message="the undecodable message in the DLQ",
    )
    assert [r.value for r in dead] == [b"{not json"]
    assert notifier.recorder.counts["ignored"] == 1, "the rejection is logged and ignored"

    # The same event again, as a replay or a producer retry would deliver it.
    publisher.publish(decisions_topic, payload["pair_id"], event)
    wait_until(
        lambda: notifier.recorder.counts["duplicate"] == 1,
        timeout=10,
        message="the replay to be read",
    )
    # A whole new consumer group reads the topic from the beginning.
    again = running()
    wait_until(
        lambda: again.recorder.counts["duplicate"] == 2,
        timeout=20,
        message="the second group to catch up",
    )
    assert notifier.deps.ledger.counts()["backlog"] == 0, "nothing was scheduled to send"
    assert len(sink.messages) == 4
    assert notifier.deps.ledger.counts()["deliveries_sent"] == 4
