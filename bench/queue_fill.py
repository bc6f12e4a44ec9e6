"""The coordinators' queue as they work it: how many suggestions each organisation has pending.

The live matcher (the real engine, the limits of pending pairs and the rejections' teaching as
deployed) takes the labelled sets' organisations (tests/data/devset and tests/data/seekers) one
profile event at a time; the pairs are kept in dicts (the in-memory repository of the unit tests:
the rules are the domain's, the same as Redis applies). Then:
1. pending per organisation, as the events leave them, and what planning every list again changes
   (three times, as after refreshes of the weights: a list that depends on the order of plans changes);
2. one rejection as "not relevant" of a pending pair of its own list, for a sample of
   organisations: pending before and after;
3. every pending pair of a sample of organisations approved, one decision at a time, then an
   edit of each: pending after.
A queue that works: the next best partner takes a decided one's place, so pending stays near
what it was (less the decided pair, and the places partners at their limit cannot give).

Usage: python bench/queue_fill.py [--sample 60] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import read_jsonl  # noqa: E402

from partnermatch import events  # noqa: E402
from services.matcher.config import MatcherSettings  # noqa: E402
from services.matcher.engine import MatchEngine, load_lexicon  # noqa: E402
from services.matcher.live import LiveMatcher  # noqa: E402
from tests.unit.matcher.test_feedback import FakeState  # noqa: E402


def upsert(org: dict, revision: int) -> events.Envelope:
    payload = {
        "org_id": org["id"],
        "revision": revision,
        "cluster_id": org["cluster"],
        "name": org.get("name", org["id"]),
        "country": org.get("country", ""),
        "language": org.get("language", "en"),
        "capabilities": org.get("capabilities", "") + " " * (revision - 1),  # an edit
        "goals": org.get("goals", ""),
        "sectors": [],
        "website": None,
        "offers": [],
        "seeks": [],
        "seeks_countries": [],
        "updated_at": datetime.now(UTC),
    }
    return events.new_event(events.PROFILE_UPSERTED, payload, "bench")


def spread(state: FakeState, ids: list[str]) -> str:
    counts = Counter(min(len(state.pending_of_org(o)), 9) for o in ids)
    under = sum(v for k, v in counts.items() if k < 5)
    return f"{dict(sorted(counts.items()))} (under 5: {under} of {len(ids)}; none: {counts.get(0, 0)})"


def labelled(state: FakeState, orgs: list[dict]) -> str:
    """Of the pending pairs (what coordinators see), the share of partners in a sector the seekers
    seek, and of the dev set's organisations' partners in their own sector (bench/quality.py's
    measures on the lists, here on the suggestions as the limits left them)."""
    by_id = {o["id"]: o for o in orgs}
    sought = [0, 0]
    same = [0, 0]
    for org in orgs:
        partners = [by_id[p.replace(org["id"], "").strip("~")] for p in state.pending_of_org(org["id"])]
        if "seeks" in org:
            sought[0] += sum(p["sector"] in org["seeks"] for p in partners)
            sought[1] += len(partners)
        else:
            same[0] += sum(p["sector"] == org["sector"] for p in partners)
            same[1] += len(partners)
    return (
        f"seekers' partners in a sector sought {sought[0] / max(sought[1], 1):.3f} ({sought[1]} pairs); "
        f"dev set's partners in its own sector {same[0] / max(same[1], 1):.3f} ({same[1]} pairs)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    orgs = read_jsonl(ROOT / "tests" / "data" / "devset") + read_jsonl(ROOT / "tests" / "data" / "seekers")
    defaults = MatcherSettings.from_env({})
    state = FakeState()
    live = LiveMatcher(
        state,  # type: ignore[arg-type]  # what the live matcher asks of a repository, in dicts
        MatchEngine(load_lexicon()),
        top_k=defaults.top_k,
        min_score=defaults.min_score,
        max_pending_per_org=defaults.max_pending_per_org,
        feedback_strength=defaults.feedback_strength,
        displace_margin=defaults.displace_margin,
    )
    started = time.monotonic()
    for org in orgs:
        live.handle(upsert(org, 1))
    ids = [o["id"] for o in orgs]
    print(f"{len(orgs)} organisations, one event each, in {time.monotonic() - started:.1f} s")
    print(f"pending per organisation: {spread(state, ids)}")
    print(f"pending partners that meet the labels: {labelled(state, orgs)}")
    for again in (1, 2, 3):  # as after a refresh of the weights: every list planned again, a run at a time
        as_were = {p: (r["state"], r["score"]) for p, r in state.pairs.items()}
        for start in range(0, len(ids), 25):
            state.apply_lesson(f"replan-{again}-{start}", live.plan_lists(set(ids[start : start + 25])))
        changed = sum(1 for p, r in state.pairs.items() if as_were.get(p) != (r["state"], r["score"]))
        pending = sum(1 for r in state.pairs.values() if r["state"] == "pending")
        print(f"every list planned again ({again}): {changed} pairs changed, {pending} pending")

    rng = random.Random(args.seed)
    by_id = {o["id"]: o for o in orgs}
    rejected = []
    for org_id in rng.sample(ids, min(args.sample, len(ids))):
        pending = state.pending_of_org(org_id)
        own = [events.pair_id(org_id, c.id) for c in live._top(org_id)]
        listed = [pair_id for pair_id in own if pair_id in pending]
        if not listed:
            continue
        live.handle_decision(state.reject(listed[0], by_id[org_id]["cluster"], "not_relevant"))
        rejected.append((len(pending), len(state.pending_of_org(org_id))))
    before = sum(b for b, _ in rejected) / len(rejected)
    after = sum(a for _, a in rejected) / len(rejected)
    print(
        f"one rejection as not relevant, {len(rejected)} organisations: pending {before:.2f} before, {after:.2f} "
        f"after (the rejected pair itself is one); fewer than 3 after: {sum(a < 3 for _, a in rejected)}"
    )

    approved = []
    for org_id in rng.sample(ids, min(args.sample // 2, len(ids))):
        before_n = len(state.pending_of_org(org_id))
        for pair_id in sorted(state.pending_of_org(org_id)):
            if state.pairs[pair_id]["state"] == "pending":
                live.handle_decision(state.approve(pair_id))
        live.handle(upsert(by_id[org_id], 1 + state.applied_revision(org_id)))
        approved.append((before_n, len(state.pending_of_org(org_id))))
    before = sum(b for b, _ in approved) / len(approved)
    after = sum(a for _, a in approved) / len(approved)
    print(
        f"every pending pair approved, then an edit, {len(approved)} organisations: pending {before:.2f} before, "
        f"{after:.2f} after; none after: {sum(a == 0 for _, a in approved)}"
    )
    print(f"pending per organisation at the end: {spread(state, ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
