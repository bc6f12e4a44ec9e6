"""The matcher's index at scale: N generated organisations fitted in one process (streamed into the
fit, as the live matcher streams them from Redis), with the fit time,
the process's peak and resident memory, the bytes per organisation of each structure the index
keeps, and the event path's engine time (one upsert, then the lists of every organisation it
touched, as the live matcher asks for them: p50/p95).

Each structure is measured where it lives: arrays and sparse matrices exactly (their buffers),
per-organisation Python containers (lists, dictionaries) from an even sample of their entries,
scaled to all of them (objects the sampled entries share, such as words, are counted once per
sample). Usage: python bench/memory_scale.py [--n 1000000] [--events 200] [--workers 2]
(--n 20000 runs in about a minute.)
"""

from __future__ import annotations

import argparse
import gc
import itertools
import resource
import signal
import statistics
import sys
import time
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from engine_speed import generate, generated  # noqa: E402

from services.matcher.engine import MatchEngine, OrgProfile  # noqa: E402
from services.matcher.engine.workers import release_freed_memory  # noqa: E402

SAMPLE = 2000  # entries of a per-organisation container measured, evenly spaced
MIB = 2**20
_NOT_DATA = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / MIB


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def deep_size(obj: Any, seen: set[int], parts: tuple[type, ...] = ()) -> int:
    """Bytes of obj and everything it refers to not in `seen` (which it extends): arrays by
    their buffers, Python objects by sys.getsizeof; objects of the types `parts` are not counted
    nor followed (the engine's parts, which a structure may refer to: measured as themselves)."""
    total, stack = 0, [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, (_NOT_DATA, parts)):
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            total += 112 + (o.nbytes if o.flags.owndata else 0)
            if o.base is not None:
                stack.append(o.base)
        elif sp.issparse(o):
            total += sum(deep_size(getattr(o, a), seen, parts) for a in ("data", "indices", "indptr") if hasattr(o, a))
        else:
            total += sys.getsizeof(o)
            stack.extend(gc.get_referents(o))
    return total


def structure_bytes(value: Any, n: int, seen: set[int], parts: tuple[type, ...] = ()) -> tuple[int, str]:
    """(bytes, how measured) of one attribute of a part of the engine; `seen`: what was counted
    already (a buffer two attributes share counts once); `parts`: see deep_size."""
    if isinstance(value, (list, dict)) and len(value) >= max(n // 2, 1) and len(value) > SAMPLE:
        step = len(value) // SAMPLE
        entries = itertools.islice(value.items() if isinstance(value, dict) else value, 0, None, step)
        sample: set[int] = set()
        picked = itertools.islice(entries, SAMPLE)  # a dictionary's entries: its keys and values
        sampled = (
            sum(deep_size(key, sample, parts) + deep_size(item, sample, parts) for key, item in picked)
            if isinstance(value, dict)
            else sum(deep_size(entry, sample, parts) for entry in picked)
        )
        return sys.getsizeof(value) + int(sampled * len(value) / SAMPLE), "sampled"
    if isinstance(value, tuple) and value and all(sp.issparse(v) for v in value):
        return sum(deep_size(v, seen, parts) for v in value), "exact"
    return deep_size(value, seen, parts), "exact"


def footprint(engine: MatchEngine) -> list[tuple[str, int, str]]:
    """(part.attribute, bytes, how measured) of every attribute of the index's parts, largest first."""
    n = len(engine.index.ids)
    rows: list[tuple[str, int, str]] = []
    seen: set[int] = set()
    # another part, or what every part shares: an attribute that is one is left out, and a
    # structure that refers to one (the evidence refers to its finder) does not count it
    parts = (
        MatchEngine,
        type(engine.index),
        type(engine.features),
        type(engine.reason_finder),
        type(engine.top_lists),
        type(engine.settings),
        type(engine.lexicon),
    )
    for part_name, part in (
        ("index", engine.index),
        ("top_lists", engine.top_lists),
        ("reason_finder", engine.reason_finder),
        ("features", engine.features),
    ):
        for name, value in vars(part).items():
            if isinstance(value, parts):
                continue
            if isinstance(value, Sequence) and not isinstance(value, (list, tuple, str)):
                continue  # a view, made of other attributes
            size, how = structure_bytes(value, n, seen, parts)
            rows.append((f"{part_name}.{name}", size, how))
    return sorted(rows, key=lambda r: -r[1])


def profile(o: dict, prefix: str = "") -> OrgProfile:
    return OrgProfile(
        id=prefix + o["id"],
        name=o["name"],
        cluster=o["cluster"],
        country=o["country"],
        language=o["language"],
        capabilities=o["capabilities"],
        goals=o["goals"],
    )


def quantiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p50, p95 = 1000 * statistics.median(ordered), 1000 * ordered[int(0.95 * (len(ordered) - 1))]
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms"


class PeakWatch:
    """Where the resident memory was highest: a timer signal reads it every few milliseconds in
    this thread (a watching thread would keep the fit from forking its workers) and keeps, at each
    new high, the innermost frames of the matcher's code. A high inside one long C call is seen
    when the call returns; the peak the kernel reports is the truth, this only says where."""

    def __init__(self, every_s: float = 0.01) -> None:
        self.high, self.where = 0.0, ""
        self._before = signal.signal(signal.SIGALRM, self._look)
        signal.setitimer(signal.ITIMER_REAL, every_s, every_s)

    def _look(self, _signum: int, frame: types.FrameType | None) -> None:
        now = resident_mib()
        if now > self.high:
            self.high = now
            path = []
            while frame is not None:
                if "services/matcher" in frame.f_code.co_filename:
                    path.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
                frame = frame.f_back
            self.where = " < ".join(path[:4])

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="analysis processes of the fit (forked)")
    parser.add_argument("--top-k", type=int, default=5)
    args = parser.parse_args()

    engine = MatchEngine()
    engine.features.analyse(profile(generate(1, seed=3)[0]))  # the lexicon and lemma indexes, loaded
    started = resident_mib()
    print(
        f"{args.n} generated organisations, streamed into the fit as the live matcher streams them "
        f"from Redis; resident {started:.0f} MiB with the lexicon loaded"
    )
    t = time.perf_counter()
    watch = PeakWatch()
    engine.fit((profile(o) for o in generated(args.n, seed=11)), workers=args.workers)
    watch.stop()
    fit_s = time.perf_counter() - t
    print(f"the fit's highest resident memory: {watch.high:.0f} MiB, in {watch.where or '?'}")
    gc.collect()
    release_freed_memory()
    held = resident_mib()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"fit: {fit_s:.1f} s ({args.workers} analysis processes, the largest forked one peaking at "
        f"{children:.0f} MiB, pages shared with this one counted in both); peak {peak_mib():.0f} MiB, "
        f"resident {held:.0f} MiB after it ({(held - started) * MIB / args.n:.0f} bytes per organisation "
        f"above the start)"
    )

    # the event path: an upsert, then the list of every organisation it touched (the live matcher
    # writes those); first the lists a running matcher has cached, and what this process loads at
    # its first analyses (the stop words and lemmas of each language, the language model), which
    # the forked fit loaded in its workers only: the live matcher fits in its own process
    for p in engine.ids[:2000]:
        engine.top(p, args.top_k)
    for o in generate(300, seed=1):
        engine.features.analyse(profile(o))
    fresh = generate(args.events, seed=99)
    times, cpu = [], []
    for o in fresh:
        t, c = time.perf_counter(), time.process_time()
        update = engine.upsert(profile(o, "new-"))
        for who in {update.org_id, *update.entered, *update.left}:
            engine.top(who, args.top_k)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    print(
        f"event path (engine: upsert and the lists it touched), {len(engine)} indexed: {quantiles(times)} "
        f"over {len(times)} events; this process's CPU time {quantiles(cpu)} (less moved by other jobs)"
    )
    print(f"peak {peak_mib():.0f} MiB, resident {resident_mib():.0f} MiB after the events (before measuring)")

    rows = footprint(engine)
    total = sum(size for _, size, _ in rows)
    print(f"structures of the index: {total / MIB:.0f} MiB, {total / len(engine):.0f} bytes per organisation")
    for name, size, how in rows:
        if size >= 0.001 * total:
            print(f"  {name:40s} {size / MIB:9.1f} MiB {size / len(engine):8.1f} B/org  ({how})")
    print(f"resident {resident_mib():.0f} MiB at the end (the measuring's own objects included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
