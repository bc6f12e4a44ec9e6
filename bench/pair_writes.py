"""What one profile write makes the matcher do to its pairs: the pairs its plan reads (the lists it
changed, each partner of each), and the steps it writes, by kind, each a record, its lists and
an event on `matches` that the relay, the notifier and every coordinator's page then carry.

N organisations are indexed one event at a time through the live matcher's own code on a real
redis-server (no Kafka), then --writes writes follow, one at a time: registrations and PATCHes in
turn, as bench/post_visible.py sends them, with the texts of organisations that state needs
(tests/data/seekers; --texts generated: bench/engine_speed.py's generated ones instead). Per
write it prints the pairs planned, the steps written by kind, and for re-scored pairs how much
the score moved; and how many writes left their organisation with no pending pair.
Usage: python bench/pair_writes.py [--n 2000] [--writes 300] [--texts seekers|generated] [--displace-margin M]
Does I/O (a redis-server).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import redis  # noqa: E402
from engine_speed import generate  # noqa: E402
from event_path import payload  # noqa: E402
from post_visible import seeker_texts  # noqa: E402

from launcher.servers import RedisServer  # noqa: E402
from partnermatch import events  # noqa: E402
from services.matcher import domain  # noqa: E402
from services.matcher.adapters import redis_state  # noqa: E402
from services.matcher.config import MatcherSettings  # noqa: E402
from services.matcher.engine import MatchEngine  # noqa: E402
from services.matcher.live import LiveMatcher  # noqa: E402


class StepCount:
    """Counts what domain.pair_steps decides, as the matcher's state calls it."""

    def __init__(self) -> None:
        self.pair_steps = domain.pair_steps
        self.kinds: Counter[str] = Counter()
        self.moved: list[float] = []
        self.withdrawn: set[str] = set()  # the pairs withdrawn in this run (the state keeps no record of one)

    def __call__(
        self,
        existing: Mapping[str, domain.PairRecord],
        upserts: Iterable[domain.PairWrite],
        withdrawals: Iterable[tuple[str, str]],
        now: int,
        unlisted: Iterable[tuple[str, str]] = (),
        clusters: Mapping[str, str] = {},  # noqa: B006 - read only, as domain.pair_steps's
    ) -> list[domain.PairSaved]:
        upserts, withdrawals, unlisted = list(upserts), list(withdrawals), list(unlisted)
        steps = self.pair_steps(existing, upserts, withdrawals, now, unlisted, clusters)
        self.kinds["pairs planned (suggest)"] += len(upserts)
        self.kinds["pairs planned (out of a list)"] += len(unlisted)
        self.kinds["pairs planned (withdraw)"] += len(withdrawals)
        wanted = {w.pair_id: w for w in upserts}
        for step in steps:
            old = existing.get(step.record["pair_id"])
            self.kinds["steps written"] += 1
            self.kinds["events"] += step.event is not None
            if step.step != "suggested":
                self.kinds[f"  {step.step}"] += 1
                if step.step == "withdrawn":
                    self.withdrawn.add(step.record["pair_id"])
            elif old is None and step.record["pair_id"] in self.withdrawn:
                self.withdrawn.discard(step.record["pair_id"])
                self.kinds["  suggested again, was withdrawn"] += 1
            elif old is None:
                self.kinds["  suggested, new"] += 1
            elif old["state"] != domain.PENDING:
                self.kinds[f"  suggested again, was {old['state']}"] += 1
            elif abs(old["score"] - wanted[old["pair_id"]].score) >= 1e-6:
                self.kinds["  re-scored"] += 1
                self.moved.append(abs(old["score"] - wanted[old["pair_id"]].score))
            else:
                self.kinds["  suggested again, other reasons or clusters"] += 1
        return steps


def writes(orgs: list[dict], count: int, texts: list[dict], rng: random.Random) -> Iterable[dict]:
    """Registrations and PATCHes in turn, each PATCH to another organisation (post_visible's mix)."""
    clusters = sorted({o["cluster"] for o in orgs})
    targets = orgs[:]
    rng.shuffle(targets)
    for i in range(count):
        text = texts[i % len(texts)]
        if i % 2 and targets:
            o = targets.pop()
            goals = f"{text['goals']} ({uuid.uuid4().hex[:8]})"
            yield payload({**o, "capabilities": text["capabilities"], "goals": goals}, revision=2)
        else:
            o = {"id": f"org_w{i:06d}", "cluster": rng.choice(clusters), "name": f"Writer {i}", **text}
            yield payload({**o, "language": text.get("language")})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="organisations indexed before the writes")
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--texts", choices=("seekers", "generated"), default="seekers")
    parser.add_argument(
        "--displace-margin",
        type=float,
        default=MatcherSettings.displace_margin,
        help="MATCHER_DISPLACE_MARGIN (default: the setting's)",
    )
    args = parser.parse_args()
    count = StepCount()
    redis_state.domain.pair_steps = count  # the state's only call of it
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        try:
            state = redis_state.RedisMatcherState(redis.Redis.from_url(server.url))
            live = LiveMatcher(
                state,
                MatchEngine(),
                top_k=5,
                min_score=0.05,
                max_pending_per_org=8,
                displace_margin=args.displace_margin,
            )
            live.load()
            orgs = generate(args.n, seed=17)
            for o in orgs:
                live.handle(events.new_event(events.PROFILE_UPSERTED, payload(o), "bench"))
            count.kinds.clear()
            count.moved.clear()
            texts = seeker_texts() if args.texts == "seekers" else generate(max(args.writes, 1), seed=29)
            alone = 0  # writes after which their organisation has no pending pair
            for p in writes(orgs, args.writes, texts, random.Random(3)):
                live.handle(events.new_event(events.PROFILE_UPSERTED, p, "bench"))
                alone += not state.pending_of_org(p["org_id"])
        finally:
            server.stop()
    print(
        f"{args.n} organisations indexed; {args.writes} writes ({args.texts} texts, displace margin "
        f"{args.displace_margin}), one at a time; per write:"
    )
    for kind, n in count.kinds.items():
        print(f"  {kind:<48} {n / args.writes:7.2f}")
    print(f"  writes leaving their organisation no pending pair: {alone} of {args.writes}")
    if count.moved:
        moved = sorted(count.moved)
        print(
            "  how far re-scored pairs moved: "
            + ", ".join(f"p{q} {moved[min(len(moved) - 1, len(moved) * q // 100)]:.3f}" for q in (10, 50, 90))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
