"""For the tests of every service's HTTP edge: the hostile bodies, one service of the stack under
gunicorn (started as `partnermatch up` starts it), and a raw HTTP/1.1 client that sends the whole
body before it reads the answer, as a naive client does. A server that closes a socket with unread
data makes the kernel reset the connection; only a real server over a real socket shows that.
Does I/O (processes, sockets)."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import socket
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.procs import ServiceProcess, free_port
from launcher.stack import service_specs

ROOT = Path(__file__).resolve().parents[2]
FIVE_MB = 5 * 1024 * 1024


def _deep_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth  # compact: fits the review API's 64 KiB


# Each a whole JSON body, with the words the 400 must carry.
HOSTILE_JSON: dict[str, tuple[str, str]] = {
    "arrays nested 10,000 deep": ('{"username": ' + "[" * 10_000 + "]" * 10_000 + "}", "nested deeper than 32"),
    "objects nested 10,000 deep": ('{"username": ' + _deep_objects(10_000) + "}", "nested deeper than 32"),
    "a 5,000-digit integer": ('{"username": ' + "9" * 5_000 + "}", "more than 100 digits"),
    "a 5,000-digit fraction": ('{"username": 0.' + "1" * 5_000 + "}", "more than 100 digits"),
    "a number beyond a float": ('{"username": 1e999}', "out of range"),
    "NaN": ('{"username": NaN}', "NaN is not a JSON value"),
    "Infinity": ('{"username": Infinity}', "Infinity is not a JSON value"),
    "-Infinity": ('{"username": -Infinity}', "-Infinity is not a JSON value"),
}


def assert_refused_as_invalid_json(status: int, payload: Any, words: str) -> None:
    """A 400 in the APIs' error format whose message names the problem."""
    assert status == 400, payload
    assert payload["code"] == 400 and payload["status"] == "Bad Request"
    [message] = payload["errors"]["json"]
    assert message.startswith("Invalid JSON body: ") and words in message, message


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        assert self.headers.get_content_type() == "application/json", self.headers
        return json.loads(self.body)


class _Recorded:
    """What http.client.HTTPResponse needs of a socket, over bytes already received."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, *args: object, **kwargs: object) -> io.BytesIO:
        return io.BytesIO(self.data)


def send_whole_body(
    url: str,
    path: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    chunked: bool = False,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
) -> Answer:
    """Send the request and all of its body, then read the answer until the server closes.

    A connection reset surfaces as ConnectionResetError / BrokenPipeError, failing the test."""
    where = urllib.parse.urlsplit(url)
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {where.netloc}",
        f"Content-Type: {content_type}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        step = 64 * 1024
        payload = (
            b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step]) for i in range(0, len(body), step))
            + b"0\r\n\r\n"
        )
    else:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        sock.sendall(payload)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    response = http.client.HTTPResponse(_Recorded(bytes(received)))  # type: ignore[arg-type]
    response.begin()
    return Answer(response.status, response.headers, response.read())


_PORT_VARIABLE = {"profiles": "PROFILES_PORT", "review": "MATCHER_PORT", "unsubscribe": "NOTIFIER_PORT"}


@contextlib.contextmanager
def gunicorn_service(name: str, env: Mapping[str, str], log_file: Path | None = None) -> Iterator[str]:
    """The stack's service `name` ("profiles", "review" or "unsubscribe") under gunicorn on a free port,
    with `env` over the process environment; yields its base URL, stops it afterwards."""
    port = str(free_port())
    settings = {**os.environ, "LOG_LEVEL": "WARNING", **env, _PORT_VARIABLE[name]: port}
    spec = next(s for s in service_specs(settings) if s.name == name)
    process = ServiceProcess(
        name,
        spec.argv,
        env={**settings, **spec.env, **env},
        ready=spec.readiness(),
        cwd=ROOT,
        echo=False,
        log_file=log_file,
    )
    try:
        process.wait_ready(spec.start_timeout)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()
