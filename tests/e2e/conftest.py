"""The whole system as real processes on loopback (launcher.stack, as `partnermatch up` runs it),
one per test module, and the helpers the end-to-end tests share: a JSON/form HTTP call and the
mail sink's files read as emails."""

from __future__ import annotations

import email
import email.policy
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from launcher.procs import free_port
from launcher.stack import Stack


def call(method: str, url: str, body=None, token: str | None = None, form: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/x-www-form-urlencoded" if form is not None else "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, (
                json.loads(raw)
                if raw and resp.headers.get_content_type() == "application/json"
                else raw.decode("utf-8", "replace")
            )
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def mails(folder: Path) -> list[email.message.EmailMessage]:
    """Every email the mail sink kept, oldest first."""
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted(folder.glob("*.eml"))]


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    """Settings a test module adds to the stack's environment (override it in the module)."""
    return {}


@pytest.fixture(scope="module")
def system(tmp_path_factory, stack_env):
    state = tmp_path_factory.mktemp("stack")
    ports = {name: str(free_port()) for name in ("PROFILES_PORT", "MATCHER_PORT", "NOTIFIER_PORT", "MAILSINK_PORT")}
    env = {
        **os.environ,
        **ports,
        "NOTIFIER_SMTP_PORT": ports["MAILSINK_PORT"],
        "MAILSINK_DIR": str(state / "mail"),
        "MATCHER_MIN_SCORE": "0.01",
        "NOTIFIER_POLL_MS": "100",
        "LOG_LEVEL": "WARNING",
        **stack_env,
    }
    stack = Stack(state, env=env, echo=False).start()
    stack.urls = {
        "profiles": f"http://127.0.0.1:{ports['PROFILES_PORT']}",
        "review": f"http://127.0.0.1:{ports['MATCHER_PORT']}",
    }
    stack.mail = state / "mail"
    yield stack
    stack.stop()
