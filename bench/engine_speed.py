"""Speed of `partnermatch match` against the plain baseline, on the same generated organisations,
in one run, reported as a ratio (these machines are shared and noisy: absolute times mean little).

Baseline: word TF-IDF (scikit-learn) + exact linear_kernel top-k in row chunks, own cluster excluded.
Engine: the batch command's code path (read JSONL → analyse → fit → top-k with reasons → write JSONL).
Also: peak memory of each (max RSS of its own process) and the engine's incremental update time
(upsert of one organisation, p50/p95) with --incremental-n organisations indexed. What is done
once per installation (`partnermatch lemmas`: the lemma index, the kept copies beside it, the
compiled candidate product) is done first, in fresh folders, and timed on its own line.

Each side runs twice, interleaved (baseline, engine, baseline, engine), and each keeps its
better time and prints both, so a burst of load from other jobs on a shared machine flatters
neither.

Usage: python bench/engine_speed.py [--n 20000] [--incremental-n 100000] [--k 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")


def fragments() -> dict[str, list[str]]:
    """Sentences of real and realistic texts, by language: the seeds and the dev set."""
    by_lang: dict[str, list[str]] = {}
    seeds = ROOT.parent / "shared" / "seeds"
    seed_lang = {"000": "pl", "001": "pl", "002": "sr", "003": "sq", "004": "ru"}
    for path in sorted(seeds.glob("*.txt")) if seeds.is_dir() else []:
        lang = seed_lang.get(path.name[:3], "en")
        by_lang.setdefault(lang, []).extend(s.strip() for s in SENTENCE.split(path.read_text(encoding="utf-8")))
    for path in sorted((ROOT / "tests" / "data" / "devset").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                o = json.loads(line)
                text = f"{o.get('capabilities', '')}\n{o.get('goals', '')}"
                by_lang.setdefault(o.get("language") or "en", []).extend(s.strip() for s in SENTENCE.split(text))
    return {lang: [s for s in sents if len(s) > 20] for lang, sents in by_lang.items() if sents}


def generate(n: int, seed: int = 7) -> list[dict]:
    return list(generated(n, seed))


def generated(n: int, seed: int = 7) -> Iterator[dict]:
    """generate(n, seed)'s organisations one at a time, for a caller that never holds them all."""
    rng = random.Random(seed)
    pool = fragments()
    langs = sorted(pool)
    clusters = [f"cluster-{i:04d}" for i in range(max(20, n // 50))]
    for i in range(n):
        lang = rng.choice(langs)
        sents = pool[lang]
        caps = " ".join(rng.choice(sents) for _ in range(rng.randint(3, 9)))
        goals = " ".join(rng.choice(sents) for _ in range(rng.randint(1, 4)))
        yield {
            "id": f"g{i:06d}",
            "name": f"Org {i}",
            "cluster": rng.choice(clusters),
            "country": "XX",
            "language": lang if rng.random() < 0.8 else None,
            "capabilities": caps,
            "goals": goals,
        }


def run_baseline(path: str, k: int) -> None:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import linear_kernel

    with open(path, encoding="utf-8") as lines:
        orgs = [json.loads(line) for line in lines]
    matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(f"{o['capabilities']}\n{o['goals']}" for o in orgs)
    clusters = np.array([o["cluster"] for o in orgs])
    out = []
    for start in range(0, len(orgs), 1000):
        sims = linear_kernel(matrix[start : start + 1000], matrix)
        for i, row in enumerate(sims):
            row[clusters == clusters[start + i]] = -np.inf
            best = np.argpartition(-row, k)[:k]
            best = best[np.argsort(-row[best])]
            out.append({"id": orgs[start + i]["id"], "suggestions": [orgs[j]["id"] for j in best]})
    with open(path + ".baseline.out", "w", encoding="utf-8") as f:
        for row in out:
            f.write(json.dumps(row) + "\n")


def run_engine(path: str, k: int, index: str) -> None:
    from services.matcher.batch import match_file

    with open(path, encoding="utf-8") as src, open(path + ".engine.out", "w", encoding="utf-8") as dst:
        match_file(src, dst, k, lemma_index=index)


def run_lemma_index(index: str) -> None:
    from services.matcher.lemmas_cli import build

    spent: dict[str, float] = {}
    build(index, spent.__setitem__)  # what `partnermatch lemmas` does; numba's cache: see main()
    print(
        json.dumps(
            {
                "languages": sum(what.startswith("lemmas (") for what in spent),
                "compile_s": spent["candidate product (numba)"],
            }
        )
    )


def run_incremental(n: int, updates: int) -> None:
    from services.matcher.engine import MatchEngine, OrgProfile

    orgs = generate(n, seed=11)
    profiles = [
        OrgProfile(
            id=o["id"], cluster=o["cluster"], language=o["language"], capabilities=o["capabilities"], goals=o["goals"]
        )
        for o in orgs
    ]
    engine = MatchEngine()
    t0 = time.perf_counter()
    engine.fit(profiles)
    fit_s = time.perf_counter() - t0
    for p in profiles[:200]:  # lists that updates may enter or leave
        engine.top(p.id, 5)
    fresh = generate(updates, seed=99)
    times = []
    for o in fresh:
        p = OrgProfile(
            id="new-" + o["id"],
            cluster=o["cluster"],
            language=o["language"],
            capabilities=o["capabilities"],
            goals=o["goals"],
        )
        t = time.perf_counter()
        engine.upsert(p)
        times.append(time.perf_counter() - t)
    times.sort()
    print(
        json.dumps(
            {
                "fit_s": fit_s,
                "p50_ms": 1000 * statistics.median(times),
                "p95_ms": 1000 * times[int(0.95 * (len(times) - 1))],
                "updates": len(times),
            }
        )
    )


def child(mode: str, *args: str) -> tuple[float, float, str, float]:
    """Run one measurement in a fresh process: wall time, its peak RSS in MiB, its last output line,
    and the peak RSS of the largest process it forked (0 if none)."""
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, *args], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - t
    lines = proc.stdout.strip().splitlines()
    rss, forked = (float(x) for x in lines[-1].split())
    return wall, rss, lines[-2] if len(lines) > 1 else "", forked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--incremental-n", type=int, default=100000)
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, rest = args.child[0], args.child[1:]
        if mode == "baseline":
            run_baseline(rest[0], int(rest[1]))
        elif mode == "engine":
            run_engine(rest[0], int(rest[1]), rest[2])
        elif mode == "lemmas":
            run_lemma_index(rest[0])
        else:
            run_incremental(int(rest[0]), int(rest[1]))
        print(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        )
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "orgs.jsonl")
        orgs = generate(args.n)
        with open(path, "w", encoding="utf-8") as f:
            for o in orgs:
                f.write(json.dumps(o, ensure_ascii=False) + "\n")
        print(f"{args.n} generated organisations in {len({o['language'] for o in orgs})} languages, top {args.k}")
        # The lemma index is built once per installation (`partnermatch lemmas`, part of `make
        # setup`); building it here, in a fresh folder, is reported on its own line.
        index = str(Path(tmp) / "lemma-index")
        os.environ["NUMBA_CACHE_DIR"] = str(Path(tmp) / "numba-cache")  # so is the compiled product
        build_s, build_mb, built, _ = child("lemmas", index)
        runs: dict[str, list[tuple[float, float, float]]] = {"baseline": [], "engine": []}
        for _ in range(2):
            s, mb, _, _ = child("baseline", path, str(args.k))
            runs["baseline"].append((s, mb, 0.0))
            s, mb, _, forked = child("engine", path, str(args.k), index)
            runs["engine"].append((s, mb, forked))
        base_s, eng_s = min(r[0] for r in runs["baseline"]), min(r[0] for r in runs["engine"])
        base_mb = max(r[1] for r in runs["baseline"])
        eng_mb, eng_forked_mb = max(r[1] for r in runs["engine"]), max(r[2] for r in runs["engine"])

        def both(name: str) -> str:
            return ", ".join(f"{r[0]:.1f}" for r in runs[name])

        print(
            f"baseline (word TF-IDF + linear_kernel, chunks; best of {both('baseline')}): {base_s:6.1f} s  "
            f"peak {base_mb:5.0f} MiB"
        )
        print(
            f"engine (`partnermatch match` code path; best of {both('engine')}):      {eng_s:6.1f} s  "
            f"peak {eng_mb:5.0f} MiB (its largest forked worker: {eng_forked_mb:.0f} MiB, pages shared "
            f"with it counted in both)"
        )
        print(f"ratio engine / baseline: {eng_s / base_s:.2f}  (bar: <= 1.00)")
        built_info = json.loads(built)
        print(
            f"once per installation (`partnermatch lemmas`): lemma index of {built_info['languages']} "
            f"languages, kept copies and compiled product in {build_s:.1f} s (compiling: "
            f"{built_info['compile_s']:.1f} s; peak {build_mb:.0f} MiB)"
        )
        os.environ.pop("NUMBA_CACHE_DIR")  # its folder goes with the temporary one
    if args.incremental_n:
        _, inc_mb, line, _ = child("incremental", str(args.incremental_n), str(args.updates))
        stats = json.loads(line)
        print(
            f"incremental, {args.incremental_n} indexed: fit {stats['fit_s']:.1f} s, upsert p50 "
            f"{stats['p50_ms']:.1f} ms, p95 {stats['p95_ms']:.1f} ms over {stats['updates']} updates, "
            f"peak {inc_mb:.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
