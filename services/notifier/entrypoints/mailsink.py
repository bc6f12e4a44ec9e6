"""The local SMTP sink for `make run`: `python -m services.notifier.entrypoints.mailsink`.

Accepts every message, writes it as an .eml file to MAILSINK_DIR and logs one line per message.
Not for deployment (docker-compose uses Mailpit). Does I/O (a socket, files).
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from partnermatch.logs import configure_logging
from services.notifier.adapters.smtp_sink import SmtpSink
from services.notifier.config import MailSinkSettings

logger = logging.getLogger(__name__)


def main() -> None:
    configure_logging(os.environ)
    # aiosmtpd logs every SMTP command at INFO; one line per message is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    settings = MailSinkSettings.from_env()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sink = SmtpSink(settings.host, settings.port, settings.folder, log_each=True).start()
    logger.info(
        "mail sink listening",
        extra={"smtp": f"{settings.host}:{sink.port}", "folder": str(settings.folder)},
    )
    try:
        stop.wait()
    finally:
        sink.stop()
        logger.info("mail sink stopped", extra={"received": len(sink.messages)})


if __name__ == "__main__":
    main()
