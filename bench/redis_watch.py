"""What one WATCH of many keys costs Debian's redis-server, which serves nobody else meanwhile.

The matcher writes a run's pairs in one optimistic transaction that watches every pair it reads
(services/matcher/adapters/redis_state.py: _transaction). Redis 7.0 checks each key a WATCH names
against every key the connection already watches, so one WATCH of n keys costs about n² / 2
comparisons, and the server answers no other client until it is done. This script times WATCH
alone (then UNWATCH) for a few sizes on a fresh redis-server, with the server's own duration of
the command from SLOWLOG, and the same keys watched in pieces of --piece keys per WATCH, which
spreads the same work over several commands. Prints one line per size.
Usage: python bench/redis_watch.py [--sizes 1000,4000,8000,16000] [--piece 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from launcher.servers import RedisServer  # noqa: E402


def watched(client: redis.Redis, keys: list[str], piece: int) -> tuple[float, int]:
    """Wall seconds to WATCH `keys` in commands of `piece` keys, and the server's longest command
    (microseconds, SLOWLOG)."""
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    with client.pipeline(transaction=True) as pipe:
        began = time.perf_counter()
        for start in range(0, len(keys), piece):
            pipe.watch(*keys[start : start + piece])
        took = time.perf_counter() - began
        pipe.unwatch()
    longest = max(e["duration"] for e in client.slowlog_get(len(keys) // piece + 8) if e["command"][:5] == b"WATCH")
    return took, longest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,4000,8000,16000")
    parser.add_argument("--piece", type=int, default=500)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as server:
        client = redis.Redis.from_url(server.url)
        version = client.info("server")["redis_version"]
        print(f"redis-server {version}: WATCH of n keys, the server's time for the longest WATCH command")
        for n in sizes:
            keys = [f"{{matcher}}:pair:{n}:{i}" for i in range(n)]
            whole, whole_longest = watched(client, keys, n)
            pieces, pieces_longest = watched(client, keys, args.piece)
            print(
                f"n={n:>6}: one WATCH {whole * 1000:8.1f} ms (server {whole_longest / 1000:8.1f} ms); "
                f"in pieces of {args.piece}: {pieces * 1000:8.1f} ms in all, "
                f"longest {pieces_longest / 1000:6.1f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
