"""Test-only entry point: the real notifier process (its consumer, delivery worker, ledger, profiles
client and SMTP mailer), killed with os._exit the moment the SMTP server accepted its first email,
before or after the ledger records the send. Its consumer holds the approved event it recorded
until then, so the crash also lands before the Kafka commit.

`python -m tests.integration.notifier.crashing_notifier --topic T --crash-point before_ledger`
"""

from __future__ import annotations

import argparse
import os
import signal
from typing import NoReturn

from partnermatch import events
from partnermatch.logs import configure_logging
from partnermatch.messaging import EventHandlers
from services.notifier.bootstrap import build_deps
from services.notifier.config import NotifierSettings
from services.notifier.entrypoints.consumer import Notifier
from tests.unit.notifier.fakes import CRASH_POINTS, MailerThatDiesAfterAccept

CRASH_EXIT_CODE = 70
# Longer than the test waits for the crash: if the email never goes, the test fails on its timeout.
HOLD_S = 60.0


def die() -> NoReturn:
    os._exit(CRASH_EXIT_CODE)


class NotifierThatHoldsItsCommit(Notifier):
    """Records an approved match as the notifier does, then waits (for the delivery worker's crash)
    before the consumer may commit the event's offset."""

    @property
    def handlers(self) -> EventHandlers:
        table = dict(super().handlers)
        record = table[events.MATCH_APPROVED]

        def record_then_hold(envelope: events.Envelope) -> object:
            outcome = record(envelope)
            self.stop.wait(HOLD_S)
            return outcome

        table[events.MATCH_APPROVED] = record_then_hold
        return table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.integration.notifier.crashing_notifier")
    parser.add_argument("--topic", required=True, help="the test's topic of match decisions")
    parser.add_argument("--crash-point", required=True, choices=CRASH_POINTS)
    args = parser.parse_args()
    configure_logging(os.environ)
    settings = NotifierSettings.from_env()
    settings.require_service_token()
    deps = build_deps(settings)
    deps.mailer = MailerThatDiesAfterAccept(deps.mailer, args.crash_point, die)
    notifier = NotifierThatHoldsItsCommit(settings, deps=deps, topic=args.topic)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: notifier.stop.set())
    notifier.run()


if __name__ == "__main__":
    main()
