"""`partnermatch settings`: print every environment variable, its default and meaning (markdown)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("settings", help="list every setting (environment variable) as a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from partnermatch.settings import markdown_table

    print(markdown_table())
    return 0
