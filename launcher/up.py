"""`partnermatch up`: the local stack (see `launcher.stack`) with demo data, supervised until Ctrl-C:
a part that dies is started again with backoff, and `up` ends only when redis or the local broker
cannot come back. Serves the parts' restarts as metrics. Does I/O (processes, sockets, HTTP).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from launcher.procs import StackError
from launcher.stack import MATCHERS, Stack
from partnermatch.topics import ALL_TOPICS, PROFILES

SUPERVISE_EVERY_S = 0.2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("up", help="start the local stack (Redis, Kafka, every service) with demo data")
    parser.add_argument("--no-demo", action="store_true", help="do not load the demo clusters and organisations")
    parser.add_argument("--state-dir", help="folder for data and logs (default: PARTNERMATCH_STATE_DIR or .state)")
    parser.add_argument(
        "--matchers",
        type=_positive,
        metavar="N",
        help="run N matcher consumers in one group, each with the whole index (default: "
        f"PARTNERMATCH_MATCHERS or 1; more than the {ALL_TOPICS[PROFILES]} partitions of 'profiles' wait as standbys)",
    )
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    from partnermatch.logs import configure_logging
    from partnermatch.settings import STATE_DIR

    configure_logging(os.environ)
    state = args.state_dir or STATE_DIR.read(os.environ) or ".state"
    env = dict(os.environ)
    if args.matchers is not None:
        env[MATCHERS.name] = str(args.matchers)
    stack = Stack(state, env=env)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        stack.cancel()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    metrics_server = None
    try:
        try:
            stack.start()
        except StackError as exc:
            print(f"partnermatch up: {exc}", file=sys.stderr)
            return 130 if stop.is_set() else 1
        metrics_server = _serve_restarts(stack)
        print(_banner(stack, demo=not args.no_demo, metrics_server=metrics_server), flush=True)
        while not stop.wait(SUPERVISE_EVERY_S):
            fatal = stack.supervise()
            if fatal is not None:
                print(f"partnermatch up: {fatal}\nstopping everything.", file=sys.stderr)
                return 1
        return 0
    except Exception as exc:  # noqa: BLE001 - one clear message, then a clean stop
        print(f"partnermatch up: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping…", file=sys.stderr, flush=True)
        if metrics_server is not None:
            metrics_server.shutdown()
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_restarts(stack: Stack) -> Any:
    """The restarts of the parts, served by this launcher: it is the one process that outlives
    every part, so the count is there while the part that keeps dying is not (a web app reading a
    file would be down exactly when it matters)."""
    from launcher.metrics import UP_METRICS_PORT, RestartsCollector, serve_launcher_metrics

    port = UP_METRICS_PORT.read_int(stack.base_env)
    if port == 0:
        return None
    return serve_launcher_metrics(port, RestartsCollector(stack.part_states))


def _banner(stack: Stack, demo: bool, metrics_server: Any = None) -> str:
    lines = [
        "",
        "partnermatch is running. Ctrl-C stops every part.",
        f"  {'redis':<13} {stack.env['REDIS_URL']}  (AOF in {stack.state / 'redis'})",
        f"  {'kafka':<13} {stack.env['KAFKA_BOOTSTRAP_SERVERS']}"
        + ("  (Tansu, in memory)" if stack.broker is not None else "  (external)"),
    ]
    lines += [f"  {spec.name:<13} {spec.address}" for spec in stack.started_specs if spec.address]
    scraped = [spec.metrics_url for spec in stack.started_specs if spec.metrics_url]
    if metrics_server is not None:
        scraped.append(f"http://127.0.0.1:{metrics_server.server_port}/metrics (restarts)")
    if scraped:
        lines.append(f"  {'metrics':<13} " + ", ".join(scraped))
    lines += [
        f"  {'logs':<13} {stack.state / 'logs'}",
        f"  {'settings':<13} {stack.state / 'stack.env'} (admin token: PARTNERMATCH_ADMIN_TOKEN)",
    ]
    profiles = next((spec.url for spec in stack.started_specs if spec.name == "profiles"), None)
    if demo and profiles:
        from launcher.demo import DEMO_PASSWORD, load_demo

        summary = load_demo(profiles, stack.env["PARTNERMATCH_ADMIN_TOKEN"])
        lines.append(
            f"  {'demo data':<13} {summary.organisations} organisations in {summary.languages} "
            f"languages, {summary.clusters} clusters"
        )
        lines.append(
            f"  {'coordinators':<13} password {DEMO_PASSWORD!r}: "
            + ", ".join(f"{u} ({c})" for u, c, _ in summary.coordinators)
        )
    return "\n".join(lines) + "\n"
