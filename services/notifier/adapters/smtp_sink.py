"""A local SMTP server that keeps what it receives: in memory, and as .eml files in a folder when
given one. The `mailsink` process and the tests share it; tests can make it answer 4xx/5xx.
Does I/O (a socket, files)."""

from __future__ import annotations

import email
import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    path: Path | None
    received_at: float

    def parsed(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=default_policy)


@dataclass
class Fault:
    """Answer `code text` at `stage` ("rcpt" or "data") for `rcpt` (any if None), `times` times."""

    code: int
    text: str
    stage: str = "data"
    rcpt: str | None = None
    times: int = 1
    hits: list[float] = field(default_factory=list)

    def matches(self, stage: str, rcpt: str) -> bool:
        return self.times > 0 and self.stage == stage and (self.rcpt is None or self.rcpt.lower() == rcpt.lower())


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        fault = self.sink._take_fault("rcpt", address)
        if fault is not None:
            return f"{fault.code} {fault.text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            fault = self.sink._take_fault("data", rcpt)
            if fault is not None:
                return f"{fault.code} {fault.text}"
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        self.sink._store(envelope.mail_from, tuple(envelope.rcpt_tos), data)
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        folder: str | Path | None = None,
        log_each: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.folder = Path(folder) if folder is not None else None
        self.log_each = log_each
        self._messages: list[ReceivedMessage] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._controller: Controller | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> SmtpSink:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        # aiosmtpd cannot listen on port 0 (its readiness check connects to the given port), so
        # pick a free port ourselves and try again if another process took it meanwhile.
        attempts = 1 if self.port else 5
        for attempt in range(attempts):
            port = self.port or _free_port()
            controller = Controller(
                _Handler(self),
                hostname=self.host,
                port=port,
                enable_SMTPUTF8=True,
                ready_timeout=5.0,
            )
            try:
                controller.start()
            except (OSError, RuntimeError):
                if attempt + 1 == attempts:
                    raise
                continue
            self.port = port
            self._controller = controller
            return self
        raise RuntimeError("unreachable")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what tests use -----------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def messages_to(self, address: str) -> list[ReceivedMessage]:
        address = address.lower()
        return [m for m in self.messages if address in (r.lower() for r in m.rcpt_tos)]

    def fail(
        self,
        code: int,
        text: str | None = None,
        stage: str = "data",
        rcpt: str | None = None,
        times: int = 1,
    ) -> Fault:
        if stage not in ("rcpt", "data"):
            raise ValueError("stage is rcpt or data")
        fault = Fault(
            code,
            text or ("Try again later" if code < 500 else "Mailbox unavailable"),
            stage,
            rcpt,
            times,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._faults.clear()

    # ---- the handler's side -------------------------------------------------------------------

    def _take_fault(self, stage: str, rcpt: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(stage, rcpt):
                    fault.times -= 1
                    fault.hits.append(time.time())
                    return fault
        return None

    def _store(self, mail_from: str, rcpt_tos: tuple[str, ...], data: bytes) -> None:
        path = None
        seq = next(self._seq)
        if self.folder is not None:
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{seq:06d}.eml"
            path = self.folder / name
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        message = ReceivedMessage(mail_from, rcpt_tos, data, path, time.time())
        with self._lock:
            self._messages.append(message)
        if self.log_each:
            logger.info(
                "mail received",
                extra={
                    "to": ",".join(rcpt_tos),
                    "subject": message.parsed()["Subject"],
                    "file": str(path) if path else "-",
                },
            )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
