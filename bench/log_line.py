"""Times one typical INFO line with extras through the real logging set-up (configure_logging, a
StreamHandler on stderr, here sent to /dev/null or --out), partnermatch/logs.py as it is against
the same file at --base, in turns in one process. Prints wall and CPU microseconds a line and the ratio."""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from partnermatch import logs  # noqa: E402

_DEFAULT_FLAGS = {name: getattr(logging, name) for name in ("_srcfile", "logThreads", "logMultiprocessing")}


def _module_at(rev: str) -> types.ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:partnermatch/logs.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    module = types.ModuleType(f"logs_at_{rev}")
    module.__file__ = f"<partnermatch/logs.py at {rev}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own file at a commit
    return module


def _configure(module: types.ModuleType, fmt: str) -> None:
    # What one set-up changed in the logging module must not carry over to the other's turn.
    for name, value in _DEFAULT_FLAGS.items():
        setattr(logging, name, value)
    module.configure_logging({"LOG_FORMAT": fmt, "LOG_LEVEL": "INFO"})


def _write_path_line(log: logging.Logger, i: int) -> None:
    # The profiles API's line for a registration (services/profiles/services.py), from a function.
    log.info(
        "organisation registered",
        extra={"org_id": f"o-{i:08x}", "cluster_id": "c-0001", "language": "de", "event_id": f"e-{i:012x}"},
    )


def _event_line(log: logging.Logger, i: int) -> None:
    # The matcher's line for a profile event (services/matcher/live.py's shape).
    log.info("profile event applied", extra={"org_id": f"o-{i:08x}", "revision": i, "pairs": 7, "ms": 1.25})


def _turn(line: Callable[[logging.Logger, int], None], log: logging.Logger, n: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        line(log, i)
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="4be6bce", help="commit whose partnermatch/logs.py is the old one")
    parser.add_argument("--lines", type=int, default=5000, help="lines a turn")
    parser.add_argument("--turns", type=int, default=15, help="turns of each, alternated")
    parser.add_argument("--format", choices=["json", "text", "both"], default="both")
    parser.add_argument(
        "--multiprocessing",
        action="store_true",
        help="import multiprocessing first, as the matcher's processes have it (a record asks it the process name)",
    )
    parser.add_argument("--out", default=os.devnull, help="where stderr goes (the lines are written there)")
    args = parser.parse_args()

    if args.multiprocessing:
        import multiprocessing  # noqa: F401

    report = os.dup(2)
    target = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(target, 2)
    old = _module_at(args.base)
    log = logging.getLogger("services.profiles.services")
    results: list[str] = []
    for fmt in ["json", "text"] if args.format == "both" else [args.format]:
        for name, line in (("registration", _write_path_line), ("profile event", _event_line)):
            times: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
            for module in (old, logs):  # warm up
                _configure(module, fmt)
                _turn(line, log, args.lines // 5)
            for _ in range(args.turns):
                for module, key in ((old, "old"), (logs, "new")):
                    _configure(module, fmt)
                    times[key].append(_turn(line, log, args.lines))
            med = {
                k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()
            }
            results.append(
                f"{fmt:<4} {name:<13} old {med['old'][0]:6.2f} us wall {med['old'][1]:6.2f} us CPU | "
                f"new {med['new'][0]:6.2f} us wall {med['new'][1]:6.2f} us CPU | "
                f"ratio wall {med['new'][0] / med['old'][0]:.2f}x CPU {med['new'][1] / med['old'][1]:.2f}x"
            )
    sys.stderr.flush()
    os.dup2(report, 2)
    print(f"a line, median of {args.turns} turns of {args.lines} (base {args.base}, lines to {args.out}; load "
          f"{os.getloadavg()[0]:.1f})")  # fmt: skip
    for row in results:
        print(row)


if __name__ == "__main__":
    main()
