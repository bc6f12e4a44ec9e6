"""Sends sign-in links through the SMTP server every service uses (partnermatch.smtp), outside the
request that asked for them, so the answer takes as long whether or not the address is known.
Does I/O (SMTP, a thread pool).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from partnermatch.mail import UnsafeHeader
from partnermatch.smtp import SmtpFailure, SmtpOutcomeUnknown, SmtpSettings
from services.profiles.signin_mail import build_signin_message

logger = logging.getLogger(__name__)


class SmtpSigninMailer:
    def __init__(self, smtp: SmtpSettings, link_minutes: int) -> None:
        self.smtp = smtp
        self.mailer = smtp.mailer()
        self.link_minutes = link_minutes

    def send_signin(self, contact: dict[str, Any], links: list[tuple[str, str]]) -> None:
        """Send one email; a failure is logged, not raised: the person asks again."""
        sender = self.smtp.sender_address
        try:
            msg = build_signin_message(contact, links, self.link_minutes, sender)
            self.mailer.send_one(msg, sender.addr_spec, msg["To"].addresses[0].addr_spec)
        except UnsafeHeader as exc:
            logger.warning("sign-in link not sent: unusable address", extra={"error": str(exc)})
        except (SmtpFailure, SmtpOutcomeUnknown) as exc:
            logger.warning("sign-in link not sent: SMTP", extra={"error": str(exc)})


class Background:
    """Runs work after the answer is sent, at a random moment within `jitter_s`: the work of a known
    address (a mail rendered and sent) then slows no particular later request, so timing the next
    answer tells nothing either. One timer thread keeps the waiting work (waiting holds no worker)
    and hands it to a small thread pool when due. Both are made on first use, so they belong to the
    process that uses them (gunicorn forks its workers before any is made)."""

    def __init__(self, workers: int = 2, jitter_s: tuple[float, float] = (0.2, 1.5)) -> None:
        self.workers = workers
        self.jitter_s = jitter_s
        self._pool: ThreadPoolExecutor | None = None
        self._due: list[tuple[float, int, Callable[[], Any]]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()

    def submit(self, work: Callable[[], Any]) -> None:
        with self._wake:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="profiles-background")
                threading.Thread(target=self._timer, name="profiles-background-timer", daemon=True).start()
            heapq.heappush(self._due, (time.monotonic() + random.uniform(*self.jitter_s), next(self._seq), work))
            self._wake.notify()

    def _timer(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _at, _n, work = heapq.heappop(self._due)
                assert self._pool is not None
                self._pool.submit(self._run, work)

    @staticmethod
    def _run(work: Callable[[], Any]) -> None:
        try:
            work()
        except Exception:  # noqa: BLE001 - a background job has nobody to report to but the log
            logger.exception("background job failed")
