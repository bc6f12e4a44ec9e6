"""The local stack launcher against the real programs: redis-server with AOF, the Tansu broker with
kafka-python 3.x, service processes that fail or run, and a shutdown that leaves nothing behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from launcher.procs import RestartPolicy, StackError, free_port, http_ready
from launcher.servers import RedisServer
from launcher.stack import ServiceSpec, Stack
from partnermatch.broker import ensure_topics, kafka_ready
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


# ---- looking at processes through /proc ------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _live_children() -> set[int]:
    """Pids of this test process's children that are running (not zombies)."""
    me = os.getpid()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == me and stat[0] != "Z":
                found.add(int(entry.name))
    return found


def _running_with(text: str) -> list[str]:
    """Command lines of running processes (not zombies) that contain `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        stat = _stat(int(entry.name))
        if text in cmdline and stat is not None and stat[0] != "Z":
            found.append(cmdline)
    return found


def _ping(url: str) -> bool:
    client = redis.Redis.from_url(url)
    try:
        return client.ping() is True
    finally:
        client.close()


def _python(code: str, *extra: str) -> list[str]:
    return [sys.executable, "-c", code, *extra]


# ---- Redis ------------------------------------------------------------------------------------


def test_redis_runs_with_aof_on_and_answers(redis_server, redis_client):
    assert redis_client.ping() is True
    assert redis_client.config_get("appendonly") == {"appendonly": "yes"}
    assert (redis_server.dir / "appendonlydir").is_dir()
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


def test_data_written_survives_a_restart_on_the_same_folder(tmp_path):
    with RedisServer(tmp_path) as first:
        client = redis.Redis.from_url(first.url)
        client.set("profile:1", "Agro Novi Sad")
        client.xadd("outbox", {"event": "profile.upserted"})
        client.close()

    with RedisServer(tmp_path) as second:
        client = redis.Redis.from_url(second.url)
        assert client.get("profile:1") == b"Agro Novi Sad"
        assert [fields for _id, fields in client.xrange("outbox")] == [{b"event": b"profile.upserted"}]
        client.close()


def test_redis_refuses_a_port_that_is_taken_with_its_own_words(redis_server, tmp_path):
    with pytest.raises(StackError) as failure:
        RedisServer(tmp_path, port=redis_server.port, timeout=5)
    first_line, *log = str(failure.value).splitlines()
    assert first_line.startswith("redis exited with code")
    assert any("in use" in line.lower() for line in log)


def test_a_port_taken_after_it_was_chosen_is_traded_for_another(redis_server, tmp_path, monkeypatch):
    ports = iter([redis_server.port, free_port()])
    monkeypatch.setattr("launcher.servers.free_port", lambda: next(ports))

    with RedisServer(tmp_path) as server:
        assert server.port != redis_server.port
        assert _ping(server.url)


# ---- the broker --------------------------------------------------------------------------------


def test_ensure_topics_is_idempotent_and_creates_the_declared_partition_counts(kafka_bootstrap, unique_name):
    wide, narrow = unique_name("wide"), unique_name("narrow")
    ensure_topics(kafka_bootstrap, {wide: 3})
    ensure_topics(kafka_bootstrap, {wide: 3, narrow: 1})

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="test-stack")
    try:
        counts = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([wide, narrow])}
    finally:
        admin.close()
    assert counts == {wide: 3, narrow: 1}


def test_the_broker_takes_an_idempotent_produce_and_a_group_reads_it_back_with_key_and_headers(
    kafka_bootstrap, unique_name
):
    topic = unique_name("roundtrip")
    ensure_topics(kafka_bootstrap, {topic: 3})
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=0)
    try:
        metadata = producer.send(
            topic,
            key=b"org-42",
            value=b'{"event_type": "profile.upserted"}',
            headers=[("event_type", b"profile.upserted"), ("version", b"1")],
        ).get(timeout=10)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_name("group"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    try:
        batch = wait_until(lambda: consumer.poll(timeout_ms=500), timeout=20, message="the record to arrive")
        [record] = [r for records in batch.values() for r in records]
        consumer.commit()
    finally:
        consumer.close()
    assert (record.partition, record.offset) == (metadata.partition, metadata.offset)
    assert record.key == b"org-42"
    assert record.value == b'{"event_type": "profile.upserted"}'
    assert list(record.headers) == [("event_type", b"profile.upserted"), ("version", b"1")]


# ---- the whole stack ---------------------------------------------------------------------------


def test_a_service_that_exits_at_once_fails_the_stack_with_its_name_and_log_and_leaves_nothing(
    tmp_path,
):
    marker = f"orphan-{uuid.uuid4().hex}"
    # It leaves a grandchild behind in its process group, as a crashing gunicorn master might.
    crashing = _python(
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', '{marker}'])\n"
        "print('config error: PROFILES_PORT must be an integer', flush=True)\n"
        "sys.exit(3)\n"
    )
    before = _live_children()
    stack = Stack(tmp_path, specs=[ServiceSpec("profiles", crashing)], echo=False)

    with pytest.raises(StackError) as failure:
        stack.start()

    first_line, *log = str(failure.value).splitlines()
    assert first_line.startswith("profiles exited with code 3 before it was ready")
    assert "config error: PROFILES_PORT must be an integer" in "\n".join(log)
    assert "config error" in (tmp_path / "logs" / "profiles.log").read_text()
    assert _live_children() <= before
    wait_until(lambda: not _running_with(marker), timeout=5, message="the grandchild to be gone")


def test_a_service_that_never_gets_ready_fails_the_stack_after_its_timeout(tmp_path):
    port = free_port()
    silent = ServiceSpec(
        "review",
        _python("import time; time.sleep(60)"),
        ready_url=f"http://127.0.0.1:{port}/health",
        start_timeout=1.0,
    )
    before = _live_children()

    with pytest.raises(StackError, match=r"^review was not ready after 1 s"):
        Stack(tmp_path, specs=[silent], echo=False).start()

    assert _live_children() <= before


def test_a_port_another_program_listens_on_fails_the_stack_before_anything_starts(tmp_path):
    """A second `partnermatch up` on the first one's ports used to say it was running, the first
    stack answering its readiness checks, then lost its web parts: it now refuses, naming the part,
    the address and the setting to change, and starts nothing."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = {**os.environ, "PROFILES_HOST": "127.0.0.1", "PROFILES_PORT": str(port)}
        before = _live_children()
        with pytest.raises(StackError) as refused:
            Stack(tmp_path / "state", env=env, echo=False).start()
    assert str(refused.value) == (
        f"profiles cannot listen on 127.0.0.1:{port}: another program (another `partnermatch up`?) listens "
        "there; stop it, or set PROFILES_PORT to a free port"
    )
    assert _live_children() <= before and not (tmp_path / "state" / "redis").exists()


def test_two_parts_set_to_one_port_fail_the_stack_naming_both(tmp_path):
    port = str(free_port())
    env = {**os.environ, "PROFILES_HOST": "127.0.0.1", "MATCHER_HOST": "127.0.0.1"}
    env |= {"PROFILES_PORT": port, "MATCHER_PORT": port}
    with pytest.raises(StackError) as refused:
        Stack(tmp_path / "state", env=env, echo=False).start()
    assert str(refused.value) == (
        f"two parts would listen on one port: profiles on 127.0.0.1:{port} (PROFILES_PORT), "
        f"review on 127.0.0.1:{port} (MATCHER_PORT)"
    )


def test_an_unreachable_external_kafka_fails_the_stack_naming_it(tmp_path):
    nowhere = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": nowhere}
    before = _live_children()

    with pytest.raises(StackError, match=rf"^kafka at {nowhere} is not reachable"):
        Stack(tmp_path, env=env, specs=[], echo=False, kafka_timeout=1.0).start()

    assert _live_children() <= before


def test_a_running_stack_relays_service_lines_and_its_shutdown_leaves_no_process(tmp_path, capsys):
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    port = free_port()
    web = ServiceSpec(
        "web",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ready_url=f"http://127.0.0.1:{port}/",
        address=f"http://127.0.0.1:{port}",
    )
    before = _live_children()

    with Stack(tmp_path / "state", env=env, specs=[web], topics={"smoke": 1}) as stack:
        assert stack.check() is None
        assert stack.broker is not None and stack.redis is not None
        parts = {p.name: p.pid for p in stack.processes()}
        assert set(parts) == {"web", "kafka", "redis"}
        assert _ping(stack.env["REDIS_URL"])
        assert kafka_ready(stack.env["KAFKA_BOOTSTRAP_SERVERS"])
        broker_port = stack.broker.port

    assert _live_children() <= before
    assert all(_stat(pid) is None for pid in parts.values())
    assert not _running_with(f"tcp://127.0.0.1:{broker_port}")
    assert not _running_with(str(tmp_path))
    relayed = capsys.readouterr().err
    assert re.search(r"^\d\d:\d\d:\d\d web +\| .*\"GET / HTTP/1\.1\" 200", relayed, re.MULTILINE)
    assert "GET / HTTP/1.1" in (tmp_path / "state" / "logs" / "web.log").read_text()


UP_WITH_A_FAKE_SERVICE = """
import sys
from launcher import cli, stack
marker, state, mode = sys.argv[1:]
stack.service_specs = lambda env: [
    stack.ServiceSpec(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(60)", marker + "-service"],
        ready=(lambda: False) if mode == "never-ready" else None,
        address="(no address: " + marker + ")",
    )
]
sys.exit(cli.main(["up", "--no-demo", "--state-dir", state]))
"""


def _up(tmp_path: Path, marker: str, mode: str) -> tuple[subprocess.Popen, Path, Path]:
    """`partnermatch up` in a child process, with one fake service instead of the real ones."""
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["PYTHONPATH"] = str(ROOT)
    out, err = tmp_path / "up.out", tmp_path / "up.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        up = subprocess.Popen(
            _python(UP_WITH_A_FAKE_SERVICE, marker, str(tmp_path / "state"), mode),
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    return up, out, err


def _kill(up: subprocess.Popen) -> None:
    if up.poll() is None:
        os.killpg(up.pid, signal.SIGKILL)
        up.wait(5)


def test_partnermatch_up_prints_its_banner_and_stops_every_part_on_sigterm(tmp_path):
    marker = f"sleeper-{uuid.uuid4().hex}"
    up, out, err = _up(tmp_path, marker, "settles")
    service = f"{marker}-service"  # the marker alone is in the launcher's own command line
    try:
        wait_until(
            lambda: "partnermatch is running" in out.read_text() or up.poll() is not None,
            timeout=20,
            message="the banner",
        )
        banner = out.read_text()
        assert "partnermatch is running" in banner, err.read_text()
        bootstrap = re.search(r"kafka +(127\.0\.0\.1:\d+)", banner).group(1)
        assert re.search(r"redis +redis://127\.0\.0\.1:\d+/0", banner)
        assert f"sleeper       (no address: {marker})" in banner
        assert _running_with(service)

        up.send_signal(signal.SIGTERM)
        assert up.wait(20) == 0, err.read_text()
    finally:
        _kill(up)

    assert not _running_with(service)
    assert not _running_with(f"tcp://{bootstrap}")
    assert not _running_with(str(tmp_path))
    assert re.search(r"^\d\d:\d\d:\d\d kafka +\| ", err.read_text(), re.MULTILINE)


def test_ctrl_c_while_partnermatch_up_waits_for_a_service_stops_everything_at_once(tmp_path):
    marker = f"sleeper-{uuid.uuid4().hex}"
    up, out, err = _up(tmp_path, marker, "never-ready")
    service = f"{marker}-service"  # the marker alone is in the launcher's own command line
    try:
        wait_until(lambda: _running_with(service), timeout=20, message="the service to start")
        up.send_signal(signal.SIGINT)
        assert up.wait(10) == 130, err.read_text()
    finally:
        _kill(up)

    assert "partnermatch is running" not in out.read_text()
    assert "partnermatch up: sleeper: start interrupted" in err.read_text()
    assert not _running_with(service)
    assert not _running_with(str(tmp_path))


# ---- supervision -------------------------------------------------------------------------------

QUICK = RestartPolicy(first_delay_s=0.1, factor=2.0, max_delay_s=1.0, give_up_after=3, window_s=30.0)


def _supervise_until(stack: Stack, predicate, timeout: float, message: str):
    """Run the supervisor, as `partnermatch up` does, until `predicate()` holds."""
    fatal: list[str] = []

    def check():
        problem = stack.supervise()
        if problem is not None:
            fatal.append(problem)
        return fatal or predicate()

    wait_until(check, timeout=timeout, interval=0.1, message=message)
    return fatal[0] if fatal else None


def _no_broker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}


def test_a_service_killed_is_restarted_while_the_others_keep_serving_and_its_log_is_appended(tmp_path, caplog):
    port = free_port()
    web = ServiceSpec(
        "web",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ready_url=f"http://127.0.0.1:{port}/",
    )
    worker = ServiceSpec("worker", _python("print('working', flush=True); import time; time.sleep(60)"))
    caplog.set_level("WARNING", logger="launcher.procs")

    with Stack(
        tmp_path, env=_no_broker_env(), specs=[web, worker], topics={}, echo=False, restart_policy=QUICK
    ) as stack:
        [old] = [p for p in stack.processes() if p.name == "worker"]
        os.kill(old.pid, signal.SIGKILL)

        def restarted():
            [now] = [p for p in stack.processes() if p.name == "worker"]
            assert http_ready(f"http://127.0.0.1:{port}/")(), "the web part stopped answering"
            return now.pid != old.pid and now.alive

        assert _supervise_until(stack, restarted, 10, "the worker to be restarted") is None
        wait_until(
            lambda: (tmp_path / "logs" / "worker.log").read_text().count("working") == 2,
            timeout=5,
            message="the second run's line appended to the log",
        )

    log = (tmp_path / "logs" / "worker.log").read_text()
    assert log.count("worker started, pid") == 2
    died = [r for r in caplog.records if r.getMessage() == "part died; restarting it"]
    assert [(r.part, r.how, r.restart) for r in died] == [("worker", "was killed by SIGKILL", 1)]


def test_a_service_that_keeps_dying_is_given_up_with_its_last_words_and_the_stack_goes_on(tmp_path, caplog):
    first_run = tmp_path / "first-run-done"
    # Runs the first time; every later start fails at once, as a broken deploy would.
    flaky = _python(
        "import pathlib, sys, time\n"
        f"flag = pathlib.Path({str(first_run)!r})\n"
        "if flag.exists():\n"
        "    print('cannot open the database', flush=True); sys.exit(4)\n"
        "flag.touch(); time.sleep(60)\n"
    )
    caplog.set_level("WARNING", logger="launcher.procs")

    with Stack(
        tmp_path / "state",
        env=_no_broker_env(),
        specs=[ServiceSpec("flaky", flaky)],
        topics={},
        echo=False,
        restart_policy=QUICK,
    ) as stack:
        [part] = [p for p in stack.supervisor.parts if p.name == "flaky"]
        os.kill(part.process.pid, signal.SIGKILL)
        fatal = _supervise_until(stack, lambda: part.given_up, 15, "the flaky part to be given up")
        assert fatal is None, "a service given up does not end the stack"
        assert _ping(stack.env["REDIS_URL"])
        assert stack.supervise() is None

    [given_up] = [r for r in caplog.records if r.getMessage() == "part given up"]
    assert (given_up.part, given_up.how, given_up.deaths) == ("flaky", "exited with code 4", 3)
    assert given_up.last_lines.endswith("cannot open the database")


def test_redis_killed_comes_back_on_its_port_with_its_data(tmp_path):
    with Stack(tmp_path, env=_no_broker_env(), specs=[], topics={}, echo=False, restart_policy=QUICK) as stack:
        url = stack.env["REDIS_URL"]
        client = redis.Redis.from_url(url)
        client.set("profile:1", "Agro Novi Sad")
        old = stack.redis.pid
        os.kill(old, signal.SIGKILL)

        def back():
            return stack.redis.pid != old and stack.redis.process.ready()

        assert _supervise_until(stack, back, 15, "redis to serve again") is None
        assert client.get("profile:1") == b"Agro Novi Sad"
        client.close()


def test_a_broker_that_cannot_come_back_ends_the_stack_with_a_message_naming_it(tmp_path):
    with Stack(tmp_path, env=_no_broker_env(), specs=[], topics={}, echo=False, restart_policy=QUICK) as stack:
        port = stack.broker.port
        os.kill(stack.broker.pid, signal.SIGKILL)
        wait_until(lambda: not stack.broker.process.alive, timeout=5, message="the broker to die")
        with socket.socket() as squatter:  # someone else takes the broker's port meanwhile
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            fatal = _supervise_until(stack, lambda: False, 20, "the broker to be given up")

    assert fatal is not None and fatal.startswith("kafka ")
    assert "it died 3 times within 30 s, so it is not restarted any more" in fatal


def _pids_running_with(text: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            stat = _stat(int(entry.name))
            if text in cmdline and stat is not None and stat[0] != "Z" and "setpriv" not in cmdline:
                found.add(int(entry.name))
    return found


def test_partnermatch_up_restarts_a_service_killed_with_sigkill_and_says_so(tmp_path):
    marker = f"sleeper-{uuid.uuid4().hex}"
    up, out, err = _up(tmp_path, marker, "settles")
    service = f"{marker}-service"
    try:
        wait_until(
            lambda: "partnermatch is running" in out.read_text() or up.poll() is not None,
            timeout=20,
            message="the banner",
        )
        [old] = wait_until(lambda: _pids_running_with(service), timeout=5, message="the service")
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: _pids_running_with(service) - {old}, timeout=10, message="the service to be restarted")
        assert up.poll() is None, err.read_text()
        log = err.read_text()
        assert re.search(r"part died; restarting it part=sleeper how=was killed by SIGKILL .*restart=1", log), log
        up.send_signal(signal.SIGTERM)
        assert up.wait(20) == 0, err.read_text()
    finally:
        _kill(up)
    assert not _running_with(service)


def test_partnermatch_up_exits_1_naming_the_broker_when_it_cannot_come_back(tmp_path):
    marker = f"sleeper-{uuid.uuid4().hex}"
    up, out, err = _up(tmp_path, marker, "settles")
    try:
        wait_until(
            lambda: "partnermatch is running" in out.read_text() or up.poll() is not None,
            timeout=20,
            message="the banner",
        )
        port = int(re.search(r"kafka +127\.0\.0\.1:(\d+)", out.read_text()).group(1))
        with socket.socket() as squatter:  # someone else takes the broker's port meanwhile
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            deadline = time.monotonic() + 20
            while True:
                # On a busy machine the supervisor may restart the broker (after 0.5 s) before the
                # port is taken: then that one is killed too, and the port tried again.
                for broker in _pids_running_with(f"tcp://127.0.0.1:{port}"):
                    os.kill(broker, signal.SIGKILL)
                    wait_until(
                        lambda pid=broker: _stat(pid) is None or _stat(pid)[0] == "Z",
                        timeout=5,
                        message="the broker to die",
                    )
                try:
                    squatter.bind(("127.0.0.1", port))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
            squatter.listen()
            assert up.wait(40) == 1, err.read_text()
    finally:
        _kill(up)

    log = err.read_text()
    assert re.search(
        r"^partnermatch up: kafka exited with code \d+; it died 5 times within 60 s, so it is not "
        r"restarted any more",
        log,
        re.MULTILINE,
    ), log
    assert "stopping everything." in log
    assert not _running_with(f"{marker}-service")
    assert not _running_with(str(tmp_path))
