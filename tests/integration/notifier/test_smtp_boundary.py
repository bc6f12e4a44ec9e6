"""Where a broken SMTP conversation ends decides what happens next: before the message body it is
safe to retry; after the body, without the server's reply, nobody knows, so it is never resent."""

from __future__ import annotations

import socketserver
import threading

import pytest

from services.notifier import domain
from tests.integration.notifier.conftest import approval, record

pytestmark = pytest.mark.integration


class HangUpServer(socketserver.ThreadingTCPServer):
    """Speaks just enough SMTP, then drops the connection at `hang_up_at` ("rcpt" or "body")."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, hang_up_at: str) -> None:
        self.hang_up_at = hang_up_at
        self.bodies_received = 0
        super().__init__(("127.0.0.1", 0), _Conversation)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Conversation(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: HangUpServer = self.server  # type: ignore[assignment]
        self.wfile.write(b"220 hang-up.example ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO" or verb == b"HELO":
                self.wfile.write(b"250 hang-up.example\r\n")
            elif verb == b"MAIL":
                self.wfile.write(b"250 OK\r\n")
            elif verb == b"RCPT":
                if server.hang_up_at == "rcpt":
                    return
                self.wfile.write(b"250 OK\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                while self.rfile.readline() not in (b".\r\n", b""):
                    pass
                server.bodies_received += 1
                return  # the body arrived; the reply never leaves
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


@pytest.fixture
def hang_up():
    servers = []

    def start(where: str) -> HangUpServer:
        servers.append(HangUpServer(where))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def test_a_connection_lost_before_the_body_is_retried(direct, profiles, hang_up):
    server = hang_up("rcpt")
    recorder, worker = direct(smtp_port=server.port, smtp_timeout_s=2)
    payload = approval(profiles, "vojvodina", "tirana")
    record(recorder, payload)
    worker.drain()
    assert {d["state"] for d in worker.ledger.deliveries_of(payload["pair_id"])} == {domain.RETRY}
    assert server.bodies_received == 0


def test_no_reply_after_the_body_is_uncertain_and_never_resent(direct, profiles, hang_up):
    server = hang_up("body")
    recorder, worker = direct(smtp_port=server.port, smtp_timeout_s=2, retry_base_s=0.01)
    payload = approval(profiles, "vojvodina", "tirana")
    record(recorder, payload)
    worker.drain()
    deliveries = worker.ledger.deliveries_of(payload["pair_id"])
    assert {d["state"] for d in deliveries} == {domain.UNCERTAIN}
    assert all("no reply to the message body" in d["error"] for d in deliveries)
    assert server.bodies_received == 4
    assert worker.drain() == 0 and worker.ledger.due(worker.clock() + 10**6) == []
    assert server.bodies_received == 4
    assert len(worker.ledger.uncertain()) == 4, "listed for an operator"
