"""A coordinator's queue, measured: the review API's one query (ReviewService.list_for_cluster, what
GET /v1/suggestions and the coordinators' page ask) over a cluster with --pending pending
suggestions, each with a partner's profile, on a real redis-server (started here). A filtered
request reads every pending pair of the cluster and every partner's profile (a filter or a search
by name may need any of them), so its cost grows with the queue.

Two ways of reading the records, in alternating blocks in one run: each record parsed at every
request (as before the records were kept parsed: ParsedRecords with room for none), and the
records kept parsed by their stored text (RedisMatcherState's own, ParsedRecords). Prints this
thread's CPU time a request (p50) of each, and their ratio, for the first page by score (the queue
as it opens reads only its page), the same page with the whole cluster read (a filter every pair
passes: what the first page cost before it read only its page), and a search by name. Usage:
python bench/review_list.py [--pending 1000] [--requests 200] [--blocks 6]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import redis  # noqa: E402
from engine_speed import generate  # noqa: E402

from launcher.servers import RedisServer  # noqa: E402
from partnermatch import events  # noqa: E402
from services.matcher.adapters.redis_state import PairWrite, ParsedRecords, ProfileChange, RedisMatcherState  # noqa: E402
from services.matcher.review import ReviewService  # noqa: E402

CLUSTER = "c-queue"


def _reasons(rng: random.Random, a: dict, b: dict) -> list[dict]:
    """Reasons shaped as the engine's: a concept, its kind and direction, a weight and the words
    of each side that show it."""
    words_a, words_b = a["capabilities"].split(), b["goals"].split() or b["capabilities"].split()
    return [
        {
            "concept": rng.choice(["ict.software", "metal.cnc", "agrifood.dairy", "logistics", "tourism"]),
            "kind": rng.choice(["sector", "term", "activity"]),
            "direction": rng.choice(["a_offers_b_seeks", "b_offers_a_seeks", "shared"]),
            "weight": round(rng.random() / 4, 4),
            "terms_a": rng.sample(words_a, min(3, len(words_a))),
            "terms_b": rng.sample(words_b, min(3, len(words_b))),
        }
        for _ in range(rng.randint(2, 5))
    ]


def _profile(o: dict, cluster: str) -> dict:
    return {
        "org_id": o["id"],
        "revision": 1,
        "cluster_id": cluster,
        "name": o["name"],
        "country": "PL",
        "language": o["language"] or "en",
        "capabilities": o["capabilities"],
        "goals": o["goals"],
        "sectors": [],
        "website": None,
    }


def build(state: RedisMatcherState, pending: int) -> None:
    """One organisation of the queue's cluster per ten pairs, each pair with a partner of another
    cluster; written as the matcher writes them (profile events with their pairs)."""
    rng = random.Random(11)
    orgs = generate(pending + pending // 10 + 1, seed=23)
    own, partners = orgs[: pending // 10 + 1], orgs[pending // 10 + 1 :]
    for o in own:
        assert state.apply(ProfileChange(o["id"], 1, _profile(o, CLUSTER)))
    for i, p in enumerate(partners):
        a = own[i % len(own)]
        org_a, org_b = sorted((a["id"], p["id"]))
        clusters = {a["id"]: CLUSTER, p["id"]: f"c-{i % 40}"}
        write = PairWrite(
            events.pair_id(org_a, org_b),
            org_a,
            org_b,
            clusters[org_a],
            clusters[org_b],
            round(rng.random(), 6),
            _reasons(rng, a, p),
        )
        assert state.apply(ProfileChange(p["id"], 1, _profile(p, clusters[p["id"]]), upserts=[write]))


def timed(review: ReviewService, requests: int, **query: object) -> list[float]:
    spent = []
    for _ in range(requests):
        started = time.thread_time()
        items, total = review.list_for_cluster(CLUSTER, **query)  # type: ignore[arg-type]
        spent.append(time.thread_time() - started)
        assert items and total
    return spent


def kinds(page: dict, name: str) -> list[tuple[str, dict]]:
    """The requests timed: the queue as it opens (its page read alone), the same page with a filter
    every pair passes (the whole cluster read, as any filtered query and as the first page did
    before), and a search by a name's first word."""
    return [
        ("first page", page),
        ("first page, whole cluster read", {**page, "min_score": -1.0}),
        ("search by name", {**page, "q": name.split()[0]}),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=1000, help="pending suggestions of the cluster")
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind in a block")
    parser.add_argument("--blocks", type=int, default=6, help="blocks of each way, alternating")
    args = parser.parse_args()
    page = {"state": "pending", "sort": "score", "lang": "en", "offset": 0, "limit": 20}
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        try:
            client = redis.Redis.from_url(server.url)
            build(RedisMatcherState(client), args.pending)
            name = json.loads(client.get(f"{{matcher}}:profile:{generate(1, seed=23)[0]['id']}") or b"{}")["name"]
            found: dict[str, dict[str, list[float]]] = {"parsed at every request": {}, "kept parsed": {}}
            for block in range(2 * args.blocks):
                way = "kept parsed" if block % 2 else "parsed at every request"
                state = RedisMatcherState(client)
                if way == "parsed at every request":
                    state._parsed, state._parsed_profiles = ParsedRecords(0), ParsedRecords(0)
                review = ReviewService(state, render=lambda reason, lang: reason["concept"])
                timed(review, 3, **page)  # the first requests fill what is kept
                for kind, query in kinds(page, name):
                    found[way].setdefault(kind, []).extend(timed(review, args.requests, **query))
            print(f"a cluster with {args.pending:,} pending suggestions, {args.blocks} blocks of each way in turn:")
            for kind, _ in kinds(page, name):
                before, after = (1000 * statistics.median(found[way][kind]) for way in found)
                print(
                    f"  {kind}: parsed at every request {before:.2f} CPU ms a request, kept parsed "
                    f"{after:.2f} (ratio {after / before:.2f})"
                )
            one, five, fifteen = os.getloadavg()
            print(f"load average at the end (1, 5, 15 min): {one:.2f} {five:.2f} {fifteen:.2f}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
