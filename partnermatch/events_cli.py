"""`partnermatch events tail TOPIC`: print what is on a topic, one decoded event per line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from partnermatch import events
from partnermatch.settings import KAFKA_BOOTSTRAP_SERVERS, load_env
from partnermatch.topics import ALL_TOPICS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("events", help="look at the events on a Kafka topic")
    sub = parser.add_subparsers(dest="events_command", metavar="ACTION")
    sub.required = True
    tail = sub.add_parser("tail", help="print a topic's events from the beginning, then follow it")
    tail.add_argument("topic", help=f"topic name, e.g. {', '.join(ALL_TOPICS)}")
    tail.add_argument("--no-follow", action="store_true", help="stop after the last event instead of waiting")
    tail.add_argument("--raw", action="store_true", help="print the raw JSON envelope")
    tail.set_defaults(func=run_tail)


def _line(record, raw: bool) -> str:
    where = f"{record.topic}/{record.partition}@{record.offset}"
    if raw:
        return f"{where} key={record.key} {(record.value or b'').decode('utf-8', 'replace')}"
    try:
        env = events.decode(record.value)
    except events.UndecodableEvent as exc:
        return f"{where} key={record.key} UNDECODABLE {exc} headers={dict(record.headers)}"
    return f"{where} {env.occurred_at.isoformat()} {env.event_type} v{env.version} key={record.key} " + json.dumps(
        env.payload, ensure_ascii=False
    )


def run_tail(args: argparse.Namespace) -> int:
    from partnermatch.messaging import read_partitions

    env = load_env()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        for record in read_partitions(
            KAFKA_BOOTSTRAP_SERVERS.read(env) or "",
            args.topic,
            follow=not args.no_follow,
            idle_timeout_s=1.0,
            stop=stop,
        ):
            print(_line(record, args.raw), flush=True)
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # noqa: BLE001 - a person reads this: one clear line
        print(f"partnermatch events tail: cannot read {args.topic!r}: {exc}", file=sys.stderr)
        return 1
    return 0
