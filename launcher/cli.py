"""The `partnermatch` console script: one entry point for people, subcommands per concern. It stands
above the services (it names their commands), so it lives with the launcher.

Each subcommand lives with the code it drives and registers itself through `add_parser`;
modules are imported lazily so `partnermatch --help` stays fast and nothing connects at import.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module that defines add_parser(subparsers) setting `func` on its parser
SUBCOMMANDS: dict[str, str] = {
    "match": "services.matcher.batch",
    "lemmas": "services.matcher.lemmas_cli",
    "events": "partnermatch.events_cli",
    "resync": "services.profiles.entrypoints.cli",
    "settings": "launcher.settings_table",
    "topics": "partnermatch.topics_cli",
    "up": "launcher.up",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="partnermatch",
        description="Find partners for organisations across clusters, countries and languages.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in SUBCOMMANDS.values():
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code = args.func(args)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
