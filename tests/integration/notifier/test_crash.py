"""The notifier process dies right after the SMTP server accepted an email, before or after its
ledger recorded the send, and before its Kafka offset was committed; a new process replays the
event. No one gets a second email, and no one misses one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from services.notifier import domain
from services.notifier.adapters.redis_ledger import RedisDeliveryLedger
from tests.helpers import wait_until
from tests.integration.notifier.conftest import SECRET, SERVICE, approval, approved_event
from tests.integration.notifier.crashing_notifier import CRASH_EXIT_CODE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


class NotifierProcess:
    """`python -m <module> --topic <topic> <args>` with its output in a file: the notifier's entry
    point, or the test's that crashes it."""

    def __init__(
        self,
        env: dict[str, str],
        topic: str,
        log: Path,
        module: str = "services.notifier.entrypoints.consumer",
        args: tuple[str, ...] = (),
    ) -> None:
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--topic", topic, *args],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def exited(self) -> int | None:
        return self.proc.poll()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()
        return self.proc.returncode


def committed_offset(bootstrap: str, group: str, topic: str) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()


@pytest.fixture
def process_env(redis_server, kafka_bootstrap, profiles, sink, unique_name):
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NOTIFIER_", "MAILSINK_", "PARTNERMATCH_", "REDIS_", "KAFKA_"))
    }
    return {
        **inherited,
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
        "REDIS_URL": redis_server.url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PARTNERMATCH_SERVICE_TOKEN": SERVICE,
        "NOTIFIER_SECRET_KEY": SECRET,
        "NOTIFIER_PROFILES_URL": profiles.url,
        "NOTIFIER_SMTP_PORT": str(sink.port),
        "NOTIFIER_GROUP": unique_name("notifier"),
        "NOTIFIER_CLAIM_LEASE_S": "1",
        "NOTIFIER_RETRY_BASE_S": "0.2",
        "NOTIFIER_POLL_MS": "100",
        "NOTIFIER_SEND_THREADS": "1",
    }


@pytest.mark.parametrize(
    "crash_point, left_as, final",
    [
        ("before_ledger", domain.SENDING, domain.UNCERTAIN),
        ("after_ledger", domain.SENT, domain.SENT),
    ],
)
def test_killed_between_smtp_accept_and_kafka_commit_a_restarted_notifier_sends_no_second_email(
    crash_point,
    left_as,
    final,
    process_env,
    profiles,
    sink,
    publisher,
    decisions_topic,
    kafka_bootstrap,
    redis_client,
    tmp_path,
):
    payload = approval(profiles, "vojvodina", "tirana")
    recipients = [
        "jelena@vojvodina.example.rs",
        "milan@vojvodina.example.rs",
        "besa@tirana.example.al",
        "ivan@tirana.example.al",
    ]
    publisher.publish(decisions_topic, payload["pair_id"], approved_event(payload))

    first = NotifierProcess(
        process_env,
        decisions_topic,
        tmp_path / "first.log",
        module="tests.integration.notifier.crashing_notifier",
        args=("--crash-point", crash_point),
    )
    try:
        wait_until(lambda: first.exited() is not None, timeout=30, message="the first process to crash")
    finally:
        first.stop()
    assert first.proc.returncode == CRASH_EXIT_CODE, first.output()
    [accepted] = sink.messages
    [crashed_for] = accepted.rcpt_tos
    ledger = RedisDeliveryLedger(redis_client)
    crashed = domain.delivery_id(payload["pair_id"], crashed_for)
    assert ledger.delivery(crashed)["state"] == left_as, f"died after SMTP, {crash_point.replace('_', ' the ')} write"
    assert committed_offset(kafka_bootstrap, process_env["NOTIFIER_GROUP"], decisions_topic) is None, (
        "died before the Kafka commit"
    )

    second = NotifierProcess(process_env, decisions_topic, tmp_path / "second.log")
    try:
        wait_until(
            lambda: "approved match seen before" in second.output(),
            timeout=30,
            message="the restarted process to read the event again",
        )
        others = [r for r in recipients if r != crashed_for]
        wait_until(lambda: all(sink.messages_to(r) for r in others), timeout=20, message="the other emails")
        wait_until(
            lambda: ledger.delivery(crashed)["state"] == final,
            timeout=10,
            message=f"the dead worker's delivery to be {final}",
        )
        wait_until(
            lambda: committed_offset(kafka_bootstrap, process_env["NOTIFIER_GROUP"], decisions_topic) == 1,
            timeout=10,
            message="the restarted process to commit",
        )
        assert ledger.due(ledger.r.time()[0] + 3600) == [], "nothing is left to send"
    finally:
        assert second.stop() == 0, second.output()
    assert sorted(r for m in sink.messages for r in m.rcpt_tos) == sorted(recipients), "one email each"
    if final == domain.UNCERTAIN:
        assert "is now uncertain; it is NOT resent" in second.output()
