"""The notifier's consumer noting suggestions and withdrawals for the coordinators' digests, measured:
each event handled alone (DecisionRecorder.handle: a script call, one round trip to Redis, each)
against runs of them (DecisionRecorder.handle_run: the run's script calls in one round trip, as the
consumer hands over what a poll holds in a row), on a real redis-server (started here).

The events are shaped as the matcher's pair steps: suggestions of pairs among --orgs organisations
of 40 clusters, a fifth of them withdrawals, decoded from their bytes as the consumer decodes them
(decoding is left out of the time: both ways pay it). Both ways in alternating blocks in one run,
each on its own ledger (a prefix of its own); prints the CPU time an event of this process and of
redis-server (from /proc), each way, and their ratio. Usage:
python bench/digest_runs.py [--events 2000] [--run 100] [--blocks 6] [--orgs 2000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from launcher.servers import RedisServer  # noqa: E402
from partnermatch import events  # noqa: E402
from services.notifier.adapters.redis_ledger import RedisDeliveryLedger  # noqa: E402
from services.notifier.services import DecisionRecorder  # noqa: E402


def _envelopes(n: int, orgs: int, rng: random.Random) -> list[events.Envelope]:
    cluster = {f"org-{i}": f"cluster-{i % 40}" for i in range(orgs)}
    found = []
    for _ in range(n):
        a, b = sorted(rng.sample(sorted(cluster), 2))
        payload = {"pair_id": events.pair_id(a, b), "org_a": a, "org_b": b}
        payload |= {"cluster_a": cluster[a], "cluster_b": cluster[b]}
        if rng.random() < 0.2:
            envelope = events.new_event(events.MATCH_WITHDRAWN, payload | {"reason": "no_longer_matching"}, "bench")
        else:
            envelope = events.new_event(
                events.MATCH_SUGGESTED, payload | {"score": rng.random(), "reasons": []}, "bench"
            )
        found.append(events.decode(events.encode(envelope)))
    return found


def _server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events a block")
    parser.add_argument("--run", type=int, default=100, help="events a run (what one poll holds in a row)")
    parser.add_argument("--blocks", type=int, default=6, help="blocks each way, in turn")
    parser.add_argument("--orgs", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        try:
            client = redis.Redis.from_url(server.url)
            pid = server.process.pid
            spent: dict[str, list[tuple[float, float]]] = {"alone": [], "runs": []}
            for block in range(args.blocks * 2):
                way = ("alone", "runs")[(block + block // 2) % 2]  # alone, runs, runs, alone, ...
                recorder = DecisionRecorder(RedisDeliveryLedger(client, prefix=f"{{bench{block}}}:"))
                envelopes = _envelopes(args.events, args.orgs, rng)
                runs = [envelopes[i : i + args.run] for i in range(0, len(envelopes), args.run)]
                cpu, served = time.process_time(), _server_cpu(pid)
                if way == "alone":
                    for envelope in envelopes:
                        recorder.handle(envelope)
                else:
                    for run in runs:
                        recorder.handle_run(run)
                cpu, served = time.process_time() - cpu, _server_cpu(pid) - served
                spent[way].append((cpu * 1e6 / len(envelopes), served * 1e6 / len(envelopes)))
            client.close()
        finally:
            server.stop()
    med = {way: [statistics.median(x[i] for x in spent[way]) for i in (0, 1)] for way in spent}
    print(f"{args.events} events a block, {args.blocks} blocks each way in turn, runs of {args.run}:")
    for way, label in (("alone", "each event alone (handle)"), ("runs", "in runs (handle_run)")):
        this, redis_cpu = med[way]
        print(f"  {label:<28} this process {this:6.1f} µs an event, redis-server {redis_cpu:5.1f} µs")
    total = {way: sum(med[way]) for way in med}
    mine, both = med["runs"][0] / med["alone"][0], total["runs"] / total["alone"]
    print(f"  ratio runs / alone: this process {mine:.2f}, with redis-server {both:.2f}")
    print("load average at the end (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
