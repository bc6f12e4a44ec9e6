"""docker-compose.yml and deploy/ stay in sync with the code: every variable is a real setting,
every command runs something that exists, no secret has a committed value."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import yaml

from launcher.cli import SUBCOMMANDS
from launcher.servers import REDIS_TUNING
from launcher.settings_table import all_settings
from launcher.stack import ServiceSpec, service_specs

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def _our_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == "partnermatch:latest"}


def test_compose_file_parses_and_has_kafka_in_kraft_mode_redis_with_aof_and_mailpit():
    services = _compose()["services"]
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert "--appendonly" in services["redis"]["command"]
    assert services["mailpit"]["image"].startswith("axllent/mailpit")
    assert _our_services(_compose()), "no service is built from deploy/Dockerfile"


def test_compose_runs_redis_with_the_settings_the_stack_gives_its_own():
    command = _compose()["services"]["redis"]["command"]
    assert REDIS_TUNING, "the stack tunes nothing: drop this test"
    for name, value in REDIS_TUNING.items():
        assert f"--{name}" in command, f"docker-compose.yml's redis lacks --{name}"
        assert command[command.index(f"--{name}") + 1] == value


def test_every_variable_given_to_our_services_is_a_declared_setting():
    known = all_settings()
    for name, svc in _our_services(_compose()).items():
        unknown = set(svc.get("environment", {})) - set(known)
        assert not unknown, f"{name} sets variables no code reads: {sorted(unknown)}"


def test_secrets_have_no_committed_value_in_the_compose_file():
    secrets = {n for n, s in all_settings().items() if s.secret}
    for name, svc in _our_services(_compose()).items():
        for var in secrets & set(svc.get("environment", {})):
            value = str(svc["environment"][var])
            assert re.fullmatch(r"\$\{" + var + r":\?[^}]*\}", value), f"{name}: {var} must come from the environment"


def test_every_service_command_names_code_that_exists():
    for name, svc in _our_services(_compose()).items():
        cmd = svc["command"]
        if cmd[0] == "partnermatch":
            assert cmd[1] in SUBCOMMANDS, f"{name}: no subcommand {cmd[1]}"
        elif cmd[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(cmd[2]) is not None, f"{name}: no module {cmd[2]}"
        elif cmd[0] == "gunicorn":
            target = cmd[-1]
            module, _, factory = target.partition(":")
            assert callable(getattr(importlib.import_module(module), factory.removesuffix("()"))), name
        else:
            raise AssertionError(f"{name}: unexpected command {cmd}")


def test_dockerfile_copies_only_paths_that_exist():
    for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY") and "--from" not in line:
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"


def test_every_gunicorn_app_keeps_its_workers_metrics_in_a_folder_emptied_at_each_start():
    for name, svc in _our_services(_compose()).items():
        if svc["command"][0] == "gunicorn":
            folder = svc["environment"].get("PROMETHEUS_MULTIPROC_DIR")
            assert folder and folder in svc.get("tmpfs", []), f"{name}: PROMETHEUS_MULTIPROC_DIR on a tmpfs"
            assert svc["environment"].get("PARTNERMATCH_METRICS_ALLOW"), f"{name}: who may read /metrics"


# What the local launcher runs in place of a part of the deployment: the mail sink for Mailpit.
LOCAL_STAND_INS = {"mailsink": "mailpit"}


def _launched(env: dict[str, str] | None = None) -> dict[str, ServiceSpec]:
    return {spec.name: spec for spec in service_specs(env or {})}


def test_the_launcher_and_the_compose_file_name_the_same_processes():
    # `partnermatch up` runs redis and the broker itself, then what the services declare; the
    # compose file also runs `topics ensure` once, which `up` does before the services start.
    compose = set(_compose()["services"])
    launched = {LOCAL_STAND_INS.get(name, name) for name in _launched()} | {"redis", "kafka"}
    assert launched == compose - {"topics"}


def test_each_process_runs_the_same_command_in_the_launcher_and_the_compose_file():
    launched = _launched()
    for name, svc in _our_services(_compose()).items():
        if name == "topics":
            continue
        argv, command = launched[name].argv, svc["command"]
        if command[0] == "gunicorn":
            assert "gunicorn" in argv and argv[-1] == command[-1], name
            assert argv[argv.index("--bind") + 1].rpartition(":")[2] == command[2].rpartition(":")[2], name
        else:
            assert argv[1:] == command[1:], name


def _worker_options(argv: list[str]) -> dict[str, str]:
    """How many gunicorn workers, of which class and with how many threads a command line asks for,
    and how long a stop waits for the requests in hand."""
    return {option: argv[at + 1] for at, option in enumerate(argv) if option in WORKER_OPTIONS}


WORKER_OPTIONS = ("--workers", "-w", "--worker-class", "-k", "--threads", "--graceful-timeout")

# What `docker compose stop` waits after SIGTERM before SIGKILL, unless a service sets its own.
COMPOSE_STOP_GRACE = "10s"


def test_each_web_app_runs_as_many_gunicorn_workers_in_the_launcher_as_in_the_compose_file():
    launched = _launched()
    apps = [name for name, svc in _our_services(_compose()).items() if svc["command"][0] == "gunicorn"]
    assert apps
    for name in apps:
        asked = _worker_options(_our_services(_compose())[name]["command"])
        assert asked.get("--workers"), name
        assert asked == _worker_options(launched[name].argv), name


def test_the_matcher_consumer_can_be_scaled_like_the_launchers_matchers_option():
    # `docker compose up --scale matcher=N` is `partnermatch up --matchers N`: the same command in
    # one consumer group, which needs no fixed container name or published port.
    matcher = _our_services(_compose())["matcher"]
    assert "container_name" not in matcher and "ports" not in matcher
    launched = [s for s in _launched({"PARTNERMATCH_MATCHERS": "2"}).values() if s.name.startswith("matcher-")]
    assert [s.name for s in launched if s.name != "matcher-relay"] == ["matcher-1", "matcher-2"]
    assert all(s.argv[1:] == matcher["command"][1:] for s in launched if s.name != "matcher-relay")


def test_a_web_app_stopped_by_compose_finishes_its_requests_before_it_is_killed():
    # gunicorn waits 30 s for its workers by default; compose kills after the stop grace period
    for name, svc in _our_services(_compose()).items():
        if svc["command"][0] == "gunicorn":
            graceful = float(_worker_options(svc["command"]).get("--graceful-timeout", "30"))
            grace = str(svc.get("stop_grace_period", COMPOSE_STOP_GRACE))
            assert grace.endswith("s") and graceful < float(grace[:-1]), name
