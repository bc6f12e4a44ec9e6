"""Every setting of the system in one table: `partnermatch settings` prints it (markdown), the README
holds it, and the deployment's checks read it. Each service declares its settings in its own
config module; this gathers them, so it stands above the services. No I/O beyond printing."""

from __future__ import annotations

import argparse

import launcher.metrics
import launcher.stack
import partnermatch.metrics
import services.matcher.batch
import services.matcher.config
import services.notifier.config
import services.profiles.config
from partnermatch.settings import REGISTRY, Setting

# The modules that declare settings; importing them fills the registry.
DECLARING = (
    services.profiles.config,
    services.matcher.config,
    services.matcher.batch,
    services.notifier.config,
    partnermatch.metrics,
    launcher.stack,
    launcher.metrics,
)


def all_settings() -> dict[str, Setting]:
    """Every declared setting, by name."""
    return dict(REGISTRY)


def markdown_table() -> str:
    """The README's table of settings, generated from the declarations."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in sorted(all_settings().values(), key=lambda s: s.name):
        default = "(secret, no default)" if s.secret else ("" if s.default is None else f"`{s.default}`")
        rows.append(f"| `{s.name}` | {default} | {s.help} |")
    return "\n".join(rows)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("settings", help="list every setting (environment variable) as a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(markdown_table())
    return 0
