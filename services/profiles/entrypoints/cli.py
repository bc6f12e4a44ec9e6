"""`partnermatch resync`: queue every current profile for re-publishing (refills a fresh broker)."""

from __future__ import annotations

import argparse
import sys

from partnermatch.logs import configure_logging
from partnermatch.settings import load_env


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "resync", help="re-publish every current profile from Redis to Kafka (through the outbox)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from services.profiles import services
    from services.profiles.bootstrap import build_deps
    from services.profiles.config import ProfilesSettings

    env = load_env()
    configure_logging(env)
    settings = ProfilesSettings.from_env(env)
    try:
        count = services.resync(build_deps(settings).store)
    except Exception as exc:  # noqa: BLE001 - a person reads this: one clear line
        print(f"partnermatch resync: failed against {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    print(f"queued {count} profiles for publishing; the relay sends them to Kafka")
    return 0
