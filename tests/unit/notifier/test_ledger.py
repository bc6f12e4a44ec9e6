"""The delivery ledger on a real redis-server: recording is idempotent, claims are exclusive and
fenced, stale claims are recovered by the rules of `domain`."""

from __future__ import annotations

import threading

import pytest

from services.notifier import domain
from services.notifier.adapters.redis_ledger import NewDelivery, RedisDeliveryLedger

NOW = 1_800_000_000.0


@pytest.fixture
def ledger(redis_client):
    return RedisDeliveryLedger(redis_client)


def new_delivery(email="jelena@example.rs", state=domain.PENDING, reason=""):
    return NewDelivery(
        id=domain.delivery_id("a~b", email),
        org_id="a",
        partner_id="b",
        side="a",
        recipient=domain.recipient_key(email),
        state=state,
        reason=reason,
    )


def expanded(ledger, *deliveries):
    assert ledger.record_match("a~b", "ev-1", {"pair_id": "a~b"}, NOW)
    assert ledger.claim("m:a~b", "t0", NOW) == 1
    assert ledger.expand("a~b", "t0", NOW, list(deliveries)) == len(deliveries)
    return [f"d:{d.id}" for d in deliveries]


def test_an_approved_match_is_recorded_once_however_often_it_is_replayed(ledger):
    assert ledger.record_match("a~b", "ev-1", {"pair_id": "a~b", "score": 0.5}, NOW) is True
    assert ledger.record_match("a~b", "ev-2", {"pair_id": "a~b", "score": 0.9}, NOW + 5) is False
    match = ledger.match("a~b")
    assert match["event_id"] == "ev-1" and match["payload"]["score"] == 0.5
    assert ledger.due(NOW) == ["m:a~b"]
    assert ledger.counts()["matches_recorded"] == 1


def test_only_one_of_many_workers_claims_a_due_delivery(ledger):
    [member] = expanded(ledger, new_delivery())
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        if ledger.claim(member, f"w{i}", NOW + 1):
            wins.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert ledger.delivery(member[2:])["state"] == domain.CLAIMED


def test_nothing_is_claimed_before_it_is_due(ledger):
    [member] = expanded(ledger, new_delivery())
    assert ledger.claim(member, "w", NOW) == 1
    assert ledger.transition(member, "w", domain.RETRY, NOW, due_at=NOW + 60)
    assert ledger.claim(member, "w2", NOW + 59) == 0
    assert ledger.claim(member, "w2", NOW + 60) == 2, "the second attempt"


def test_a_transition_needs_the_claim_of_the_worker_that_holds_it(ledger):
    [member] = expanded(ledger, new_delivery())
    ledger.claim(member, "mine", NOW)
    assert not ledger.transition(member, "someone-else", domain.SENDING, NOW)
    assert ledger.transition(member, "mine", domain.SENDING, NOW)
    assert not ledger.transition(member, "mine", domain.SKIPPED, NOW), "sending cannot be skipped any more"
    assert ledger.transition(member, "mine", domain.SENT, NOW, counter="deliveries_sent")
    assert not ledger.transition(member, "mine", domain.SENT, NOW), "sent once"
    assert ledger.counts()["deliveries_sent"] == 1
    assert ledger.counts()["inflight"] == 0


def test_a_final_delivery_is_never_claimed_even_if_a_stale_due_entry_lingers(ledger, redis_client):
    [member] = expanded(ledger, new_delivery())
    ledger.claim(member, "w", NOW)
    ledger.transition(member, "w", domain.SENDING, NOW)
    ledger.transition(member, "w", domain.SENT, NOW)
    redis_client.zadd(ledger.due_key, {member: NOW})
    assert ledger.claim(member, "w2", NOW + 1) == 0
    assert ledger.due(NOW + 1) == []


def test_expanding_again_creates_nothing_twice_and_keeps_states(ledger):
    first = new_delivery()
    [member] = expanded(ledger, first)
    ledger.claim(member, "w", NOW)
    ledger.transition(member, "w", domain.SKIPPED, NOW, fields={"reason": domain.NO_CONSENT})
    # a stale claim on the match comes back and is expanded again
    ledger.r.hset(ledger.match_key("a~b"), mapping={"state": domain.MATCH_EXPANDING, "claim": "t1"})
    assert ledger.expand("a~b", "t1", NOW, [first, new_delivery("other@example.org")]) == 1
    states = {d["recipient"]: d["state"] for d in ledger.deliveries_of("a~b")}
    assert states[domain.recipient_key("jelena@example.rs")] == domain.SKIPPED
    assert states[domain.recipient_key("other@example.org")] == domain.PENDING


def test_expanding_without_the_claim_does_nothing(ledger):
    ledger.record_match("a~b", "ev", {}, NOW)
    ledger.claim("m:a~b", "t0", NOW)
    assert ledger.expand("a~b", "not-t0", NOW, [new_delivery()]) == -1
    assert ledger.deliveries_of("a~b") == []


def test_the_ledger_stores_no_email_address(ledger, redis_client):
    expanded(ledger, new_delivery("jelena@example.rs"))
    ledger.suppress("jelena@example.rs", "a", "2026-01-01T00:00:00+00:00")
    keys = list(redis_client.scan_iter(ledger.prefix + "*"))
    assert keys
    for key in keys:
        dump = redis_client.dump(key) or b""
        assert b"jelena" not in dump, key


def test_a_stale_claim_before_smtp_goes_back_to_pending_and_the_old_worker_is_fenced_off(ledger):
    [member] = expanded(ledger, new_delivery())
    ledger.claim(member, "dead", NOW)
    assert ledger.recover_stale(NOW + 10, lease_s=30) == []
    assert ledger.recover_stale(NOW + 31, lease_s=30) == [(member, domain.PENDING)]
    assert not ledger.transition(member, "dead", domain.SENDING, NOW + 32), "the old claim is void"
    assert ledger.claim(member, "new", NOW + 32) == 2


def test_a_stale_claim_in_sending_becomes_uncertain_and_is_never_claimed_again(ledger):
    [member] = expanded(ledger, new_delivery())
    ledger.claim(member, "dead", NOW)
    ledger.transition(member, "dead", domain.SENDING, NOW)
    assert ledger.recover_stale(NOW + 31, lease_s=30) == [(member, domain.UNCERTAIN)]
    assert ledger.claim(member, "new", NOW + 40) == 0
    assert [d["id"] for d in ledger.uncertain()] == [member[2:]]
    assert ledger.counts()["uncertain_now"] == 1


def test_a_late_250_still_records_sent_after_the_lease_ran_out(ledger):
    [member] = expanded(ledger, new_delivery())
    ledger.claim(member, "slow", NOW)
    ledger.transition(member, "slow", domain.SENDING, NOW)
    ledger.recover_stale(NOW + 31, lease_s=30)
    assert ledger.transition(member, "slow", domain.SENT, NOW + 32)
    assert ledger.counts()["uncertain_now"] == 0


def test_an_operator_can_release_an_uncertain_delivery_and_nothing_else(ledger):
    [member] = expanded(ledger, new_delivery())
    assert not ledger.release(member[2:], NOW), "pending is not uncertain"
    ledger.claim(member, "dead", NOW)
    ledger.transition(member, "dead", domain.SENDING, NOW)
    ledger.recover_stale(NOW + 31, lease_s=30)
    assert ledger.release(member[2:], NOW + 40)
    assert ledger.claim(member, "new", NOW + 40) == 2


def test_unsubscribing_twice_counts_once_and_matches_any_spelling_of_the_address(ledger):
    assert ledger.suppress("Jelena@Example.rs", "a", "2026-01-01T00:00:00+00:00") is True
    assert ledger.suppress("jelena@example.rs", "a", "2026-01-02T00:00:00+00:00") is False
    assert ledger.is_suppressed(" JELENA@example.RS")
    assert not ledger.is_suppressed("someone@example.rs")
    assert ledger.counts()["unsubscribes"] == 1
