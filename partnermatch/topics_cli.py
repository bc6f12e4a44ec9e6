"""`partnermatch topics ensure`: create every topic with its declared partition count (idempotent),
write the broker's epoch marker if it has none, and report the counts the broker has. A topic
with another count than declared is refused: exit code 1 and a message naming it."""

from __future__ import annotations

import argparse
import sys

from partnermatch.settings import KAFKA_BOOTSTRAP_SERVERS, load_env
from partnermatch.topics import ALL_TOPICS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("topics", help="manage the Kafka topics")
    sub = parser.add_subparsers(dest="topics_command", metavar="ACTION")
    sub.required = True
    ensure = sub.add_parser(
        "ensure",
        help="create the topics that are missing, with their partition counts; "
        "refuse (exit 1) when one exists with another count",
    )
    ensure.set_defaults(func=run_ensure)


def run_ensure(args: argparse.Namespace) -> int:
    from partnermatch.broker import TopicMismatch, prepare

    bootstrap = KAFKA_BOOTSTRAP_SERVERS.read(load_env()) or ""
    try:
        counts, epoch = prepare(bootstrap, ALL_TOPICS)
    except TopicMismatch as exc:
        print(f"partnermatch topics ensure: REFUSED: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a person reads this: one clear line
        print(f"partnermatch topics ensure: failed against {bootstrap}: {exc}", file=sys.stderr)
        return 1
    for name, partitions in counts.items():
        print(f"{name}: {partitions} partition(s)")
    print(f"broker epoch: {epoch}")
    return 0
