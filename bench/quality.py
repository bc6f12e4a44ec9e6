"""Matching quality on the labelled sets: plain word TF-IDF against the engine, side by side.

On the dev set (tests/data/devset, organisations as clusters describe them):
P@5 same-sector: share of the top-5 slots filled by an organisation of the same sector.
P@5 related: same sector or a related one (tests/data/devset/sectors.json).
Cross-language: share of the same-sector hits written in another language than the query's.
The dev set is split in two halves (by id parity) so a change tuned on one can be checked on the other.

On the seekers (tests/data/seekers, organisations that state what they need), with the
candidates of both sets together:
P@5 sought: share of the top-5 slots filled by an organisation of a sector the seeker seeks
(for those seeking another sector than their own, and for the peer seekers);
country wish met: share of the top-5 slots, of the seekers that ask for partners from certain
countries, filled by an organisation from one of them.
Both systems follow the same rules: never the organisation itself, never its own cluster.

Usage: python bench/quality.py [--devset DIR] [--seekers DIR] [--k 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.matcher.engine import EngineSettings, MatchEngine, OrgProfile  # noqa: E402


def read_jsonl(folder: Path) -> list[dict]:
    orgs = []
    for path in sorted(folder.glob("*.jsonl")):
        orgs += [
            {**json.loads(line), "_file": path.stem}
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    return orgs


def load(devset: Path) -> tuple[list[dict], dict[str, set[str]]]:
    orgs = read_jsonl(devset)
    sectors = json.loads((devset / "sectors.json").read_text(encoding="utf-8"))
    related = {s: set(rs) | {s} for s, rs in sectors["related"].items()}
    return orgs, related


def baseline_top(orgs: list[dict], k: int) -> dict[str, list[str]]:
    texts = [f"{o['capabilities']}\n{o['goals']}" for o in orgs]
    matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    sims = linear_kernel(matrix, matrix)
    clusters = np.array([o["cluster"] for o in orgs])
    result = {}
    for i, o in enumerate(orgs):
        row = sims[i].copy()
        row[clusters == o["cluster"]] = -np.inf
        best = np.argsort(-row, kind="stable")[:k]
        result[o["id"]] = [orgs[j]["id"] for j in best if np.isfinite(row[j])]
    return result


def engine_top(
    orgs: list[dict], k: int, with_language: bool, settings: EngineSettings | None = None
) -> dict[str, list[str]]:
    engine = MatchEngine(settings=settings)
    engine.fit(
        [
            OrgProfile(
                id=o["id"],
                name=o.get("name", ""),
                cluster=o["cluster"],
                country=o.get("country", ""),
                language=o.get("language") if with_language else None,
                capabilities=o.get("capabilities", ""),
                goals=o.get("goals", ""),
            )
            for o in orgs
        ]
    )
    return {oid: [s.id for s in sugg] for oid, sugg in engine.suggestions_for_all(k)}


def measure(
    orgs: list[dict], related: dict[str, set[str]], tops: dict[str, list[str]], k: int, subset: set[str] | None = None
) -> dict[str, float]:
    by_id = {o["id"]: o for o in orgs}
    same = rel = hits = cross = slots = 0
    for oid, partners in tops.items():
        if subset is not None and oid not in subset:
            continue
        me = by_id[oid]
        slots += k
        for pid in partners[:k]:
            other = by_id[pid]
            if other["sector"] == me["sector"]:
                same += 1
                hits += 1
                cross += other.get("language") != me.get("language")
            if other["sector"] in related.get(me["sector"], {me["sector"]}):
                rel += 1
    return {"p5_same": same / max(slots, 1), "p5_related": rel / max(slots, 1), "cross_language": cross / max(hits, 1)}


def measure_seekers(
    orgs: list[dict], tops: dict[str, list[str]], k: int, subset: set[str] | None = None
) -> dict[str, float]:
    """Sought-sector P@k of the seekers among `orgs` (those with a `seeks` label), apart for those
    seeking another sector and for peer seekers, and the share of slots meeting a country wish."""
    by_id = {o["id"]: o for o in orgs}
    hits = {"other": [0, 0], "peers": [0, 0], "country": [0, 0]}
    for o in orgs:
        if "seeks" not in o or (subset is not None and o["id"] not in subset):
            continue
        partners = [by_id[p] for p in tops.get(o["id"], [])[:k]]
        group = hits["peers" if o["sector"] in o["seeks"] else "other"]
        group[0] += sum(p["sector"] in o["seeks"] for p in partners)
        group[1] += k
        if o.get("seeks_countries"):
            hits["country"][0] += sum(p.get("country") in o["seeks_countries"] for p in partners)
            hits["country"][1] += k
    every = hits["other"][0] + hits["peers"][0], hits["other"][1] + hits["peers"][1]
    return {
        "p5_sought": every[0] / max(every[1], 1),
        "p5_sought_other": hits["other"][0] / max(hits["other"][1], 1),
        "p5_sought_peers": hits["peers"][0] / max(hits["peers"][1], 1),
        "country_met": hits["country"][0] / max(hits["country"][1], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devset", default=str(ROOT / "tests" / "data" / "devset"))
    parser.add_argument("--seekers", default=str(ROOT / "tests" / "data" / "seekers"))
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    orgs, related = load(Path(args.devset))
    languages = sorted({str(o.get("language")) for o in orgs})
    print(
        f"dev set: {len(orgs)} organisations, {len(languages)} languages ({', '.join(languages)}), "
        f"{len({o['sector'] for o in orgs})} sectors, {len({o['cluster'] for o in orgs})} clusters"
    )
    halves = {
        "even": {o["id"] for i, o in enumerate(orgs) if i % 2 == 0},
        "odd": {o["id"] for i, o in enumerate(orgs) if i % 2 == 1},
    }
    systems = {}
    started = time.perf_counter()
    systems["plain word TF-IDF"] = baseline_top(orgs, args.k)
    t_base = time.perf_counter() - started
    started = time.perf_counter()
    systems["engine"] = engine_top(orgs, args.k, with_language=True)
    t_engine = time.perf_counter() - started
    systems["engine, language detected"] = engine_top(orgs, args.k, with_language=False)
    header = f"{'system':<28} {'P@5 same':>9} {'P@5 related':>12} {'cross-lang':>11}   {'even half':>9} {'odd half':>9}"
    print(header)
    print("-" * len(header))
    for name, tops in systems.items():
        allm = measure(orgs, related, tops, args.k)
        even = measure(orgs, related, tops, args.k, halves["even"])
        odd = measure(orgs, related, tops, args.k, halves["odd"])
        print(
            f"{name:<28} {allm['p5_same']:>9.3f} {allm['p5_related']:>12.3f} {allm['cross_language']:>11.3f}   "
            f"{even['p5_same']:>9.3f} {odd['p5_same']:>9.3f}"
        )
    print(f"(same-sector P@5 per half; time: baseline {t_base:.2f} s, engine {t_engine:.2f} s)")
    # By file of the dev set: parts written by people who had not seen the engine's lexicon are
    # the fairer estimate of texts we will never see.
    parts: dict[str, set[str]] = {}
    for o in orgs:
        parts.setdefault(o["_file"], set()).add(o["id"])
    print("by part (P@5 same / related):")
    for part, ids in sorted(parts.items()):
        cells = []
        for name in ("plain word TF-IDF", "engine"):
            m = measure(orgs, related, systems[name], args.k, ids)
            cells.append(f"{name} {m['p5_same']:.3f} / {m['p5_related']:.3f}")
        print(f"  {part:<20} {len(ids):>4} organisations   " + "   ".join(cells))

    seekers = read_jsonl(Path(args.seekers))
    both = orgs + seekers
    print(
        f"\nseekers: {len(seekers)} organisations that state what they need; candidates: both sets "
        f"({len(both)} organisations)"
    )
    header = (
        f"{'system':<28} {'P@5 sought':>10} {'other sector':>13} {'peers':>7} {'country wish met':>17}   "
        f"{'P@5 same (dev set)':>18}"
    )
    print(header)
    print("-" * len(header))
    for name, top in (("plain word TF-IDF", baseline_top), ("engine", None)):
        tops = top(both, args.k) if top is not None else engine_top(both, args.k, with_language=True)
        m = measure_seekers(both, tops, args.k)
        dev = measure(both, related, tops, args.k, {o["id"] for o in orgs})
        print(
            f"{name:<28} {m['p5_sought']:>10.3f} {m['p5_sought_other']:>13.3f} {m['p5_sought_peers']:>7.3f} "
            f"{m['country_met']:>17.3f}   {dev['p5_same']:>18.3f}"
        )
        for part in sorted({o["_file"] for o in seekers}):
            ids = {o["id"] for o in seekers if o["_file"] == part}
            m = measure_seekers(both, tops, args.k, ids)
            print(
                f"  {part:<26} {m['p5_sought']:>10.3f} {m['p5_sought_other']:>13.3f} {m['p5_sought_peers']:>7.3f} "
                f"{m['country_met']:>17.3f}"
            )
    print("(P@5 same (dev set): the dev set's organisations, with the seekers among the candidates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
