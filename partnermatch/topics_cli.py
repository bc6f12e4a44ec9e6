"""`partnermatch topics ensure`: create every topic with its final partition count (idempotent)."""

from __future__ import annotations

import argparse
import sys

from partnermatch.settings import KAFKA_BOOTSTRAP_SERVERS, load_env
from partnermatch.topics import ALL_TOPICS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("topics", help="manage the Kafka topics")
    sub = parser.add_subparsers(dest="topics_command", metavar="ACTION")
    sub.required = True
    ensure = sub.add_parser("ensure", help="create the topics that are missing, with their partition counts")
    ensure.set_defaults(func=run_ensure)


def run_ensure(args: argparse.Namespace) -> int:
    from partnermatch.stack import ensure_topics

    bootstrap = KAFKA_BOOTSTRAP_SERVERS.read(load_env()) or ""
    try:
        ensure_topics(bootstrap, ALL_TOPICS)
    except Exception as exc:  # noqa: BLE001 - a person reads this: one clear line
        print(f"partnermatch topics ensure: failed against {bootstrap}: {exc}", file=sys.stderr)
        return 1
    for name, partitions in ALL_TOPICS.items():
        print(f"{name}: {partitions} partition(s)")
    return 0
