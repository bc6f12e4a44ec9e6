"""Matchers 1 vs 2 (issue 17): profile events applied per second by N matcher processes in one
consumer group, each keeping the whole index from the `profiles` table.

Each run starts its own broker (Tansu, in memory) and redis-server holding --orgs organisations
as applied (the matchers fit them at start, all alike), then publishes --events updates at once
and times them from the first send until the last is applied in Redis. It prints the CPU time
each matcher used meanwhile too: on a machine with cores to spare, the busiest one bounds the
rate. The processes are the real consumer (`python -m services.matcher.entrypoints.consumer`).
--profile DIR samples each matcher with py-spy from the first send until the last event is applied
(DIR/matchers-N-i.txt, raw stacks of every thread, waiting ones too).
Usage: python bench/matchers.py [--orgs 2000] [--events 1000] [--matchers 1 2] [--profile DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import redis  # noqa: E402
from engine_speed import generate  # noqa: E402
from event_path import payload  # noqa: E402

from launcher.servers import RedisServer, TansuBroker  # noqa: E402
from partnermatch import broker, events, topics  # noqa: E402
from partnermatch.messaging import KafkaPublisher, Outgoing  # noqa: E402
from services.matcher.adapters.redis_state import PROFILE, PROFILES, REVISIONS, RedisMatcherState  # noqa: E402

SETTLE_S = 8  # a member joins its group in half the session timeout; the second one's join rebalances


def publish(bootstrap: str, envelopes: list[events.Envelope]) -> None:
    publisher = KafkaPublisher(bootstrap, "bench-producer")
    try:
        for start in range(0, len(envelopes), 500):
            publisher.publish_batch(
                [
                    Outgoing(topics.PROFILES, e.payload["org_id"], events.encode(e))
                    for e in envelopes[start : start + 500]
                ]
            )
    finally:
        publisher.close()


def wait_applied(state: RedisMatcherState, last: dict[str, int], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state.applied_revisions(last) == last:
            return time.monotonic()
        time.sleep(0.05)
    raise SystemExit(f"not every event applied within {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(
    n_matchers: int, orgs: list[dict], updates: list[events.Envelope], folder: Path, profile: str | None = None
) -> dict[str, Any]:
    server = RedisServer(folder / "redis")
    kafka = TansuBroker(log_file=folder / "kafka.log")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        broker.prepare(kafka.bootstrap, topics.ALL_TOPICS)
        client = redis.Redis.from_url(server.url)
        state = RedisMatcherState(client)
        with client.pipeline(transaction=False) as pipe:
            for o in orgs:
                pipe.set(PROFILE + o["id"], json.dumps(payload(o), ensure_ascii=False))
                pipe.sadd(PROFILES, o["id"])
                pipe.hset(REVISIONS, o["id"], 1)
            pipe.execute()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "REDIS_URL": server.url,
            "MATCHER_GROUP": "bench-matcher",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
        }
        logs = [folder / f"matcher-{i}.log" for i in range(n_matchers)]
        processes.extend(
            subprocess.Popen(
                [sys.executable, "-m", "services.matcher.entrypoints.consumer"],
                cwd=ROOT,
                env=env,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            )
            for log in logs
        )
        deadline = time.monotonic() + 600
        while not all('"consumer started"' in log.read_text() for log in logs):
            if time.monotonic() > deadline:
                raise SystemExit("the matchers did not start")
            time.sleep(0.2)
        time.sleep(SETTLE_S)
        spies = []
        if profile is not None:
            Path(profile).mkdir(parents=True, exist_ok=True)
            spies = [
                subprocess.Popen(
                    ["py-spy", "record", "--pid", str(p.pid), "--idle", "--threads", "--format", "raw"]
                    + ["--rate", "100", "--nonblocking", "--output", f"{profile}/matchers-{n_matchers}-{i}.txt"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i, p in enumerate(processes)
            ]
        cpu_before = [cpu_seconds(p.pid) for p in processes]
        started = time.monotonic()
        publish(kafka.bootstrap, updates)
        last = {e.payload["org_id"]: e.payload["revision"] for e in updates}
        done = wait_applied(state, last, timeout=600)
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # it writes what it has sampled so far
            spy.wait(timeout=60)
        seconds = done - started
        cpu = [round(cpu_seconds(p.pid) - before, 1) for p, before in zip(processes, cpu_before, strict=True)]
        return {
            "matchers": n_matchers,
            "events": len(updates),
            "seconds": round(seconds, 2),
            "per_s": round(len(updates) / seconds, 1),
            "cpu_s": cpu,
        }
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        kafka.stop()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=2000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--matchers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep the matchers' logs")
    parser.add_argument("--profile", metavar="DIR", help="sample each matcher with py-spy while the events are applied")
    args = parser.parse_args()
    orgs = generate(args.orgs, seed=11)
    rng = random.Random(3)
    revision = {o["id"]: 1 for o in orgs}
    updates = []
    for _ in range(args.events):  # an organisation takes another's texts: its lists change
        o, other = rng.choice(orgs), rng.choice(orgs)
        revision[o["id"]] += 1
        updates.append(
            events.new_event(
                events.PROFILE_UPSERTED,
                payload({**o, "capabilities": other["capabilities"], "goals": other["goals"]}, revision[o["id"]]),
                "bench",
            )
        )
    print(
        f"{args.orgs} organisations indexed, {args.events} updates, {os.cpu_count()} cores, "
        f"{topics.ALL_TOPICS[topics.PROFILES]} partitions of {topics.PROFILES}"
    )
    for n in args.matchers:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(args.keep) / f"matchers-{n}" if args.keep else Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            result = run(n, orgs, updates, folder, args.profile)
        print(
            f"matchers={result['matchers']}: {result['events']} events in {result['seconds']} s = "
            f"{result['per_s']} events/s; CPU seconds of each matcher meanwhile: {result['cpu_s']} "
            f"({1000 * sum(result['cpu_s']) / result['events']:.1f} CPU ms an event in all)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
