"""The local mail sink of `make run`: each message lands in an .eml file and one log line."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

from launcher.procs import free_port
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


def test_the_mail_sink_writes_each_message_to_a_file_and_logs_it(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSINK_")}
    env.update(MAILSINK_PORT=str(port), PARTNERMATCH_STATE_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    log = tmp_path / "sink.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.notifier.entrypoints.mailsink"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[3],
        )
        try:
            wait_until(lambda: "mail sink listening" in log.read_text(), timeout=15, message="the sink")
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                smtp.sendmail(
                    "a@example.org",
                    ["jelena@example.rs"],
                    b"Subject: =?utf-8?b?0JfQtNGA0LDQstC+?=\r\n\r\nbody\r\n",
                )
            files = wait_until(lambda: list((tmp_path / "mail").glob("*.eml")), timeout=5)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
    [eml] = files
    assert str(message_from_bytes(eml.read_bytes(), policy=default_policy)["Subject"]) == "Здраво"
    output = log.read_text()
    assert f"to=jelena@example.rs subject=Здраво file={eml}" in output
    assert "mail sink stopped received=1" in output
