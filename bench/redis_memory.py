"""Redis memory per organisation and per pending suggestion (issue 17), through the services' own
code: the profiles use case registers N generated organisations (profile, token, indexes, outbox
entry); the live matcher indexes them and handles one upsert of each, which writes its pending
suggestions; the notifier's recorder reads the matcher's suggestion events, as its consumer does,
and counts them for the digests.

Every key is measured with MEMORY USAGE (SAMPLES 0: all of a collection) and grouped by its name
with the ids taken out; INFO used_memory before and after each service is printed beside the sum,
as a check. An outbox is counted apart: its relay empties it within a second. One redis-server
(started here, as `partnermatch up` does), one database per service.
Each class of keys is printed with how Redis holds them (OBJECT ENCODING): a hash in a compact
listpack, or as a hash table once a value passes hash-max-listpack-value. The server runs with the
stack's settings (launcher.servers.REDIS_TUNING); --redis-config NAME VALUE sets one otherwise, to
compare (hash-max-listpack-value 64 is Redis's default).
Usage: python bench/redis_memory.py [--orgs 2000] [--edits 0] [--approved 0] [--redis-config NAME VALUE]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import redis  # noqa: E402
from engine_speed import generate  # noqa: E402

from launcher.servers import REDIS_TUNING, RedisServer  # noqa: E402
from partnermatch import events  # noqa: E402
from services.matcher.adapters.redis_state import RedisMatcherState  # noqa: E402
from services.matcher.engine import MatchEngine  # noqa: E402
from services.matcher.live import LiveMatcher  # noqa: E402
from services.matcher.review import ReviewService  # noqa: E402
from services.notifier.adapters.redis_ledger import RedisDeliveryLedger  # noqa: E402
from services.notifier.config import NotifierSettings  # noqa: E402
from services.notifier.services import DecisionRecorder, DeliveryWorker  # noqa: E402
from services.notifier.tokens import UnsubscribeTokens  # noqa: E402
from services.profiles import services as profiles  # noqa: E402
from services.profiles.adapters.redis_store import RedisProfileStore  # noqa: E402

PROFILES_DB, MATCHER_DB, NOTIFIER_DB = 0, 1, 2
_ID_PART = re.compile(r"^(?=.*\d)[^:]+$|^[^:]{24,}$")  # a segment with a digit, or a long digest


def key_class(key: bytes) -> str:
    return ":".join("<id>" if _ID_PART.match(part) else part for part in key.decode().split(":"))


# Key class -> how Redis holds its keys (OBJECT ENCODING: listpack, hashtable...) -> how many, as
# measure() last found them
ENCODINGS: dict[str, Counter[str]] = {}


def measure(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """Key class -> (keys, bytes) of every key of the client's database (and their ENCODINGS)."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    encodings: dict[str, Counter[str]] = defaultdict(Counter)
    for key in client.scan_iter(count=1000):
        name = key_class(key)
        entry = found[name]
        entry[0] += 1
        entry[1] += int(client.memory_usage(key, samples=0) or 0)
        encoding = client.object("encoding", key)
        encodings[name][encoding.decode() if isinstance(encoding, bytes) else str(encoding)] += 1
    ENCODINGS.update(encodings)
    return {name: (n, size) for name, (n, size) in found.items()}


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def report(title: str, classes: dict[str, tuple[int, int]], per: dict[str, int], delta: int) -> None:
    print(f"\n{title} (INFO used_memory grew by {delta / 1e6:.2f} MB)")
    for name, (n, size) in sorted(classes.items(), key=lambda item: -item[1][1]):
        held = ", ".join(f"{encoding} {count}" for encoding, count in ENCODINGS.get(name, Counter()).most_common())
        print(f"  {name:<44} {n:>8} keys {size / 1e6:>9.2f} MB  ({held})")
    for what, count in per.items():
        total = sum(size for name, (_n, size) in classes.items() if not name.endswith("outbox"))
        print(f"  per {what}: {total / max(count, 1):,.0f} bytes (outbox aside; {count} of them)")


def outbox_bytes(classes: dict[str, tuple[int, int]]) -> int:
    return sum(size for name, (_n, size) in classes.items() if name.endswith("outbox"))


def pair_records(client: redis.Redis) -> tuple[Counter[str], Counter[str]]:
    """The matcher's pair records by state: how many, and their bytes."""
    states: Counter[str] = Counter()
    state_bytes: Counter[str] = Counter()
    for key in client.scan_iter("{matcher}:pair:*", count=1000):
        pair_state = json.loads(client.get(key))["state"]
        states[pair_state] += 1
        state_bytes[pair_state] += int(client.memory_usage(key, samples=0) or 0)
    return states, state_bytes


def published(client: redis.Redis, state: RedisMatcherState) -> Counter[str]:
    """The events in the matcher's outbox (the bench runs no relay), by type."""
    return Counter(events.decode(d[b"value"]).event_type for _i, d in client.xrange(state.outbox.stream))


def kept_bytes(client: redis.Redis) -> int:
    """The bytes of the matcher's keys, its outbox aside (its relay empties it within a second)."""
    classes = measure(client)
    return sum(size for _n, size in classes.values()) - outbox_bytes(classes)


class StoredProfiles:
    """The profiles service as the notifier's worker reads it (ProfilesClient's answers), from the
    profiles store in this process: no HTTP."""

    def __init__(self, store: RedisProfileStore) -> None:
        self.store = store

    def organisation(self, org_id: str) -> dict | None:
        org = self.store.get_org(org_id)
        return {k: v for k, v in org.items() if k != "contacts"} if org else None

    def contacts(self, org_id: str) -> list | None:
        org = self.store.get_org(org_id)
        return list(org.get("contacts", [])) if org else None

    def coordinator(self, username: str) -> dict | None:
        return self.store.get_coordinator(username)

    def cluster(self, cluster_id: str) -> dict | None:
        return self.store.get_cluster(cluster_id)

    def cluster_coordinators(self, cluster_id: str) -> list | None:
        return self.store.cluster_coordinators(cluster_id)


class AcceptingMailer:
    """An SMTP server that accepts every message (the worker's ledger writes are the real ones)."""

    def __init__(self) -> None:
        self.sent = 0

    def send(
        self,
        msg: EmailMessage,
        sender: str,
        recipient: str,
        before_data: Callable[[], bool],
        on_accepted: Callable[[str], None],
    ) -> None:
        if before_data():
            self.sent += 1
            on_accepted(f"250 2.0.0 Ok: queued as {self.sent:012X}")


def approvals(
    count: int, matcher_r: redis.Redis, state: RedisMatcherState, store: RedisProfileStore, notifier_r: redis.Redis
) -> None:
    """`count` pending pairs approved by both clusters (the review's decide), the matcher's events
    of them handled by the notifier's recorder, and its worker sending every email (the profiles
    store read in this process, an SMTP server that accepts all): the ledger's keys per approved
    match, and their expiry (NOTIFIER_LEDGER_KEEP_DAYS's default)."""
    review = ReviewService(state, render=lambda reason, lang: reason["concept"])
    pending = sorted(k.decode().removeprefix("{matcher}:pair:") for k in matcher_r.scan_iter("{matcher}:pair:*"))
    last = matcher_r.xrevrange(state.outbox.stream, count=1)
    mark = last[0][0].decode() if last else "0-0"
    for pair_id in pending[:count]:
        pair = state.get_pair(pair_id)
        assert pair is not None, "listed just now"
        for cluster in (pair["cluster_a"], pair["cluster_b"]):
            review.decide(cluster, "bench", pair_id, "approve")
    decided = [events.decode(d[b"value"]) for _i, d in matcher_r.xrange(state.outbox.stream, min=f"({mark}")]
    ledger = RedisDeliveryLedger(notifier_r)
    before = measure(notifier_r)
    recorder = DecisionRecorder(ledger)
    for envelope in decided:
        recorder.handle(envelope)
    mailer = AcceptingMailer()
    settings = NotifierSettings(redis_url="", kafka_bootstrap="", secret_key="bench-" * 8)
    worker = DeliveryWorker(
        ledger=ledger,
        profiles=StoredProfiles(store),
        mailer=mailer,
        tokens=UnsubscribeTokens(settings.secret_key or ""),
        settings=settings,
    )
    worker.drain(max_passes=10 * count + 10)
    after = measure(notifier_r)
    grown = {
        name: (n - before.get(name, (0, 0))[0], size - before.get(name, (0, 0))[1])
        for name, (n, size) in after.items()
        if name.startswith(("{notifier}:match", "{notifier}:delivery", "{notifier}:finished"))
    }
    approved = sum(e.event_type == events.MATCH_APPROVED for e in decided)
    print(f"\n{approved} pairs approved by both clusters; the notifier sent {mailer.sent} emails")
    for name, (n, size) in sorted(grown.items()):
        held = ", ".join(f"{encoding} {count}" for encoding, count in ENCODINGS.get(name, Counter()).most_common())
        print(f"  {name:<44} {n:>8} keys {size / 1e6:>9.2f} MB  ({held})")
    # the coordinators' notices that the other cluster decided (none sent here: no coordinators)
    notices = {name for name in grown if name.startswith("{notifier}:match:decided")}
    kept = {"{notifier}:finished"}  # the ids of finished matches and notices, kept for ever
    total = sum(size for name, (_n, size) in grown.items() if name not in notices | kept)
    print(
        f"  per approved match: {total / max(approved, 1):,.0f} bytes (its record, its set of deliveries, "
        f"{mailer.sent / max(approved, 1):.1f} deliveries; the decision notices apart), until they expire"
    )
    ids = notifier_r.scard("{notifier}:finished")
    print(
        f"  then kept for ever: {grown.get('{notifier}:finished', (0, 0))[1] / max(ids, 1):,.0f} bytes an id in "
        f"the set of finished ones ({ids} ids, the decision notices' too)"
    )
    ttls: Counter[str] = Counter()
    for key in notifier_r.scan_iter("{notifier}:*", count=1000):
        if key.startswith((b"{notifier}:match:", b"{notifier}:delivery:")):
            ttl = notifier_r.ttl(key)
            ttls["kept for ever" if ttl < 0 else f"expire within {math.ceil(ttl / 86400)} days"] += 1
    print(f"  their keys: {dict(ttls)}")


def edits(live: LiveMatcher, client: redis.Redis, state: RedisMatcherState, registered: list, count: int) -> None:
    """`count` edits, in turn over the organisations: each one's capabilities and goals replaced by
    a new generated organisation's, handled by the live matcher; then what the
    matcher's keys hold."""
    texts = generate(count, seed=23)
    latest = {e.payload["org_id"]: e.payload for e in registered}
    order = list(latest)  # in the order they registered: their ids are random, and differ each run
    withdrawn_before = published(client, state)[events.MATCH_WITHDRAWN]
    before, (states_before, records_before) = kept_bytes(client), pair_records(client)
    t = time.perf_counter()
    for i, new in enumerate(texts):
        org = order[i % len(order)]
        payload = {
            **latest[org],
            "revision": latest[org]["revision"] + 1,
            "capabilities": new["capabilities"],
            "goals": new["goals"],
        }
        latest[org] = payload
        live.handle(events.new_event(events.PROFILE_UPSERTED, payload, "bench"))
    took = time.perf_counter() - t
    after, (states_after, records_after) = kept_bytes(client), pair_records(client)
    withdrawn = published(client, state)[events.MATCH_WITHDRAWN] - withdrawn_before
    print(
        f"\n{count} edits (each an organisation's texts replaced) handled in {took:.1f} s: {withdrawn} pairs withdrawn"
    )
    print(
        f"  pair records: {dict(states_before)}, {records_before.total() / 1e6:.2f} MB before; "
        f"{dict(states_after)}, {records_after.total() / 1e6:.2f} MB after"
    )
    print(f"  the matcher's keys, its outbox aside: {before / 1e6:.2f} MB before, {after / 1e6:.2f} MB after")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=2000)
    parser.add_argument("--top-k", type=int, default=5, help="suggestions kept per organisation")
    parser.add_argument(
        "--edits",
        type=int,
        default=0,
        help="then this many edits (in turn, each organisation's texts replaced by new ones), and the "
        "matcher's pairs again: what its memory keeps of the suggestions the edits replaced",
    )
    parser.add_argument(
        "--approved",
        type=int,
        default=0,
        help="then this many pending pairs approved by both clusters and their emails sent by the notifier: "
        "what its ledger keeps of each, and for how long",
    )
    parser.add_argument(
        "--redis-config",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="run redis-server with this setting instead of the stack's (launcher.servers.REDIS_TUNING) or "
        "Redis's default, e.g. hash-max-listpack-value 64 (Redis's default) to compare",
    )
    args = parser.parse_args()
    config = {**REDIS_TUNING, **dict(args.redis_config)}
    print("redis-server with " + ", ".join(f"{name} {value}" for name, value in config.items()))
    generated = generate(args.orgs, seed=17)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", extra_options=dict(args.redis_config))
        try:
            url = f"redis://127.0.0.1:{server.port}/"
            profiles_r, matcher_r, notifier_r = (
                redis.Redis.from_url(url + str(db)) for db in (PROFILES_DB, MATCHER_DB, NOTIFIER_DB)
            )

            before = used_memory(profiles_r)
            store = RedisProfileStore(profiles_r)
            t = time.perf_counter()
            for cluster in sorted({o["cluster"] for o in generated}):
                profiles.create_cluster(store, {"id": cluster, "name": f"Cluster {cluster}", "country": "XX"})
            payloads = []
            for i, o in enumerate(generated):
                org, _token = profiles.register_org(
                    store,
                    {
                        "name": o["name"],
                        "cluster_id": o["cluster"],
                        "country": "RS",
                        "language": o["language"],
                        "capabilities": o["capabilities"],
                        "goals": o["goals"],
                        "sectors": ["ict"],
                        "website": f"https://org{i}.example.org",
                        "contacts": [
                            {
                                "name": f"Contact {i}",
                                "email": f"contact{i}@org{i}.example.org",
                                "consent": True,
                                "share_contact": i % 2 == 0,
                            }
                        ],
                    },
                )
                payloads.append(org)
            print(f"{args.orgs} organisations registered in {time.perf_counter() - t:.1f} s")
            classes = measure(profiles_r)
            report("profiles", classes, {"organisation": args.orgs}, used_memory(profiles_r) - before)
            print(
                f"  outbox (until its relay publishes): {outbox_bytes(classes) / args.orgs:,.0f} bytes per organisation"
            )

            before = used_memory(matcher_r)
            state = RedisMatcherState(matcher_r)
            live = LiveMatcher(state, MatchEngine(), top_k=args.top_k, min_score=0.05)
            live.load()
            events_out = [events.decode(d[b"value"]) for _i, d in profiles_r.xrange(store.outbox.stream)]
            t = time.perf_counter()
            for envelope in events_out:
                live.handle(envelope)
            print(f"\nthe live matcher handled {len(events_out)} upserts in {time.perf_counter() - t:.1f} s")
            states, state_bytes = pair_records(matcher_r)
            pending = states["pending"]
            classes = measure(matcher_r)
            per_org = sum(
                size
                for name, (_n, size) in classes.items()
                if name.startswith(("{matcher}:profile", "{matcher}:revisions"))
            )
            lists = sum(size for name, (_n, size) in classes.items() if name.startswith("{matcher}:pending"))
            report("matcher", classes, {}, used_memory(matcher_r) - before)
            print(f"  pairs by state: {dict(states)}")
            print(f"  per organisation (applied profile, revision, set): {per_org / args.orgs:,.0f} bytes")
            print(
                f"  per pending suggestion (its record, its places in two clusters' and two "
                f"organisations' lists): {(state_bytes['pending'] + lists) / max(pending, 1):,.0f} bytes"
            )
            for pair_state in sorted(set(states) - {"pending"}):
                print(
                    f"  per {pair_state} pair (its record, kept): "
                    f"{state_bytes[pair_state] / states[pair_state]:,.0f} bytes"
                )
            queued = published(matcher_r, state)
            print(
                f"  pairs withdrawn on the way: {queued[events.MATCH_WITHDRAWN]} (no record of one is kept: "
                f"its event says why)"
            )
            print(
                f"  outbox (until its relay publishes): "
                f"{outbox_bytes(classes) / max(queued.total(), 1):,.0f} bytes per event ({queued.total()} events)"
            )

            before = used_memory(notifier_r)
            recorder = DecisionRecorder(RedisDeliveryLedger(notifier_r))
            for _i, d in matcher_r.xrange(state.outbox.stream):
                recorder.handle(events.decode(d[b"value"]))
            classes = measure(notifier_r)
            report(
                "notifier (digest counts of pending pairs)",
                classes,
                {"pending suggestion": pending},
                used_memory(notifier_r) - before,
            )

            total = used_memory(profiles_r)
            print(
                f"\nwhole server: used_memory {total / 1e6:.1f} MB for {args.orgs} organisations "
                f"and {pending} pending suggestions, outboxes included"
            )
            if args.approved:
                approvals(args.approved, matcher_r, state, store, notifier_r)
            if args.edits:
                edits(live, matcher_r, state, events_out, args.edits)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
