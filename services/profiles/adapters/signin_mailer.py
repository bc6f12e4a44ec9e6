"""Sends sign-in links through the SMTP server every service uses (partnermatch.smtp), outside the
request that asked for them, so the answer takes as long whether or not the address is known.
Does I/O (SMTP, a thread pool).
"""

from __future__ import annotations

import logging
import threading
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
    """Runs work after the answer is sent: a small thread pool, made on first use, so it belongs to
    the process that uses it (gunicorn forks workers after creating nothing here)."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, work: Callable[[], Any]) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="profiles-background")
            self._pool.submit(self._run, work)

    @staticmethod
    def _run(work: Callable[[], Any]) -> None:
        try:
            work()
        except Exception:  # noqa: BLE001 - a background job has nobody to report to but the log
            logger.exception("background job failed")
