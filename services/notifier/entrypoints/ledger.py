"""Operators' view of the delivery ledger: `partnermatch ledger ACTION` (or, where the console
script is not installed, `python -m services.notifier.entrypoints.ledger ACTION`).

  stats              counters and the current backlog
  show PAIR_ID       a match and its deliveries (gone once finished NOTIFIER_LEDGER_KEEP_DAYS ago)
  uncertain          deliveries a dead worker left mid-send (never resent by themselves)
  release ID         after checking the mail server's log: send an uncertain delivery again

It reads the notifier's Redis address as the notifier does (NOTIFIER_REDIS_URL, else REDIS_URL),
from the environment over the running local stack's `.state/stack.env`; it needs no secret key.
Exit code 1 when the ledger cannot be reached, a pair is unknown or a delivery is not uncertain.
Does I/O (Redis).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from partnermatch.settings import load_env

if TYPE_CHECKING:
    from services.notifier.adapters.redis_ledger import RedisDeliveryLedger

PROG = "partnermatch ledger"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ledger", help="look at the notifier's delivery ledger; release uncertain emails")
    _add_actions(parser)


def _add_actions(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ledger_command", metavar="ACTION")
    sub.required = True
    sub.add_parser("stats", help="the ledger's counters and its current backlog, as JSON")
    sub.add_parser("uncertain", help="deliveries a dead worker left mid-send, one JSON line each")
    show = sub.add_parser("show", help="a match, its deliveries and whether it is finished, as JSON")
    show.add_argument("pair_id")
    release = sub.add_parser("release", help="send an uncertain delivery again (check the mail server's log first)")
    release.add_argument("delivery_id")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    from services.notifier.bootstrap import build_ledger
    from services.notifier.config import NotifierSettings

    settings = NotifierSettings.from_env(load_env() if env is None else env)
    ledger = build_ledger(settings)
    try:
        return _act(args, ledger)
    except Exception as exc:  # noqa: BLE001 - a person reads this: one clear line
        print(f"{PROG}: failed against {settings.redis_url or '(no Redis address)'}: {exc}", file=sys.stderr)
        return 1


def _act(args: argparse.Namespace, ledger: RedisDeliveryLedger) -> int:
    if args.ledger_command == "stats":
        print(json.dumps(ledger.counts(), indent=2, sort_keys=True))
    elif args.ledger_command == "uncertain":
        for delivery in ledger.uncertain():
            print(json.dumps(delivery, ensure_ascii=False, sort_keys=True))
    elif args.ledger_command == "show":
        match, deliveries = ledger.match(args.pair_id), ledger.deliveries_of(args.pair_id)
        # its records expire NOTIFIER_LEDGER_KEEP_DAYS after this; its id stays
        finished = ledger.was_finished(args.pair_id)
        if match is None and not deliveries and not finished:
            print(f"{PROG}: no match {args.pair_id} in the ledger (never approved, or not yet read)", file=sys.stderr)
            return 1
        doc = {"match": match, "deliveries": deliveries, "finished": finished}
        print(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True))
    elif args.ledger_command == "release":
        if not ledger.release(args.delivery_id, time.time()):
            print(f"{PROG}: {args.delivery_id} is not uncertain; nothing changed", file=sys.stderr)
            return 1
        print(f"{args.delivery_id} released: it will be sent again")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.notifier.entrypoints.ledger")
    _add_actions(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
