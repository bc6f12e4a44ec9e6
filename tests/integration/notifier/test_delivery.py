"""Deliveries through a real SMTP server, with contacts read from the real profiles service over
HTTP and the ledger on a real redis-server: retries, refusals, unsubscribes, deletions."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from services.notifier import domain
from services.notifier.entrypoints.web import create_app as create_notifier_web
from tests.helpers import wait_until
from tests.integration.notifier.conftest import ServerThread, approval, record

pytestmark = pytest.mark.integration


def one_each(sink, addresses, pair_id=None):
    """Exactly one email to each address (about `pair_id`, if given)."""

    def about(message, address):
        return pair_id is None or message.parsed()["X-Partnermatch-Delivery"] == domain.delivery_id(pair_id, address)

    return all(len([m for m in sink.messages_to(a) if about(m, a)]) == 1 for a in addresses)


def test_a_451_from_the_smtp_server_is_retried_and_then_delivered_once(direct, profiles, sink):
    recorder, worker = direct()
    jelena = "jelena@vojvodina.example.rs"
    fault = sink.fail(451, "Greylisted, try again later", stage="data", rcpt=jelena, times=2)
    record(recorder, approval(profiles, "silesia", "vojvodina"))
    worker.drain()
    assert sink.messages_to(jelena) == []
    delivery = worker.ledger.delivery(domain.delivery_id(approval(profiles, "silesia", "vojvodina")["pair_id"], jelena))
    assert delivery["state"] == domain.RETRY and "451" in delivery["error"]
    wait_until(
        lambda: worker.run_once() is not None and sink.messages_to(jelena),
        timeout=10,
        message="the retried email",
    )
    assert len(fault.hits) == 2 and fault.hits[1] - fault.hits[0] >= 0.1, "backed off between attempts"
    worker.drain()
    assert len(sink.messages_to(jelena)) == 1
    delivery = worker.ledger.delivery(delivery["id"])
    assert delivery["state"] == domain.SENT and delivery["attempts"] == "3"


def test_a_550_is_recorded_failed_not_retried_and_does_not_hold_back_another_recipient(direct, profiles, sink):
    recorder, worker = direct(retry_base_s=0.05)
    milan, jelena = "milan@vojvodina.example.rs", "jelena@vojvodina.example.rs"
    fault = sink.fail(550, "No such mailbox", stage="rcpt", rcpt=milan, times=100)
    payload = approval(profiles, "silesia", "vojvodina")
    record(recorder, payload)
    wait_until(lambda: worker.run_once() is not None and sink.messages_to(jelena), timeout=10)
    worker.drain()
    failed = worker.ledger.delivery(domain.delivery_id(payload["pair_id"], milan))
    assert failed["state"] == domain.FAILED and failed["reason"] == "smtp_refused" and "550" in failed["error"]
    assert worker.ledger.due(worker.clock() + 3600) == [], "nothing left to retry"
    assert len(fault.hits) == 1
    assert sink.messages_to(milan) == []
    assert one_each(
        sink,
        [
            "jelena@vojvodina.example.rs",
            "anna.kowalska@silesia.example.pl",
            "hans.mueller@silesia.example.pl",
        ],
    )


def test_the_unsubscribe_link_suppresses_on_post_not_on_get_and_a_later_match_skips_the_contact(
    direct, profiles, sink, notifier_settings, redis_client
):
    from services.notifier.bootstrap import build_deps

    web_settings = notifier_settings()
    web = ServerThread(create_notifier_web(web_settings, build_deps(web_settings)))
    try:
        recorder, worker = direct(public_url=web.url)
        jelena = "jelena@vojvodina.example.rs"
        record(recorder, approval(profiles, "silesia", "vojvodina"))
        worker.drain()
        [message] = [m.parsed() for m in sink.messages_to(jelena)]
        link = message["List-Unsubscribe"].strip("<>")
        assert link.startswith(f"{web.url}/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        with urllib.request.urlopen(link, timeout=5) as page:  # what a link scanner does
            assert page.status == 200 and '<form method="post"' in page.read().decode()
        assert not worker.ledger.is_suppressed(jelena)

        one_click = urllib.request.Request(
            link,
            data=b"List-Unsubscribe=One-Click",
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(one_click, timeout=5) as done:  # what a mail client does
            assert done.status == 200
        assert worker.ledger.is_suppressed(jelena)

        forged = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(forged, data=b"", method="POST"), timeout=5)
        assert refused.value.code == 400
        refused.value.close()

        later = approval(profiles, "vojvodina", "tirana")
        record(recorder, later)
        worker.drain()
        assert len(sink.messages_to(jelena)) == 1, "nothing more after unsubscribing"
        assert one_each(
            sink,
            ["milan@vojvodina.example.rs", "besa@tirana.example.al", "ivan@tirana.example.al"],
            later["pair_id"],
        )
        skipped = worker.ledger.delivery(domain.delivery_id(later["pair_id"], jelena))
        assert (skipped["state"], skipped["reason"]) == (domain.SKIPPED, domain.UNSUBSCRIBED)
    finally:
        web.stop()


def test_a_deleted_organisation_gets_nothing_and_neither_does_its_partner(direct, profiles, sink):
    recorder, worker = direct()
    payload = approval(profiles, "silesia", "tirana")
    profiles.delete("tirana")
    record(recorder, payload)
    worker.drain()
    assert sink.messages == []
    match = worker.ledger.match(payload["pair_id"])
    assert match["state"] == domain.MATCH_SKIPPED
    assert {d["reason"] for d in worker.ledger.deliveries_of(payload["pair_id"])} == {domain.PARTNER_DELETED}


def test_an_unreachable_smtp_server_is_retried_and_the_email_goes_out_once_it_is_back(direct, profiles, sink):
    port = sink.port
    sink.stop()
    recorder, worker = direct(smtp_port=port)
    payload = approval(profiles, "vojvodina", "tirana")
    record(recorder, payload)
    worker.drain()
    states = {d["state"] for d in worker.ledger.deliveries_of(payload["pair_id"])}
    assert states == {domain.RETRY}
    sink.port = port
    sink.start()
    wait_until(lambda: worker.run_once() is not None and len(sink.messages) == 4, timeout=10)
    worker.drain()
    assert len(sink.messages) == 4
