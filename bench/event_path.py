"""The matcher's event path, measured: one profile event in → suggestions updated in Redis, with
N organisations indexed (p50/p95), against re-fitting the whole index for each event, in one run;
and the same event path while the weights are learnt again beside it (the shared index's refresh:
the reweigh holds the lock the events need only to take the rows, catch up and swap).

Uses a real redis-server (started here) and the live matcher's own code; no Kafka (the broker adds
the same constant to both). Each timed event takes the path a matcher's events take (table.py's
SharedIndex, as run_matcher drives it): the table reader decodes and indexes it (index_record), then
the group's consumer decodes it and plans and applies it as a run of one (handle_owned); both steps'
work is the event's, in this one thread. Usage:
python bench/event_path.py [--n 10000] [--events 50] [--refits 3] [--during-reweigh 2000] [--replan 1000]
    [--cached 0.0] [--warm 0]

By default the events are timed right after the index is built, when no list is cached but those the
events themselves make: an upsert then scores the new organisation in those few lists only. The live
matcher's steady state has most lists cached (planning a list caches it, and after each refresh of
the weights every list is planned again), and past a sixteenth of the index an upsert scores the new
organisation in every row, both ways, and enters more cached lists: `--cached 0.5` plans that share
of the lists (a random sample, as planning them does) and `--warm 300` handles that many events
untimed before the timed ones; the share of lists cached when the timing starts is printed.

Each timed event is followed by a fixed piece of work (Reference), and each event's CPU time is also
printed in units of the one after it: this machine is shared and its speed moves from minute to
minute, which that ratio takes out.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import redis  # noqa: E402
from engine_speed import generate  # noqa: E402

from launcher.servers import RedisServer  # noqa: E402
from partnermatch import events  # noqa: E402
from partnermatch.messaging import Record  # noqa: E402
from services.matcher.adapters.redis_state import PROFILE, PROFILES, REVISIONS, RedisMatcherState  # noqa: E402
from services.matcher.engine import MatchEngine  # noqa: E402
from services.matcher.live import LiveMatcher, profile_from_payload  # noqa: E402
from services.matcher.table import SharedIndex  # noqa: E402


def the_engine(live: LiveMatcher) -> MatchEngine:
    """The live matcher's engine, which the bench made a MatchEngine (its Engine protocol names
    only what the live matcher asks of it)."""
    assert isinstance(live.engine, MatchEngine)
    return live.engine


def payload(o: dict, revision: int = 1) -> dict:
    return {
        "org_id": o["id"],
        "revision": revision,
        "cluster_id": o["cluster"],
        "name": o["name"],
        "country": "XX",
        "language": o["language"] or "en",
        "capabilities": o["capabilities"],
        "goals": o["goals"],
        "sectors": [],
        "website": None,
        "updated_at": datetime.now(UTC).isoformat(),
    }


class HeldLock:
    """A lock that remembers how long each hold by the reweigh's thread lasted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reweigh_holds: list[float] = []
        self._since = 0.0

    def __enter__(self) -> None:
        self._lock.acquire()
        self._since = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        if threading.current_thread().name == "reweigh":
            self.reweigh_holds.append(time.perf_counter() - self._since)
        self._lock.release()


def events_during_reweigh(live: LiveMatcher, orgs: list[dict]) -> tuple[list[float], float, list[float]]:
    """Events handled one after another, each under the lock the reweigh holds (as the shared index
    does), while a thread learns the weights again; the time of each, waiting for the lock included,
    how long the reweigh took and how long each of its holds of the lock lasted."""
    lock = HeldLock()
    took: list[float] = []
    engine = the_engine(live)

    def reweigh() -> None:
        t = time.perf_counter()
        engine.reweigh(hold=lock)
        took.append(time.perf_counter() - t)

    thread = threading.Thread(target=reweigh, name="reweigh")
    thread.start()
    times = []
    for o in orgs:
        if not thread.is_alive():
            break
        env = events.new_event(events.PROFILE_UPSERTED, payload({**o, "id": "during-" + o["id"]}), "bench")
        t = time.perf_counter()
        with lock:
            live.handle(env)
        times.append(time.perf_counter() - t)
    thread.join()
    return sorted(times), took[0], lock.reweigh_holds


def events_during_replanning(live: LiveMatcher, orgs: list[dict], lists: int) -> tuple[list[float], int, float]:
    """Events handled one after another through the shared index, as a matcher's table reader and
    consumer take them, while a thread plans lists again as it does after a refresh (one list per
    hold of the lock); the time of each event, how many lists were planned and how long they took."""
    shared = SharedIndex.over(live, reweigh_quiet_s=math.inf, reweigh_every_s=math.inf)  # no refresh cuts it short
    offsets = itertools.count()
    planned: list[tuple[int, float]] = []

    def replan() -> None:
        t = time.perf_counter()
        count = shared.replan_lists(sorted(live.clusters)[:lists])
        planned.append((count, time.perf_counter() - t))

    thread = threading.Thread(target=replan)
    thread.start()
    times = []
    for o in orgs:
        if not thread.is_alive():
            break
        env = events.new_event(events.PROFILE_UPSERTED, payload({**o, "id": "replan-" + o["id"]}), "bench")
        t = time.perf_counter()
        through_the_table(shared, env, next(offsets))
        times.append(time.perf_counter() - t)
    thread.join()
    return sorted(times), *planned[0]


def through_the_table(
    shared: SharedIndex, envelope: events.Envelope, offset: int, steps: list[tuple[float, float]] | None = None
) -> None:
    """One profile event the way a matcher handles it: the table reader decodes and indexes the
    record, the group's consumer decodes it and plans and applies it (a run of one). `steps`: gets
    this thread's CPU time of each of the two."""
    value = events.encode(envelope)
    record = Record("profiles", 0, offset, envelope.payload["org_id"], value)
    started = time.thread_time()
    shared.index_record(record)
    indexed = time.thread_time()
    shared.handle_owned(events.decode(value))
    if steps is not None:
        steps.append((indexed - started, time.thread_time() - indexed))


class Collections:
    """The cyclic garbage collector's collections while `on`: how many and how long each took."""

    def __init__(self) -> None:
        self.on = False
        self.took: list[float] = []
        self._since = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._since = time.perf_counter()
        elif self.on:
            self.took.append(time.perf_counter() - self._since)


class RoundTrips:
    """Round trips to Redis while `on`: each send_packed_command is one (a pipeline's or a
    transaction's commands go in one send)."""

    def __init__(self) -> None:
        self.on = False
        self.count = 0
        self._send = redis.connection.AbstractConnection.send_packed_command
        send = self._send

        def counted(conn: redis.connection.AbstractConnection, command: object, check_health: bool = True) -> None:
            if self.on:
                self.count += 1
            send(conn, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counted

    def taken(self) -> int:
        """The round trips since last asked."""
        count, self.count = self.count, 0
        return count

    def close(self) -> None:
        redis.connection.AbstractConnection.send_packed_command = self._send


class Timed:
    """A method of an object, wrapped: this thread's CPU time of each call, kept per timed event."""

    def __init__(self, owner: object, name: str) -> None:
        self.calls: list[float] = []
        wrapped = getattr(owner, name)

        def timed(*args: object, **kwargs: object) -> object:
            started = time.thread_time()
            try:
                return wrapped(*args, **kwargs)
            finally:
                self.calls.append(time.thread_time() - started)

        setattr(owner, name, timed)

    def taken(self) -> float:
        """The CPU time of the calls since last asked."""
        spent, self.calls = sum(self.calls), []
        return spent


class Reference:
    """A fixed piece of work of the kinds an event's is made of: the interpreter's (a dictionary of
    1,000 ids and scores, sorted, the best 100 as JSON) and passes over an array of 100,000 scores.
    Timed right after each event (this thread's CPU time), it says how fast the machine ran then:
    this one is shared, and the same code's events took p50 3.6 ms of CPU in one run and 5.8 ms in
    another. An event's CPU time over its neighbour reference's moves less with the machine."""

    def __init__(self) -> None:
        self.rows = [(f"org_{(i * 7919) % 100003:06d}", ((i * 7919) % 1000) / 1000) for i in range(1000)]
        self.scores = np.random.default_rng(0).random(100_000, dtype=np.float32)

    def timed(self) -> float:
        started = time.thread_time()
        ranked = sorted(dict(self.rows).items(), key=lambda row: (-row[1], row[0]))
        text = json.dumps(ranked[:100])
        top = float(np.max(self.scores * np.float32(1.5) + np.float32(0.25)))
        assert text and top > 0 and np.count_nonzero(self.scores > 0.5) > 0
        return time.thread_time() - started


def cache_lists(live: LiveMatcher, share: float) -> float:
    """Cache `share` of the lists (a random sample, the same in every run) as planning them does:
    the engine's list of each with the reasons of those the plan reads; how long it took."""
    orgs = sorted(live.clusters)
    chosen = random.Random(5).sample(orgs, round(share * len(orgs))) if share > 0 else []
    t = time.perf_counter()
    for org in chosen:
        live.engine.top(org, live.top_k)
    return time.perf_counter() - t


def _quantile(values: list[float], quantile: float) -> float:
    """The nearest-rank quantile of sorted values."""
    return values[int(quantile * (len(values) - 1))]


def _ms(times: list[float], quantile: float) -> float:
    return 1000 * _quantile(times, quantile) if times else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--refits", type=int, default=3)
    parser.add_argument(
        "--during-reweigh", type=int, default=2000, help="at most this many events while the weights are learnt again"
    )
    parser.add_argument("--replan", type=int, default=1000, help="lists planned again after the reweigh, timed")
    parser.add_argument(
        "--cached", type=float, default=0.0, help="share of the lists planned (so cached) before the events are timed"
    )
    parser.add_argument("--warm", type=int, default=0, help="events handled untimed before the timed ones")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        try:
            client = redis.Redis.from_url(server.url)
            state = RedisMatcherState(client)
            orgs = generate(args.n, seed=5)
            with client.pipeline(transaction=False) as pipe:
                for o in orgs:
                    p = payload(o)
                    pipe.set(PROFILE + o["id"], json.dumps(p, ensure_ascii=False))
                    pipe.sadd(PROFILES, o["id"])
                    pipe.hset(REVISIONS, o["id"], 1)
                pipe.execute()
            live = LiveMatcher(state, MatchEngine(), top_k=5, min_score=0.05)
            # no refresh of the weights while events are timed: that is measured apart below
            shared = SharedIndex(live, reweigh_quiet_s=math.inf, reweigh_every_s=math.inf)
            t = time.perf_counter()
            shared.load()
            load_s = time.perf_counter() - t
            offsets = itertools.count()
            cache_s = cache_lists(live, args.cached)
            for o in generate(args.warm, seed=78):
                warm = events.new_event(events.PROFILE_UPSERTED, payload({**o, "id": "warm-" + o["id"]}), "bench")
                through_the_table(shared, warm, next(offsets))
            engine = the_engine(live)
            cached_then, indexed = len(engine.topk), len(engine)
            fresh = generate(args.events + args.refits + 2 * args.during_reweigh, seed=77)
            times, cpu = [], []
            # where each event's CPU goes: the table reader's step, the consumer's, and of the
            # latter the engine's lists with their reasons (top); the collector's work inside them
            steps: list[tuple[float, float]] = []
            lists_made, made = Timed(live.engine, "top"), []
            collections = Collections()
            gc.callbacks.append(collections)
            round_trips, trips = RoundTrips(), []
            reference, references = Reference(), []
            reference.timed()  # its first call allocates what the others reuse
            for o in fresh[: args.events]:
                o = {**o, "id": "new-" + o["id"]}
                env = events.new_event(events.PROFILE_UPSERTED, payload(o), "bench")
                lists_made.taken()
                t, c = time.perf_counter(), time.thread_time()
                collections.on = round_trips.on = True
                through_the_table(shared, env, next(offsets), steps)
                collections.on = round_trips.on = False
                trips.append(round_trips.taken())
                times.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
                made.append(lists_made.taken())
                references.append(reference.timed())
            gc.callbacks.remove(collections)
            round_trips.close()
            trips.sort()
            in_references = sorted(spent / max(ref, 1e-9) for spent, ref in zip(cpu, references, strict=True))
            references.sort()
            del live.engine.top  # the engine's own method again
            times.sort()
            cpu.sort()
            indexing, handling = sorted(i for i, _ in steps), sorted(h for _, h in steps)
            made.sort()
            t = time.perf_counter()
            engine.reweigh()  # alone: what the index does once a fifth of it has changed
            reweigh_s = time.perf_counter() - t
            during_from = args.events + args.refits
            # --during-reweigh 0 and --replan 0 leave those parts out (each takes a minute at 100,000)
            beside = (
                events_during_reweigh(live, fresh[during_from : during_from + args.during_reweigh])
                if args.during_reweigh > 0
                else None
            )
            replan = (
                events_during_replanning(live, fresh[during_from + args.during_reweigh :], args.replan)
                if args.replan > 0
                else None
            )
            refit = []
            profiles = [profile_from_payload(p) for p in state.all_profiles()]
            for o in fresh[args.events : args.events + args.refits]:
                o = {**o, "id": "refit-" + o["id"]}
                t = time.perf_counter()
                refitted = MatchEngine(engine.lexicon)
                refitted.fit([*profiles, profile_from_payload(payload(o))])
                refitted.top(o["id"], 5)
                refit.append(time.perf_counter() - t)
            p50 = 1000 * statistics.median(times)
            p95 = 1000 * times[int(0.95 * (len(times) - 1))]
            print(f"{args.n} organisations indexed (index rebuilt from Redis in {load_s:.1f} s)")
            print(
                f"lists cached when the timing started: {cached_then:,} of {indexed:,} ({cached_then / indexed:.1%}; "
                f"{args.cached:.0%} planned first in {cache_s:.1f} s, then {args.warm} events untimed)"
            )
            print(
                f"event → suggestions in Redis, incremental: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
                f"over {len(times)} events"
            )
            print(  # the matcher's own CPU, Redis's excluded: what other processes on the machine change least
                f"  the matcher's CPU time of each (this thread's): p50 {_ms(cpu, 0.5):.1f} ms, "
                f"p95 {_ms(cpu, 0.95):.1f} ms"
            )
            print(
                f"    of which the table reader's index_record (the engine's upsert): p50 {_ms(indexing, 0.5):.1f} ms, "
                f"p95 {_ms(indexing, 0.95):.1f} ms; the consumer's handle_owned: p50 {_ms(handling, 0.5):.1f} ms, "
                f"p95 {_ms(handling, 0.95):.1f} ms (the engine's lists with their reasons in it: p50 "
                f"{_ms(made, 0.5):.1f} ms, p95 {_ms(made, 0.95):.1f} ms)"
            )
            print(
                f"  a fixed reference piece of work timed after each (Reference; this thread's CPU time): "
                f"p50 {_ms(references, 0.5):.2f} ms, p95 {_ms(references, 0.95):.2f} ms; each event's CPU time "
                f"in its reference's: p50 {_quantile(in_references, 0.5):.1f}, "
                f"p95 {_quantile(in_references, 0.95):.1f} (the machine's speed taken out)"
            )
            print(
                f"  round trips to Redis in each: p50 {trips[len(trips) // 2]}, max {trips[-1]} "
                f"(mean {statistics.fmean(trips):.2f})"
            )
            took = collections.took
            print(
                f"  cyclic garbage collections inside the timed events: {len(took)}, "
                f"{1000 * sum(took):.1f} ms in all, longest {1000 * max(took, default=0.0):.2f} ms"
            )
            if refit:  # --refits 0 skips them: at 100,000 each takes minutes
                r50 = 1000 * statistics.median(refit)
                print(f"re-fitting the whole index per event:      p50 {r50:.1f} ms over {len(refit)} events")
                print(f"ratio incremental / refit (p50): {p50 / r50:.4f}")
            share = engine.settings.reweigh_share
            print(
                f"weights learnt again from the kept analyses (once per {share:.0%} of the "
                f"index changed): {reweigh_s:.1f} s alone"
            )
            if beside is not None:
                during, background_s, holds = beside
                print(
                    f"event → suggestions in Redis while they are learnt again beside the events "
                    f"({background_s:.1f} s): p50 {_ms(during, 0.5):.1f} ms, p95 {_ms(during, 0.95):.1f} ms, "
                    f"max {_ms(during, 1.0):.1f} ms over {len(during)} events"
                )
                print(
                    f"the reweigh held the events' lock {len(holds)} times, longest {1000 * max(holds):.1f} ms, "
                    f"{1000 * sum(holds):.1f} ms in all"
                )
            if replan is not None and replan[1] > 0:
                replanning, replanned, replan_s = replan
                print(
                    f"lists planned again after it, one per hold of the lock: {replanned / replan_s:.0f} per s "
                    f"({replanned} in {replan_s:.1f} s; all {args.n:,}: about {args.n * replan_s / replanned:.0f} s)"
                )
                print(
                    f"event → suggestions in Redis meanwhile: p50 {_ms(replanning, 0.5):.1f} ms, "
                    f"p95 {_ms(replanning, 0.95):.1f} ms, max {_ms(replanning, 1.0):.1f} ms "
                    f"over {len(replanning)} events"
                )
            one, five, fifteen = os.getloadavg()  # other processes on the machine change the wall times most
            print(f"load average at the end (1, 5, 15 min): {one:.2f} {five:.2f} {fifteen:.2f}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
