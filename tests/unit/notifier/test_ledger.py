"""The delivery ledger on a real redis-server: recording is idempotent, claims are exclusive and
fenced, stale claims are recovered by the rules of `domain`."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from services.notifier import domain
from services.notifier.adapters.redis_ledger import NewDelivery, RedisDeliveryLedger

NOW = 1_800_000_000.0


@pytest.fixture
def ledger(redis_client):
    return RedisDeliveryLedger(redis_client)


def new_delivery(email="jelena@example.rs", state=domain.PENDING, reason="", pair_id="a~b", org_id="a", partner_id="b"):
    return NewDelivery(
        id=domain.delivery_id(pair_id, email),
        org_id=org_id,
        partner_id=partner_id,
        side="a" if org_id else "",
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


# ---- finished matches expire ------------------------------------------------------------------

KEEP_S = 30 * 86400


def ledger_keys(ledger, pair_id="a~b"):
    """The keys of one match: its record, its set of deliveries, and each delivery."""
    match = ledger.match_key(pair_id)
    ids = sorted(i.decode() for i in ledger.r.smembers(match + ":deliveries"))
    return [match, match + ":deliveries", *[ledger.delivery_key(i) for i in ids]]


def expiries(ledger, pair_id="a~b"):
    """Each key of the match: its seconds left (-1: it never expires; -2: it is gone)."""
    return {key: ledger.r.ttl(key) for key in ledger_keys(ledger, pair_id)}


def send(ledger, member, to=domain.SENT, at=NOW):
    assert ledger.claim(member, "w", at) >= 1
    assert ledger.transition(member, "w", domain.SENDING, at)
    assert ledger.transition(member, "w", to, at)


def test_a_match_expires_with_its_deliveries_once_the_last_is_over_and_no_sooner(ledger):
    first, second = expanded(ledger, new_delivery(), new_delivery("marko@example.rs"))
    send(ledger, first)
    assert set(expiries(ledger).values()) == {-1}, "one delivery is still pending: nothing expires"
    send(ledger, second, to=domain.FAILED)
    left = expiries(ledger)
    assert len(left) == 4  # the match, its set, two deliveries
    assert all(KEEP_S - 5 <= ttl <= KEEP_S for ttl in left.values()), left
    # until then a replayed approval still finds the match, and records nothing again
    assert ledger.record_match("a~b", "ev-again", {"pair_id": "a~b"}, NOW + 10) is False
    assert ledger.due(NOW + 10) == []


def test_a_match_with_an_uncertain_delivery_is_kept_until_an_operator_settles_it(ledger):
    [member] = expanded(ledger, new_delivery())
    send(ledger, member, to=domain.UNCERTAIN)
    assert set(expiries(ledger).values()) == {-1}, "an operator may still release it"
    assert ledger.release(member[2:], NOW + 40)
    assert set(expiries(ledger).values()) == {-1}
    send(ledger, member, at=NOW + 40)
    assert all(KEEP_S - 5 <= ttl <= KEEP_S for ttl in expiries(ledger).values())


def test_a_match_expanded_into_skipped_deliveries_or_into_none_expires_at_once(ledger):
    expanded(ledger, new_delivery(state=domain.SKIPPED, reason=domain.NO_CONSENT))
    assert all(KEEP_S - 5 <= ttl <= KEEP_S for ttl in expiries(ledger).values())

    assert ledger.record_match("c~d", "ev-2", {"pair_id": "c~d"}, NOW)
    assert ledger.claim("m:c~d", "t0", NOW) == 1
    assert ledger.expand("c~d", "t0", NOW, [], final_state=domain.MATCH_SKIPPED, reason="nobody") == 0
    assert KEEP_S - 5 <= ledger.r.ttl(ledger.match_key("c~d")) <= KEEP_S


def test_a_delivery_waiting_to_retry_keeps_its_match_and_its_payload(ledger):
    first, second = expanded(ledger, new_delivery(), new_delivery("marko@example.rs"))
    send(ledger, first)
    assert ledger.claim(second, "w", NOW) == 1
    assert ledger.transition(second, "w", domain.RETRY, NOW, due_at=NOW + 60)
    assert set(expiries(ledger).values()) == {-1}
    assert ledger.match("a~b")["payload"] == {"pair_id": "a~b"}, "what the retry will read"
    assert not ledger.was_finished("a~b")
    send(ledger, second, at=NOW + 60)
    assert all(KEEP_S - 5 <= ttl <= KEEP_S for ttl in expiries(ledger).values())
    assert ledger.was_finished("a~b")


def test_a_replay_after_the_records_expired_records_nothing(redis_client):
    """However late: the matcher publishes every decided pair again after the broker lost its
    topics, and a decision notice's event with it."""
    ledger = RedisDeliveryLedger(redis_client, keep_s=1)
    [member] = expanded(ledger, new_delivery())
    send(ledger, member)
    keys = ledger_keys(ledger)
    deadline = time.monotonic() + 5
    while redis_client.exists(*keys) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not redis_client.exists(*keys), "expired"
    assert ledger.record_match("a~b", "ev-refill", {"pair_id": "a~b"}, NOW + 100) is False
    assert ledger.due(NOW + 100) == [] and not redis_client.exists(ledger.match_key("a~b"))
    notice = domain.decided_notice_id("a~b", "pl-silesia-ict")
    assert ledger.record_match(notice, "ev-n", {"kind": domain.DECISIONS}, NOW)
    assert ledger.claim(f"m:{notice}", "t0", NOW) == 1
    assert ledger.expand(notice, "t0", NOW, [], final_state=domain.MATCH_SKIPPED) == 0
    redis_client.delete(ledger.match_key(notice))  # as its expiry will
    assert ledger.record_match(notice, "ev-n", {"kind": domain.DECISIONS}, NOW + 100) is False


def test_a_coordinators_digest_expires_like_a_match_and_its_period_keeps_it_from_coming_again(ledger):
    assert ledger.note_suggested("c~d", ["pl-silesia-ict"], NOW) == 1
    assert ledger.take_digest("pl-silesia-ict", 1, NOW + 1, NOW + 2) == 1
    notice = domain.digest_id("pl-silesia-ict", 1)
    assert ledger.claim(f"m:{notice}", "t0", NOW + 2) == 1
    coordinator = new_delivery("ana@example.pl", pair_id=notice, org_id="", partner_id="")
    assert ledger.expand(notice, "t0", NOW + 2, [coordinator]) == 1
    assert set(expiries(ledger, notice).values()) == {-1}
    send(ledger, f"d:{coordinator.id}", at=NOW + 2)
    assert all(KEEP_S - 5 <= ttl <= KEEP_S for ttl in expiries(ledger, notice).values())
    assert not ledger.was_finished(notice), "a digest leaves no id behind"
    # once it expired, a suggestion first seen before that period does not make it again
    ledger.r.delete(*ledger_keys(ledger, notice))
    assert ledger.note_suggested("e~f", ["pl-silesia-ict"], NOW) == 1
    assert ledger.take_digest("pl-silesia-ict", 1, NOW + 1, NOW + 3) == 0
    assert not ledger.r.exists(ledger.match_key(notice))
    assert ledger.take_digest("pl-silesia-ict", 2, NOW + 2, NOW + 4) == 1, "the next period's"


def test_a_ledger_that_keeps_for_ever_sets_no_expiry(redis_client):
    ledger = RedisDeliveryLedger(redis_client, keep_s=0)
    [member] = expanded(ledger, new_delivery())
    send(ledger, member)
    assert set(expiries(ledger).values()) == {-1}
    assert ledger.was_finished("a~b"), "the id all the same: what `ledger show` reads"
    assert ledger.expire_finished() == 0


def test_a_script_that_fails_as_it_finishes_a_match_leaves_no_expiry_without_the_id(ledger, redis_client):
    [member] = expanded(ledger, new_delivery())
    assert ledger.claim(member, "w", NOW) == 1
    assert ledger.transition(member, "w", domain.SENDING, NOW)
    redis_client.set(ledger.finished_key, "not a set")  # its id cannot be added now
    with pytest.raises(redis.ResponseError):
        ledger.transition(member, "w", domain.SENT, NOW)
    assert set(expiries(ledger).values()) == {-1}, "nothing expires whose id is not kept"


def test_the_start_gives_the_matches_finished_without_an_expiry_theirs_and_leaves_the_rest(redis_client):
    older = RedisDeliveryLedger(redis_client, keep_s=0)  # as before this version, or with keep 0
    finished = [f"f{i}~x" for i in range(5)]
    for pair_id in finished:
        assert older.record_match(pair_id, "ev", {"pair_id": pair_id}, NOW)
        assert older.claim(f"m:{pair_id}", "t0", NOW) == 1
        sent = new_delivery("a@example.rs", pair_id=pair_id, org_id="f", partner_id="x")
        assert older.expand(pair_id, "t0", NOW, [sent]) == 1
        send(older, f"d:{sent.id}")
    [waiting] = expanded(older, new_delivery())  # a~b: its delivery still pending
    assert older.record_match("p~q", "ev", {"pair_id": "p~q"}, NOW)  # not even expanded yet
    redis_client.expire(older.match_key("f0~x"), 600)  # one that expires already keeps its time

    ledger = RedisDeliveryLedger(redis_client, keep_s=KEEP_S)
    assert ledger.expire_finished(batch=2) == 4  # over three batches; f0~x had its expiry
    assert 590 <= redis_client.ttl(ledger.match_key("f0~x")) <= 600
    for pair_id in finished[1:]:
        assert all(KEEP_S - 5 <= ttl <= KEEP_S for ttl in expiries(ledger, pair_id).values()), pair_id
    assert all(ledger.was_finished(pair_id) for pair_id in finished)
    assert set(expiries(ledger).values()) == {-1} and not ledger.was_finished("a~b")
    assert redis_client.ttl(ledger.match_key("p~q")) == -1
    assert ledger.expire_finished() == 0, "the next start finds nothing more to do"
    # the one still pending expires once it is sent, as any other
    send(ledger, waiting)
    assert all(KEEP_S - 5 <= ttl <= KEEP_S for ttl in expiries(ledger).values())
