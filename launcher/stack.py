"""The local stack: a real redis-server, a real Kafka-protocol broker (Tansu) and every process the
services declare (`services/<name>/processes.py`), started and stopped as one. Used by
`partnermatch up` and by the tests, so both run the same parts.

If a part fails to start, everything already started is stopped and the error names the part
with the end of its log. Once running, a part that dies is restarted with backoff while the others
keep serving. Does I/O (processes, sockets, files).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from launcher.metrics import PartState
from launcher.procs import Part, RestartPolicy, ServiceProcess, StackError, Supervisor, http_ready, stop_all
from launcher.servers import RedisServer, TansuBroker
from partnermatch.broker import BrokerError, ensure_topics, prepare
from partnermatch.processes import Process
from partnermatch.settings import ADMIN_TOKEN, SERVICE_TOKEN, STACK_ENV_FILE, STATE_DIR, setting
from partnermatch.topics import ALL_TOPICS
from services.matcher import processes as matcher
from services.notifier import processes as notifier
from services.profiles import processes as profiles

logger = logging.getLogger(__name__)

SETTLE_TIMEOUT_S = 10.0

MATCHERS = setting(
    "PARTNERMATCH_MATCHERS",
    "1",
    "Matcher consumers `partnermatch up` runs in one group, each with the whole index (`--matchers`); more than "
    "the partitions of `profiles` wait as standbys",
)

# Every service's declaration of its processes, in start order. A new service adds its own here.
SERVICES: tuple[Callable[[Mapping[str, str]], list[Process]], ...] = (
    profiles.processes,
    matcher.processes,
    notifier.processes,
)


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one process of the stack. Readiness: `ready` if given, else GET `ready_url`
    answers 200, else the process stays up for a moment. `url` is where it listens, `address` is
    shown in the banner."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    ready: Callable[[], bool] | None = None
    start_timeout: float = 60.0
    url: str | None = None
    address: str | None = None
    metrics_url: str | None = None
    secrets: tuple[str, ...] = ()
    bind: str | None = None  # host:port it listens on, when it does
    port_setting: str | None = None  # the setting that chooses that port

    def readiness(self) -> Callable[[], bool] | None:
        if self.ready is not None:
            return self.ready
        return http_ready(self.ready_url) if self.ready_url else None


# Two sync workers on the two cores we run on. A third works while the others wait for Redis or
# (gunicorn 27) for the client to close: more writes a second on a quiet machine, none and more
# CPU a write on a busy one, as the stack keeps it under load (bench/write_path.py --workers 3,
# README "make bench-write"). docker-compose.yml runs the same count.
_GUNICORN_OPTIONS = ("--workers", "2", "--graceful-timeout", "5", "--access-logfile", "-")


def _gunicorn_control_socket_off() -> list[str]:
    # gunicorn 27 opens a control socket at one fixed path (~/.gunicorn/gunicorn.ctl) that every
    # gunicorn of the stack would share; older versions neither have it nor know the flag.
    from importlib.metadata import version

    major = int(version("gunicorn").split(".")[0])
    return ["--no-control-socket"] if major >= 27 else []


def gunicorn_argv() -> list[str]:
    """gunicorn as the stack runs every web app (the options of deploy/ and docker-compose.yml);
    the caller adds --bind and the app."""
    return [sys.executable, "-m", "gunicorn", *_GUNICORN_OPTIONS, *_gunicorn_control_socket_off()]


def _argv(process: Process) -> list[str]:
    if process.app is not None:
        assert process.bind is not None
        return [*gunicorn_argv(), "--bind", process.bind, process.app]
    assert process.module is not None
    return [sys.executable, "-m", process.module]


def _address_of(process: Process, part: str) -> str:
    """The `part` of `process`'s address that another process uses: its base URL (a web app), or
    the host or the port it listens on."""
    address = process.url if part == "url" else process.bind
    if address is None:
        raise ValueError(f"{process.name} has no {part} to give")
    if part == "url":
        return address
    host, _, port = address.rpartition(":")
    return host if part == "host" else port


def service_specs(env: Mapping[str, str]) -> list[ServiceSpec]:
    """Every process the services declare, in start order, for the settings in `env` (which holds
    REDIS_URL, KAFKA_BOOTSTRAP_SERVERS and the shared tokens). A variable a process `uses` is
    given the address of the process it names, unless `env` sets it. A process that scales runs
    PARTNERMATCH_MATCHERS times in one group (matcher-1, matcher-2, ... when more than one)."""
    declared = [process for declare in SERVICES for process in declare(env)]
    by_name = {process.name: process for process in declared}
    copies = max(1, MATCHERS.read_int(env))
    state = env.get(STATE_DIR.name)
    specs: list[ServiceSpec] = []
    for process in declared:
        wired = {
            variable: _address_of(by_name[address.process], address.part)
            for variable, address in process.uses.items()
            if not env.get(variable)
        }
        if process.app is not None and state:
            # One folder per gunicorn app, where its workers write their HTTP metrics (emptied at
            # each start by Stack). Only for a stack with a state folder: others run without it.
            wired["PROMETHEUS_MULTIPROC_DIR"] = str(Path(state) / "metrics" / process.name)
        scaled = process.scales and copies > 1
        names = [f"{process.name}-{i}" for i in range(1, copies + 1)] if scaled else [process.name]
        specs += [
            ServiceSpec(
                name,
                _argv(process),
                env={**wired, **process.env},
                ready_url=process.health_url,
                url=process.url,
                address=process.address,
                metrics_url=process.metrics_url,
                secrets=process.secrets,
                bind=process.bind,
                port_setting=process.port_setting,
            )
            for name in names
        ]
    return specs


def _same_address(a: str | None, b: str | None) -> bool:
    """Whether two parts' host:port would be one address (a wildcard host takes every address)."""
    if not a or not b:
        return False
    (host_a, _, port_a), (host_b, _, port_b) = a.rpartition(":"), b.rpartition(":")
    hosts = {h.strip("[]").replace("localhost", "127.0.0.1") for h in (host_a, host_b)}
    return port_a == port_b and (len(hosts) == 1 or bool(hosts & {"", "0.0.0.0", "::"}))


def address_taken(bind: str) -> bool:
    """Whether another program listens on `bind` (host:port) now, so a process could not (an address
    only in TIME_WAIT is free, as for gunicorn, which binds with SO_REUSEADDR). Any other reason a
    bind fails (a host that does not resolve, a port below 1024) is the process's own to report."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, ValueError):
        return False
    for family, kind, proto, _name, address in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
    return False


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    path.chmod(0o600)  # an older file may have been created with wider permissions


def _secret(state: Path, name: str) -> str:
    path = state / "secrets" / name
    if path.is_file():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    _write_private(path, value)
    return value


SpecSource = Callable[[Mapping[str, str]], Sequence[ServiceSpec]] | Sequence[ServiceSpec]


class Stack:
    """Redis, the broker (or the external Kafka in KAFKA_BOOTSTRAP_SERVERS), the topics, then the
    services, each waited for; stopped in reverse. A context manager.

    `specs` is a list of ServiceSpec or a function of the stack's environment returning one
    (default: `service_specs`). Each part's output is appended to `<state>/logs/<part>.log` too.
    Once started, `supervise()` restarts parts that die (see `launcher.procs.Supervisor`).
    """

    def __init__(
        self,
        state_dir: str | Path,
        env: Mapping[str, str] | None = None,
        specs: SpecSource | None = None,
        *,
        echo: bool = True,
        topics: Mapping[str, int] | None = None,
        kafka_timeout: float = 15.0,
        restart_policy: RestartPolicy | None = None,
    ) -> None:
        self.state = Path(state_dir).resolve()
        self.base_env = dict(os.environ if env is None else env)
        self.specs: SpecSource = service_specs if specs is None else specs
        self.echo = echo
        self.topics = topics
        self.kafka_timeout = kafka_timeout
        self.redis: RedisServer | None = None
        self.broker: TansuBroker | None = None
        self.bootstrap: str | None = None
        self.services: list[ServiceProcess] = []
        self.started_specs: list[ServiceSpec] = []
        self.env: dict[str, str] = {}
        self.restart_policy = restart_policy
        self.supervisor: Supervisor | None = None
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Make a `start` in progress give up at its next check (safe from a signal handler)."""
        self._cancel.set()

    def _log(self, part: str) -> Path:
        return self.state / "logs" / f"{part}.log"

    def start(self) -> Stack:
        try:
            self._check_addresses()
            self.state.mkdir(parents=True, exist_ok=True)
            logger.info("starting redis-server", extra={"dir": str(self.state / "redis")})
            self.redis = RedisServer(
                self.state / "redis",
                echo=self.echo,
                log_file=self._log("redis"),
                cancel=self._cancel,
            )
            external = self.base_env.get("KAFKA_BOOTSTRAP_SERVERS")
            if external:
                logger.info("using the external Kafka; no broker started", extra={"bootstrap": external})
                self.bootstrap = external
            else:
                self._check_cancel()
                self.broker = TansuBroker(echo=self.echo, log_file=self._log("kafka"), cancel=self._cancel)
                self.bootstrap = self.broker.bootstrap
            self._check_cancel()
            self._prepare_topics(self.bootstrap)
            self.env = self._service_env()
            specs = list(self.specs(self.env) if callable(self.specs) else self.specs)
            self.env.update(self._generated_secrets(specs))
            self._write_env_file(STACK_ENV_FILE)
            settling: list[ServiceProcess] = []
            for spec in specs:
                self._check_cancel()
                logger.info("starting service", extra={"service": spec.name})
                part = self._spawn(spec)
                self.services.append(part)
                self.started_specs.append(spec)
                if part.ready is None:
                    settling.append(part)  # checked together at the end, so they settle at once
                else:
                    part.wait_ready(spec.start_timeout, self._cancel)
            for part in settling:
                part.wait_ready(SETTLE_TIMEOUT_S, self._cancel)
            self.supervisor = Supervisor(self._parts())
            return self
        except BaseException:
            self.stop()
            raise

    def _check_addresses(self) -> None:
        """Refuse to start when an address a part is to listen on is taken (another stack, another
        program): its part would fail to bind, and its readiness check could be answered by
        whatever listens there instead."""
        specs = self.specs(self.base_env) if callable(self.specs) else self.specs
        listening = [spec for spec in specs if spec.bind]
        twice = [a for a in listening if any(b is not a and _same_address(a.bind, b.bind) for b in listening)]
        if twice:
            raise StackError(
                "two parts would listen on one port: "
                + ", ".join(f"{spec.name} on {spec.bind} ({spec.port_setting or 'its port'})" for spec in twice)
            )
        taken = [spec for spec in listening if spec.bind and address_taken(spec.bind)]
        if taken:
            raise StackError(
                "; ".join(
                    f"{spec.name} cannot listen on {spec.bind}: another program (another `partnermatch up`?) "
                    f"listens there"
                    + (f"; stop it, or set {spec.port_setting} to a free port" if spec.port_setting else "")
                    for spec in taken
                )
            )

    def _prepare_topics(self, bootstrap: str) -> None:
        """The declared topics and the epoch marker, so the services start on a known epoch (or
        only the topics given to the stack)."""
        try:
            if self.topics is None:
                prepare(bootstrap, ALL_TOPICS, timeout=self.kafka_timeout)
            else:
                ensure_topics(bootstrap, self.topics, timeout=self.kafka_timeout)
        except BrokerError as exc:
            raise StackError(str(exc)) from None

    def _spawn(self, spec: ServiceSpec) -> ServiceProcess:
        metrics_dir = spec.env.get("PROMETHEUS_MULTIPROC_DIR")
        if metrics_dir:
            # prometheus-client's multiprocess mode wants it empty at each start (its files are
            # named by worker pid); a restarted app's counters start at 0, as Prometheus expects.
            shutil.rmtree(metrics_dir, ignore_errors=True)
            Path(metrics_dir).mkdir(parents=True, exist_ok=True)
        return ServiceProcess(
            spec.name,
            spec.argv,
            {**self.env, **spec.env},
            spec.readiness(),
            echo=self.echo,
            log_file=self._log(spec.name),
        )

    def _parts(self) -> list[Part]:
        """What the supervisor watches: redis and the local broker (critical), then the services."""
        policy = self.restart_policy
        parts = [
            Part(server.process.name, server.process, server.respawn, critical=True, policy=policy)
            for server in (self.redis, self.broker)
            if server is not None
        ]

        def respawner(index: int, spec: ServiceSpec) -> Callable[[], ServiceProcess]:
            def respawn() -> ServiceProcess:
                self.services[index] = self._spawn(spec)
                return self.services[index]

            return respawn

        parts += [
            Part(spec.name, process, respawner(i, spec), policy=policy)
            for i, (spec, process) in enumerate(zip(self.started_specs, self.services, strict=True))
        ]
        return parts

    def part_states(self) -> list[PartState]:
        """Each supervised part's restarts and whether it runs, for the launcher's metrics."""
        supervisor = self.supervisor
        if supervisor is None:
            return []
        return [
            PartState(part.name, part.tracker.restarts, part.process.alive, part.given_up) for part in supervisor.parts
        ]

    def supervise(self) -> str | None:
        """One round of supervision (see `Supervisor.tick`): parts that died are restarted with
        backoff; returns a message when the stack cannot go on (redis or the broker given up)."""
        if self.supervisor is None:
            return None
        return self.supervisor.tick()

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise StackError("start interrupted")

    def _service_env(self) -> dict[str, str]:
        assert self.redis is not None and self.bootstrap is not None
        base = self.base_env
        return {
            **base,
            "REDIS_URL": self.redis.url,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            STATE_DIR.name: str(self.state),
            ADMIN_TOKEN.name: base.get(ADMIN_TOKEN.name) or _secret(self.state, "admin"),
            SERVICE_TOKEN.name: base.get(SERVICE_TOKEN.name) or _secret(self.state, "service"),
            "PYTHONUNBUFFERED": "1",
        }

    def _generated_secrets(self, specs: Sequence[ServiceSpec]) -> dict[str, str]:
        """The secrets the processes declare, from the environment or made once and kept under the
        state folder, so a restarted stack keeps its sessions and links valid."""
        names = {name for spec in specs for name in spec.secrets}
        return {name: self.base_env.get(name) or _secret(self.state, name.lower()) for name in sorted(names)}

    def _write_env_file(self, name: str) -> None:
        shared = (
            "REDIS_URL",
            "KAFKA_BOOTSTRAP_SERVERS",
            "PARTNERMATCH_STATE_DIR",
            "PARTNERMATCH_ADMIN_TOKEN",
            "PARTNERMATCH_SERVICE_TOKEN",
        )
        _write_private(self.state / name, "".join(f"{k}={self.env[k]}\n" for k in shared))

    def processes(self) -> list[ServiceProcess]:
        """Every child process of the stack (the current one of each part): services, then broker
        and redis."""
        parts = list(self.services)
        parts += [x.process for x in (self.broker, self.redis) if x is not None]
        return parts

    def check(self) -> str | None:
        """A message naming a part that has died, with the end of its log; None when all run."""
        for part in self.processes():
            problem = part.failure()
            if problem is not None:
                return problem
        return None

    def stop(self) -> None:
        """Services first (all at once), then the broker, then redis, so services can flush."""
        self.supervisor = None
        stop_all(reversed(self.services))
        self.services = []
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
