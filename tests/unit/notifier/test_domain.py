"""The ledger's rules: ids, retry delays, what SMTP replies mean, which transitions exist."""

from __future__ import annotations

import random

from services.notifier import domain


def test_a_delivery_id_is_the_same_for_the_same_match_and_recipient_whatever_the_case():
    assert domain.delivery_id("a~b", "Jelena@Example.RS ") == domain.delivery_id("a~b", "jelena@example.rs")
    assert domain.delivery_id("a~b", "x@example.org") != domain.delivery_id("a~c", "x@example.org")
    assert domain.delivery_id("a~b", "x@example.org") != domain.delivery_id("a~b", "y@example.org")


def test_the_recipient_key_does_not_contain_the_address():
    key = domain.recipient_key("jelena@example.rs")
    assert "jelena" not in key and len(key) == 32


def test_message_id_is_deterministic_and_well_formed():
    assert domain.message_id("abc", "partnermatch.example") == "<partnermatch.abc@partnermatch.example>"


def test_retry_delay_grows_exponentially_with_jitter_and_is_capped():
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(3600, 60 * 2 ** (attempt - 1))
        for _ in range(50):
            delay = domain.retry_delay(attempt, 60, 3600, rng)
            assert ceiling / 2 <= delay <= ceiling
    delays = {round(domain.retry_delay(3, 60, 3600, rng), 3) for _ in range(20)}
    assert len(delays) > 10, "jitter spreads retries out"
    assert domain.retry_delay(100, 60, 3600, rng) <= 3600


def test_4xx_and_no_reply_are_temporary_and_5xx_is_permanent():
    assert domain.classify_smtp_code(451) == domain.TEMPORARY
    assert domain.classify_smtp_code(421) == domain.TEMPORARY
    assert domain.classify_smtp_code(None) == domain.TEMPORARY
    assert domain.classify_smtp_code(550) == domain.PERMANENT
    assert domain.classify_smtp_code(554) == domain.PERMANENT


def test_final_states_can_never_be_claimed_again():
    for final in (domain.SENT, domain.FAILED, domain.SKIPPED, domain.UNCERTAIN):
        assert not domain.may_move(final, domain.CLAIMED)
        assert not domain.may_move(final, domain.SENDING)


def test_only_a_message_in_sending_can_become_uncertain_and_nothing_leaves_sent():
    assert domain.TRANSITIONS[domain.UNCERTAIN] == (domain.SENDING,)
    assert all(domain.SENT not in sources for sources in domain.TRANSITIONS.values())


def test_uncertain_can_become_sent_on_a_late_reply_or_pending_when_an_operator_releases_it():
    assert domain.may_move(domain.UNCERTAIN, domain.SENT)
    assert domain.may_move(domain.UNCERTAIN, domain.PENDING)
    assert not domain.may_move(domain.UNCERTAIN, domain.RETRY)
