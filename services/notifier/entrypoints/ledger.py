"""Operators' view of the delivery ledger: `python -m services.notifier.entrypoints.ledger …`.

  stats              counters and the current backlog
  show PAIR_ID       a match and its deliveries (gone once finished NOTIFIER_LEDGER_KEEP_DAYS ago)
  uncertain          deliveries a dead worker left mid-send (never resent by themselves)
  release ID         after checking the mail server's log: send an uncertain delivery again
Does I/O (Redis).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from services.notifier.bootstrap import build_deps
from services.notifier.config import NotifierSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.notifier.entrypoints.ledger")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("stats")
    sub.add_parser("uncertain")
    show = sub.add_parser("show")
    show.add_argument("pair_id")
    release = sub.add_parser("release")
    release.add_argument("delivery_id")
    args = parser.parse_args(argv)
    ledger = build_deps(NotifierSettings.from_env()).ledger
    if args.command == "stats":
        print(json.dumps(ledger.counts(), indent=2, sort_keys=True))
    elif args.command == "uncertain":
        for delivery in ledger.uncertain():
            print(json.dumps(delivery, ensure_ascii=False, sort_keys=True))
    elif args.command == "show":
        print(
            json.dumps(
                {
                    "match": ledger.match(args.pair_id),
                    "deliveries": ledger.deliveries_of(args.pair_id),
                    # its records expire NOTIFIER_LEDGER_KEEP_DAYS after this; its id stays
                    "finished": ledger.was_finished(args.pair_id),
                },
                ensure_ascii=False,
                indent=2,
                sort_keys=True,
            )
        )
    elif args.command == "release":
        if not ledger.release(args.delivery_id, time.time()):
            print(f"{args.delivery_id} is not uncertain; nothing changed", file=sys.stderr)
            return 1
        print(f"{args.delivery_id} released: it will be sent again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
