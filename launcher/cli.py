"""The `partnermatch` console script: one entry point for people, subcommands per concern. It stands
above the services (it names their commands), so it lives with the launcher.

Each subcommand lives with the code it drives and registers itself through `add_parser`. Only the
module of the command given is imported (all of them for `--help`), so `partnermatch topics ensure`
in deployment loads the Kafka adapter's command and nothing of the local launcher; nothing
connects at import.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module that defines add_parser(subparsers) setting `func` on its parser
SUBCOMMANDS: dict[str, str] = {
    "match": "services.matcher.batch",
    "lemmas": "services.matcher.lemmas_cli",
    "ledger": "services.notifier.entrypoints.ledger",
    "events": "partnermatch.events_cli",
    "resync": "services.profiles.entrypoints.cli",
    "settings": "launcher.settings_table",
    "topics": "partnermatch.topics_cli",
    "up": "launcher.up",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of `command` alone when it is one of ours, else of every command (for help, or to
    name the choices in an error)."""
    parser = argparse.ArgumentParser(
        prog="partnermatch",
        description="Find partners for organisations across clusters, countries and languages.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in [command] if command in SUBCOMMANDS else SUBCOMMANDS:
        importlib.import_module(SUBCOMMANDS[name]).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    code = args.func(args)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
