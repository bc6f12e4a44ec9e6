"""Child processes of the local stack: each in its own process group, its output relayed line by
line as `HH:MM:SS name | line` and appended to its log, with a readiness check and a stop that
leaves nothing behind; and their supervision (restarts with backoff, giving up on a part that
keeps dying). Does I/O (processes, sockets, files)."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

SETTLE_S = 1.0  # a process without a readiness check counts as started once it lived this long
TAIL_LINES = 12
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

logger = logging.getLogger(__name__)
_write_lock = threading.Lock()
_live: set[ServiceProcess] = set()


class StackError(RuntimeError):
    """A part of the stack failed; the first line of the message names the part."""


# Listening ports are picked below Linux's ephemeral range (32768-60999): the kernel hands those
# out to outgoing connections (every Kafka client makes several), which could take a port between
# the moment we pick it and the moment a server binds it.
_PORT_RANGE = (20000, 32000)


_handed_out: set[int] = set()  # the ports free_port gave in this process: one not bound yet looks free


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on `host`, outside the range outgoing connections use, and not
    given before by this process (a port chosen for a server that starts later, such as a service
    of the stack, is still free when the broker chooses its own)."""
    import random

    for _ in range(200):
        port = random.randint(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    with socket.socket() as s:  # a crowded machine: let the kernel choose
        s.bind((host, 0))
        return int(s.getsockname()[1])


def http_ready(url: str, timeout: float = 1.0) -> Callable[[], bool]:
    """A readiness check: GET `url` answers 200."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return resp.status == 200
        except urllib.error.HTTPError as exc:
            exc.close()
            return False

    return check


def _death_signal_prefix() -> list[str]:
    # If the launcher is killed outright (SIGKILL, OOM), the kernel sends SIGTERM to each direct
    # child, so no broker or redis outlives a crashed test run. The signal follows the *thread*
    # that forked, so it is only set for children started from the main thread.
    if threading.current_thread() is not threading.main_thread():
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def describe_exit(returncode: int | None) -> str | None:
    """Words for a Popen return code: a negative one is the signal that ended the process."""
    if returncode is None:
        return None
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


class ServiceProcess:
    """One child process of the stack, started at construction.

    `ready` is polled by `wait_ready` (exceptions count as "not yet"); without it the process is
    ready once it has lived `SETTLE_S` seconds. Lines go to an in-memory tail (for error messages),
    to `log_file` when given, and to stderr when `echo` is true.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        *,
        cwd: str | Path | None = None,
        echo: bool = True,
        log_file: str | Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.ready = ready
        self.echo = echo
        self.log_file = Path(log_file) if log_file is not None else None
        self.tail: deque[str] = deque(maxlen=200)
        self._log: TextIO | None = None
        if self.log_file is not None:
            # Appended: the lines of a run that died are what an operator reads after a restart.
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_file.open("a", encoding="utf-8")
        try:
            self.proc = subprocess.Popen(
                [*_death_signal_prefix(), *self.argv],
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            if self._log is not None:
                self._log.close()
            raise StackError(f"{name} could not be started ({self.argv[0]}): {exc}") from None
        self.started_at = time.monotonic()
        if self._log is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self._log.write(f"---- {stamp} {name} started, pid {self.proc.pid}\n")
            self._log.flush()
        _live.add(self)
        self._reader = threading.Thread(target=self._relay, name=f"relay-{name}", daemon=True)
        self._reader.start()

    # ---- output ---------------------------------------------------------------------------

    def _relay(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = _ANSI.sub("", raw.rstrip("\n"))
            self.tail.append(line)
            if self._log is not None:
                with contextlib.suppress(ValueError):  # closed by stop() while a grandchild talks
                    self._log.write(line + "\n")
                    self._log.flush()
            if self.echo:
                stamp = time.strftime("%H:%M:%S")
                with _write_lock:
                    sys.stderr.write(f"{stamp} {self.name:<9} | {line}\n")
                    sys.stderr.flush()

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        if not self.alive:
            self._reader.join(1.0)  # the last lines of a process that just died
        return "\n".join(f"    {line}" for line in list(self.tail)[-lines:])

    def describe_failure(self, what: str) -> str:
        """`name what`, then the end of its log: the one message a person needs."""
        where = f" (full log: {self.log_file})" if self.log_file is not None else ""
        tail = self.log_tail()
        body = f"; last lines of its log{where}:\n{tail}" if tail else f"; it printed nothing{where}"
        return f"{self.name} {what}{body}"

    # ---- state ----------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def exit_text(self) -> str | None:
        """How the process ended ("exited with code 3", "was killed by SIGKILL"), None if running."""
        return describe_exit(self.proc.poll())

    def failure(self) -> str | None:
        """A message naming this process if it has exited, else None."""
        what = self.exit_text()
        return None if what is None else self.describe_failure(what)

    def wait_ready(self, timeout: float, cancel: threading.Event | None = None) -> None:
        """Block until the readiness check passes; on early exit, timeout or cancel: stop the
        process and raise StackError naming it."""
        deadline = time.monotonic() + timeout
        settle_until = self.started_at + SETTLE_S
        last_error: BaseException | None = None
        while True:
            if cancel is not None and cancel.is_set():
                self.stop()
                raise StackError(f"{self.name}: start interrupted")
            code = self.proc.poll()
            if code is not None:
                self.stop()  # first: a grandchild holding the output pipe would delay the tail
                raise StackError(self.describe_failure(f"exited with code {code} before it was ready"))
            if self.ready is None:
                if time.monotonic() >= settle_until:
                    return
            else:
                try:
                    # Still alive afterwards: the answer came from this process, not from
                    # another server that already held the port this one failed to bind.
                    if self.ready() and self.proc.poll() is None:
                        return
                    last_error = None
                except Exception as exc:  # noqa: BLE001 - not ready yet; kept for the message
                    last_error = exc
            if time.monotonic() >= deadline:
                check = f" (last check: {last_error!r})" if last_error is not None else ""
                self.stop()
                raise StackError(self.describe_failure(f"was not ready after {timeout:g} s{check}"))
            time.sleep(0.05)

    # ---- stopping -------------------------------------------------------------------------

    def terminate(self) -> None:
        """SIGTERM to the whole process group (e.g. gunicorn and its workers)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, wait up to `timeout`, then SIGKILL whatever is left of it."""
        self.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        # Grandchildren that outlived the leader still hold its group id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._reader.join(2.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._log is not None:
            self._log.close()
        _live.discard(self)

    def __repr__(self) -> str:
        state = "running" if self.alive else f"exited {self.returncode}"
        return f"<ServiceProcess {self.name} pid={self.pid} {state}>"


# ---- supervision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RestartPolicy:
    """When a part that died is started again, and when it is given up on.

    The n-th restart in a row waits `first_delay_s * factor**(n-1)`, at most `max_delay_s`; a run
    of `stable_after_s` starts the count afresh. `give_up_after` deaths within `window_s` mean the
    part cannot run (a broken config, a port someone else holds): restarting it more only hides
    that.
    """

    first_delay_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 30.0
    give_up_after: int = 5
    window_s: float = 60.0
    stable_after_s: float = 30.0


class RestartTracker:
    """The deaths of one part and what they call for. Pure: the caller passes the clock."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.deaths: deque[float] = deque()
        self.in_a_row = 0
        self.restarts = 0

    def died(self, now: float, ran_for_s: float) -> float | None:
        """Record a death; the delay before the next start, or None: give up."""
        policy = self.policy
        self.deaths.append(now)
        while self.deaths and self.deaths[0] <= now - policy.window_s:
            self.deaths.popleft()
        if len(self.deaths) >= policy.give_up_after:
            return None
        self.in_a_row = 1 if ran_for_s >= policy.stable_after_s else self.in_a_row + 1
        self.restarts += 1
        return min(policy.max_delay_s, policy.first_delay_s * policy.factor ** (self.in_a_row - 1))


class Part:
    """A supervised child: its current process and how to start a new one. `critical`: the stack
    cannot serve without it (redis, the broker), so giving up on it ends the stack."""

    def __init__(
        self,
        name: str,
        process: ServiceProcess,
        spawn: Callable[[], ServiceProcess],
        *,
        critical: bool = False,
        policy: RestartPolicy | None = None,
    ) -> None:
        self.name = name
        self.process = process
        self.spawn = spawn
        self.critical = critical
        self.tracker = RestartTracker(policy or RestartPolicy())
        self.restart_at: float | None = None  # set while dead and waiting for its restart
        self.died_at: float | None = None
        self.back_since: float | None = None  # restarted, readiness not yet seen
        self.given_up = False


class Supervisor:
    """Restarts parts that die, with backoff, and logs each step; call `tick()` every few tenths of
    a second from the thread that started the stack (children then die with it, see
    `_death_signal_prefix`). `tick` returns a message when a critical part was given up on."""

    def __init__(self, parts: Sequence[Part], clock: Callable[[], float] = time.monotonic) -> None:
        self.parts = list(parts)
        self.clock = clock

    def tick(self) -> str | None:
        fatal = None
        for part in self.parts:
            problem = self._tick_part(part)
            fatal = fatal or problem
        return fatal

    def _tick_part(self, part: Part) -> str | None:
        if part.given_up:
            return None
        now = self.clock()
        if part.restart_at is None:
            if part.process.alive:
                self._note_ready(part, now)
                return None
            return self._died(part, now)
        if now < part.restart_at:
            return None
        part.restart_at = None
        try:
            part.process = part.spawn()
        except StackError as exc:
            logger.error("could not restart a part", extra={"part": part.name, "error": str(exc)})
            return self._died(part, now, failed_start=True)
        part.back_since = now
        logger.warning(
            "part restarted",
            extra={"part": part.name, "pid": part.process.pid, "restarts": part.tracker.restarts},
        )
        return None

    def _died(self, part: Part, now: float, failed_start: bool = False) -> str | None:
        """A part ended (or, with `failed_start`, its new process could not even start: the
        process at hand is then the old one, whose end was counted already)."""
        dead = part.process
        ran_for = 0.0 if failed_start else now - dead.started_at
        how = "could not be started" if failed_start else (dead.exit_text() or "could not be started")
        tail = dead.log_tail(5)
        dead.stop(timeout=2.0)  # what is left of its process group, e.g. gunicorn workers
        part.back_since = None
        part.died_at = now
        delay = part.tracker.died(now, ran_for)
        if delay is None:
            part.given_up = True
            policy = part.tracker.policy
            message = (
                f"{part.name} {how}; it died {policy.give_up_after} times within "
                f"{policy.window_s:g} s, so it is not restarted any more"
                + (f"; last lines of its log ({dead.log_file}):\n{tail}" if tail else "")
            )
            logger.error(
                "part given up",
                extra={
                    "part": part.name,
                    "how": how,
                    "deaths": policy.give_up_after,
                    "window_s": policy.window_s,
                    "critical": part.critical,
                    "log": str(dead.log_file),
                    "last_lines": " | ".join(line.strip() for line in tail.splitlines()[-3:]),
                },
            )
            return message if part.critical else None
        part.restart_at = now + delay
        logger.warning(
            "part died; restarting it",
            extra={
                "part": part.name,
                "how": how,
                "ran_s": round(ran_for, 1),
                "restart": part.tracker.restarts,
                "in_s": round(delay, 2),
            },
        )
        return None

    def _note_ready(self, part: Part, now: float) -> None:
        if part.back_since is None:
            return
        ready = part.process.ready
        try:
            if ready is None:
                serving = now - part.process.started_at >= SETTLE_S
            else:
                serving = bool(ready())
        except Exception:  # noqa: BLE001 - not ready yet
            serving = False
        if serving:
            logger.warning(
                "part serves again",
                extra={"part": part.name, "after_death_s": round(now - (part.died_at or now), 2)},
            )
            part.back_since = None


def stop_all(processes: Iterable[ServiceProcess], timeout: float = 10.0) -> None:
    """Stop several processes at once: SIGTERM to all, one shared grace period, then SIGKILL."""
    procs = list(processes)
    for p in procs:
        p.terminate()
    deadline = time.monotonic() + timeout
    for p in procs:
        p.stop(max(0.0, deadline - time.monotonic()))


@atexit.register
def _stop_leftovers() -> None:
    # A launcher that dies of an uncaught exception must not leave redis or a broker behind.
    stop_all(list(_live), timeout=5.0)
