"""The ledger's keys: the notifier built from a `redis+cluster://` URL keeps its ledger on a real
three-node Redis Cluster, and a ledger written before the keys had a hash tag is moved to the
tagged names once, on one redis-server, with nothing lost."""

from __future__ import annotations

import logging
import socket
from dataclasses import replace

import redis

from services.notifier import domain
from services.notifier.adapters.redis_ledger import NewDelivery, RedisDeliveryLedger
from services.notifier.bootstrap import build_deps
from services.notifier.config import NotifierSettings
from services.notifier.entrypoints.consumer import Notifier

NOW = 1_800_000_000.0


def delivery(email: str) -> NewDelivery:
    return NewDelivery(
        id=domain.delivery_id("a~b", email), org_id="a", partner_id="b", side="a", recipient=domain.recipient_key(email)
    )


def send_one(ledger: RedisDeliveryLedger) -> str:
    assert ledger.record_match("a~b", "ev-1", {"pair_id": "a~b"}, NOW)
    assert ledger.claim("m:a~b", "t0", NOW) == 1
    assert ledger.expand("a~b", "t0", NOW, [delivery("jelena@example.rs")]) == 1
    [member] = ledger.due(NOW)
    assert ledger.claim(member, "t1", NOW) == 1
    assert ledger.transition(member, "t1", domain.SENDING, NOW)
    assert ledger.transition(member, "t1", domain.SENT, NOW)
    assert ledger.suppress("marko@example.rs", "b", "2026-01-01T00:00:00+00:00")
    assert ledger.note_suggested("c~d", ["pl-silesia-ict"], NOW) == 1
    return member


def test_the_notifier_keeps_its_ledger_on_a_redis_cluster(redis_cluster, redis_cluster_client):
    settings = NotifierSettings(redis_url=redis_cluster.url, kafka_bootstrap="unused:9092", secret_key="k")
    ledger = build_deps(settings).ledger
    assert isinstance(ledger.r, redis.RedisCluster)
    member = send_one(ledger)
    assert ledger.take_digest("pl-silesia-ict", 1, NOW + 1, NOW + 2) == 1
    assert ledger.delivery(member[2:])["state"] == domain.SENT
    assert ledger.is_suppressed("marko@example.rs")
    counts = ledger.counts()
    assert counts["unsubscribes"] == 1 and counts["backlog"] == 1, "the digest is due"
    slots = {redis_cluster_client.keyslot(k) for k in redis_cluster_client.scan_iter("*")}
    assert slots == {redis_cluster_client.keyslot(ledger.due_key)}, "one slot: scripts may touch any"


def test_a_ledger_from_before_the_hash_tag_is_moved_once_with_nothing_lost(redis_client):
    untagged = RedisDeliveryLedger(redis_client, prefix="notifier:")
    member = send_one(untagged)
    before = {k: redis_client.dump(k) for k in redis_client.scan_iter("notifier:*")}
    ledger = RedisDeliveryLedger(redis_client)
    assert ledger.adopt_untagged_keys() == len(before)
    assert list(redis_client.scan_iter("notifier:*")) == []
    for key, dump in before.items():
        assert redis_client.dump(ledger.prefix + key.decode()[len("notifier:") :]) == dump
    assert ledger.delivery(member[2:])["state"] == domain.SENT
    assert ledger.is_suppressed("marko@example.rs")
    assert ledger.clusters_with_new_suggestions() == ["pl-silesia-ict"]

    untagged.suppress("late@example.rs", "b", "2026-01-01T00:00:00+00:00")
    assert ledger.adopt_untagged_keys() == 0, "once: a marker says it is done"


def test_a_notifiers_start_gives_the_matches_finished_before_their_expiry_and_starts_if_redis_fails(
    redis_server, redis_client, caplog
):
    older = RedisDeliveryLedger(redis_client, keep_s=0)  # as the notifier before expiries wrote it
    send_one(older)
    match = older.match_key("a~b")
    assert redis_client.ttl(match) == -1
    settings = NotifierSettings(
        redis_url=redis_server.url, kafka_bootstrap="unused:9092", secret_key="k", ledger_keep_days=2
    )
    deps = build_deps(settings)
    caplog.set_level(logging.INFO, "services.notifier.entrypoints.consumer")
    Notifier(settings, deps).expire_finished()
    assert 2 * 86400 - 5 <= redis_client.ttl(match) <= 2 * 86400
    assert "now expire" in caplog.text

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = redis.Redis(port=port, socket_connect_timeout=0.5)
    Notifier(settings, replace(deps, ledger=RedisDeliveryLedger(gone, keep_s=86400))).expire_finished()
    assert "the next start tries again" in caplog.text


def test_the_stacks_redis_keeps_a_sent_match_and_its_delivery_as_compact_hashes(redis_client):
    # The redis-server the stack runs (launcher.servers.REDIS_TUNING, also docker-compose.yml) keeps
    # the ledger's hashes as listpacks although their values pass Redis's default 64 bytes: a match
    # holds the event's payload with the reasons, a sent delivery its Message-ID and the SMTP reply.
    ledger = RedisDeliveryLedger(redis_client)
    reasons = [
        {
            "concept": "tourism",
            "kind": "sector",
            "direction": "a_offers_b_seeks",
            "weight": 0.21,
            "terms_a": ["seoski turizam", "smeštaj u domaćinstvima"],
            "terms_b": ["agroturystyka", "noclegi na wsi"],
        }
    ] * 5
    payload = {"pair_id": "a~b", "org_a": "a", "org_b": "b", "score": 0.8, "reasons": reasons}
    assert ledger.record_match("a~b", "ev-1", payload, NOW)
    assert ledger.claim("m:a~b", "t0", NOW) == 1
    new = delivery("jelena@example.rs")
    assert ledger.expand("a~b", "t0", NOW, [new]) == 1
    [member] = ledger.due(NOW)
    assert ledger.claim(member, "t1", NOW) == 1
    assert ledger.transition(member, "t1", domain.SENDING, NOW)
    fields = {
        "message_id": domain.message_id(new.id, "partners.clusters.example.org"),
        "smtp_reply": "250 2.0.0 Ok: queued as 4XkF2v1Zb9z3Jq8 (accepted for delivery to jelena@example.rs)",
    }
    assert all(len(value) > 64 for value in fields.values())
    assert ledger.transition(member, "t1", domain.SENT, NOW, fields=fields)
    assert ledger.delivery(new.id)["message_id"] == fields["message_id"]
    match_key = ledger.match_key("a~b")
    assert len(redis_client.hget(match_key, "payload") or b"") > 1024
    for key in (match_key, ledger.delivery_key(new.id)):
        assert redis_client.object("encoding", key) == b"listpack", key
