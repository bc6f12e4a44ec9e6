"""The profiles API's write path, measured: durable writes per second (registrations, and PATCHes
with each organisation's own token) driven by wrk on loopback, next to a trivial Flask app under
the same gunicorn, in one run: the API alone, with its relay publishing, and with the whole stack
running. Then every acknowledged write is looked for on the `profiles` topic.

The writes: registrations (the bench's generated profiles in 16 languages, most stating their
language, the others detected) and PATCHes, in turn (--mix). What the PATCHes change (--patches):
"texts" (every one edits the goals, the most work a PATCH makes: the language is detected again
unless the capabilities fill the 600 characters detection reads, as about half the bench's and the
dev set's do), or "mixed" (the default): every other one edits the goals, the others change the
website or the contact persons and leave the texts as they are, so their language is not detected
again. We have no traffic to copy yet; half is our assumption, and both are reported.

The stack is the one `partnermatch up` runs (launcher.stack, same gunicorn options as deploy/);
"alone" pauses (SIGSTOP) the relay and the consumers, which resume for the later rounds.
Usage: python bench/write_path.py [--duration 10] [--connections 16] [--mix both|patch|register]
       [--patches mixed|texts] [--redis-stats]
Needs wrk (Debian's package; `make bench-write` installs it). Does I/O (processes, sockets).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from flask import Flask, request  # noqa: E402

if TYPE_CHECKING:
    import redis

CONSUMERS = ("relay", "matcher", "matcher-relay", "notifier")
SAMPLE_RATE = 200  # py-spy's samples a second (--profile)


def trivial_app() -> Flask:
    """What a write costs with no work at all: the same routes and bodies, JSON in and out."""
    app = Flask("trivial")

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.post("/v1/organisations")
    def register():
        body = request.get_json()
        return {"organisation": {"id": "x", "name": body["name"]}, "token": "t"}, 201

    @app.patch("/v1/organisations/<org_id>")
    def edit(org_id: str):
        return {"id": org_id, **request.get_json()}, 200

    return app


@dataclass
class Round:
    what: str
    acked: int
    refused: int
    errors: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    wrk_cores: float  # CPU the load generator itself used, in cores
    cpu_ms: float  # CPU the serving processes used per acknowledged write (ms)
    parts_ms: dict[str, float]  # the same, by part (the web app, Redis, the relay, the broker, ...)
    system_ms: dict[str, float]  # of which in the kernel (system time), by part

    @property
    def per_s(self) -> float:
        return self.acked / self.duration_s


def call(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def patch_body(i: int, text: dict, patches: str, rng: random.Random) -> dict:
    """The i-th PATCH body: its goals edited, or (every other one in the "mixed" PATCHes) its
    website or its contact persons changed, the texts left as they are."""
    if patches == "texts" or i % 2 == 0:
        return {"goals": text["goals"] + f" ({rng.randrange(10**6)})"}
    if i % 4 == 1:
        return {"website": f"https://bench{rng.randrange(10**6)}.example.org"}
    contact = {"name": f"Contact {i}", "email": f"patch{i}@bench.example.org", "language": "en"}
    return {"contacts": [{**contact, "consent": True, "share_contact": rng.random() < 0.5}]}


def write_load(folder: Path, api: str, admin: str, orgs: int, patches: str) -> int:
    """Two clusters, `orgs` organisations registered (their tokens in orgs.txt) and the bodies wrk
    sends; returns the writes made here."""
    from engine_speed import generate

    from partnermatch.languages import PROFILE_LANGUAGES

    clusters = ["bench-north", "bench-south"]
    for cluster in clusters:
        call("POST", f"{api}/v1/clusters", {"id": cluster, "name": cluster, "country": "RS"}, admin)
    texts = generate(max(orgs, 200), seed=11)
    rng = random.Random(3)

    def registration(i: int, text: dict) -> dict:
        body = {
            "name": f"Bench organisation {i}",
            "cluster_id": clusters[i % 2],
            "country": "RS",
            "capabilities": text["capabilities"],
            "goals": text["goals"],
            "contacts": [
                {"name": f"Contact {i}", "email": f"contact{i}@bench.example.org", "language": "en", "consent": True}
            ],
        }
        if text["language"] in PROFILE_LANGUAGES:
            body["language"] = text["language"]
        return body

    with (folder / "orgs.txt").open("w") as out:
        for i in range(orgs):
            made = call("POST", f"{api}/v1/organisations", registration(i, texts[i]))
            out.write(f"{made['organisation']['id']} {made['token']}\n")
    with (folder / "register.jsonl").open("w") as out:
        for i, text in enumerate(texts[:200]):
            out.write(json.dumps(registration(orgs + i, text), ensure_ascii=False) + "\n")
    with (folder / "patch.jsonl").open("w") as out:
        for i, text in enumerate(texts[:200]):
            out.write(json.dumps(patch_body(i, text, patches, rng), ensure_ascii=False) + "\n")
    return orgs


def with_workers(argv: list[str], workers: int | None, threads: int | None = None) -> list[str]:
    """A gunicorn command line with another number of workers, or of threads in each (None: as it is)."""
    for option, value in (("--workers", workers), ("--threads", threads)):
        if value is None:
            continue
        if option in argv:
            at = argv.index(option)
            argv = [*argv[: at + 1], str(value), *argv[at + 2 :]]
        else:
            at = argv.index("--workers")
            argv = [*argv[:at], option, str(value), *argv[at:]]
    return argv


def _tree(pid: int) -> set[int]:
    """A process and its descendants (gunicorn's workers), from /proc."""
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time used so far by these processes and their descendants."""
    return sum(cpu_times(pids))


def cpu_times(pids: Iterable[int]) -> tuple[float, float]:
    """User and system CPU time used so far by these processes and their descendants."""
    user = system = 0
    for pid in {p for root in pids for p in _tree(root)}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        user += int(fields[11])  # utime
        system += int(fields[12])  # stime
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def resident_mib(pid: int) -> list[float]:
    """The resident memory of a gunicorn's workers (its descendants), in MiB, each."""
    found = []
    for child in sorted(_tree(pid) - {pid}):
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if rss:
            found.append(int(rss.group(1)) / 1024)
    return found


def run_wrk(what: str, url: str, folder: Path, args: argparse.Namespace, serving: dict[str, int]) -> Round:
    """One round of load; `serving` are the processes whose CPU a write costs, by name."""
    served_before = {name: cpu_times([pid]) for name, pid in serving.items()}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(args.threads),
            "-c",
            str(args.connections),
            "-d",
            f"{args.duration}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "write_path.lua"),
            url,
            "--",
            str(folder),
            args.mix,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    served_now = {name: cpu_times([pid]) for name, pid in serving.items()}
    served = {name: sum(served_now[name]) - sum(served_before[name]) for name in serving}
    in_kernel = {name: served_now[name][1] - served_before[name][1] for name in serving}
    found = re.search(r"^WRK_RESULT (.*)$", out, re.MULTILINE)
    if found is None:
        raise SystemExit(f"wrk said no result:\n{out}")
    r = json.loads(found.group(1))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    result = Round(
        what,
        r["acked"],
        r["refused"],
        errors,
        r["duration_s"],
        r["p50_ms"],
        r["p99_ms"],
        cpu / r["duration_s"],
        1000 * sum(served.values()) / max(r["acked"], 1),
        {name: 1000 * seconds / max(r["acked"], 1) for name, seconds in served.items()},
        {name: 1000 * seconds / max(r["acked"], 1) for name, seconds in in_kernel.items()},
    )
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in result.parts_ms.items())
    print(f"  {what}: {result.per_s:,.0f} writes/s, {result.cpu_ms:.2f} CPU ms a write ({parts})", flush=True)
    return result


@contextmanager
def sampled(folder: str | None, pids: dict[str, int], duration_s: int) -> Iterator[None]:
    """py-spy records each process (with its children: gunicorn's workers) while the block runs."""
    if folder is None:
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--format",
                "raw",
                "--rate",
                str(SAMPLE_RATE),
                "--duration",
                str(duration_s),
                "--nonblocking",
                "--output",
                str(Path(folder) / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.wait(timeout=duration_s + 30)


def print_profile(raw: Path, cpu_ms: float, top: int = 25) -> None:
    """Where the API's workers were busy, from py-spy's collapsed stacks: each function's share of
    the samples taken in a request (with what it calls, a frame counted once a stack; and its own,
    the innermost frame), and that share of the workers' CPU a write (`cpu_ms`). Samples are taken
    of a busy worker, not of CPU: one waiting for a core counts too, so a call that wakes another
    process on a loaded machine (a Redis send) takes a larger share than its CPU."""
    if not raw.exists():
        print(f"    (no profile in {raw})", flush=True)
        return
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";") if not f.startswith("process ")]
        if not any(f.startswith("SyncWorker.handle ") for f in frames):
            continue  # the arbiter, or a worker between requests
        total += int(samples)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(samples)
        own[frames[-1]] = own.get(frames[-1], 0) + int(samples)
    us = 1000 * cpu_ms / max(total, 1)
    print(f"    the API's workers in requests: {total} samples; a share of {cpu_ms:.2f} CPU ms a write", flush=True)
    for title, counts in (("with what they call", inclusive), ("own", own)):
        print(f"    by function ({title}): share, us a write", flush=True)
        shown = [(frame, n) for frame, n in counts.items() if n < 0.9 * total]  # not the frames of every request
        for frame, count in sorted(shown, key=lambda item: -item[1])[:top]:
            print(f"      {100 * count / max(total, 1):5.1f}% {count * us:6.1f}  {frame}", flush=True)


def command_stats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """Redis's calls and microseconds so far, by command (a script's commands counted in it too)."""
    return {
        name.removeprefix("cmdstat_"): (int(stats["calls"]), int(stats["usec"]))
        for name, stats in client.info("commandstats").items()
    }


def print_command_stats(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], acked: int) -> None:
    spent = {
        name: (calls - before.get(name, (0, 0))[0], usec - before.get(name, (0, 0))[1])
        for name, (calls, usec) in after.items()
    }
    shown = sorted(((usec, calls, name) for name, (calls, usec) in spent.items() if calls), reverse=True)
    per = max(acked, 1)
    parts = ", ".join(f"{name} {usec / per:.1f} us ({calls / per:.2f} calls)" for usec, calls, name in shown)
    print(f"    Redis a write (a script's commands in it and by name too): {parts}", flush=True)


def wait_for(what: str, done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.2)
    print(f"  (not within {timeout:.0f} s: {what})", flush=True)
    return False


def committed_revisions(client: redis.Redis) -> dict[str, int]:
    """Each organisation's revision in the profiles store: its writes so far (no deletions here)."""
    from services.profiles.adapters.redis_store import ORG, ORGS

    ids = [m.decode() for m in client.zrange(ORGS, 0, -1)]
    found: dict[str, int] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for org_id, raw in zip(chunk, client.mget([ORG + i for i in chunk]), strict=True):
            if raw:
                found[org_id] = json.loads(raw)["revision"]
    return found


def published_revisions(bootstrap: str) -> set[tuple[str, int]]:
    from partnermatch import events
    from partnermatch.messaging import read_partitions
    from partnermatch.topics import PROFILES

    seen = set()
    for record in read_partitions(bootstrap, PROFILES, idle_timeout_s=3.0):
        envelope = events.decode(record.value)
        seen.add((envelope.payload["org_id"], envelope.payload["revision"]))
    return seen


def _in_process_block(root: str, writes: int) -> dict[str, float]:
    """The API's WSGI app of the code in `root`, in this process, on a redis-server of its own: the
    bench's registrations and PATCHes in turn (as write_path.lua sends them), `writes` of them after
    a warm-up; the CPU this thread spent a write (no gunicorn, no wrk: the application's own part,
    Redis client calls included). Its log lines go to a file, as a worker's go to a pipe."""
    import io

    sys.path.insert(0, str(Path(root).resolve()))
    from launcher.servers import RedisServer

    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as server:
        os.environ.update(
            REDIS_URL=server.url,
            PARTNERMATCH_ADMIN_TOKEN="bench-admin",
            PARTNERMATCH_SERVICE_TOKEN="bench-service",
            PROFILES_SECRET_KEY="bench-" * 8,
        )
        log = os.open(Path(tmp) / "log", os.O_WRONLY | os.O_CREAT)
        os.dup2(log, 2)
        from services.profiles.entrypoints.app import create_app

        app = create_app()
        client = app.test_client()

        def setup_call(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict:
            headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
            answer = client.open(url, method=method, data=json.dumps(body), headers=headers)
            assert answer.status_code < 300, answer.data
            return answer.get_json()

        global call
        call = setup_call
        folder = Path(tmp)
        write_load(folder, "", "bench-admin", 200, "mixed")
        orgs = [line.split() for line in (folder / "orgs.txt").read_text().splitlines()]
        registrations = (folder / "register.jsonl").read_text().splitlines()
        patches = (folder / "patch.jsonl").read_text().splitlines()
        statuses: list[str] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            statuses.append(status)
            return lambda data: None

        def one(n: int) -> None:
            if n % 2 == 0:
                method, path, body, auth = "POST", "/v1/organisations", registrations[n % len(registrations)], None
            else:
                org = orgs[n % len(orgs)]
                method, path, body, auth = (
                    "PATCH",
                    f"/v1/organisations/{org[0]}",
                    patches[n // 2 % len(patches)],
                    org[1],
                )
            data = body.encode()
            environ = {
                "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8081", "SERVER_PROTOCOL": "HTTP/1.1",
                "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "HTTP_HOST": "127.0.0.1:8081",
                "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data),
                "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
                "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
                **({"HTTP_AUTHORIZATION": f"Bearer {auth}"} if auth else {}),
            }  # fmt: skip
            answer = app(environ, start_response)
            b"".join(answer)
            getattr(answer, "close", lambda: None)()

        for n in range(500):
            one(n)
        before = resource.getrusage(resource.RUSAGE_THREAD)
        started = time.thread_time()
        for n in range(500, 500 + writes):
            one(n)
        spent = time.thread_time() - started
        after = resource.getrusage(resource.RUSAGE_THREAD)
        refused = sum(not s.startswith(("200", "201")) for s in statuses)
        if refused:
            raise SystemExit(f"{refused} writes refused: {sorted(set(statuses))}")
        return {
            "cpu_us": 1e6 * spent / writes,
            "user_us": 1e6 * (after.ru_utime - before.ru_utime) / writes,
            "system_us": 1e6 * (after.ru_stime - before.ru_stime) / writes,
        }


def in_process(roots: list[str], writes: int, blocks: int) -> int:
    """Blocks of `_in_process_block`, each in a process of its own, the code roots in turn (ABBA),
    so that both meet the same load of a shared machine; each block's CPU a write, then medians."""
    found: dict[str, list[dict[str, float]]] = {root: [] for root in roots}
    order = [*roots, *reversed(roots)]
    print("load average at the start: " + " ".join(f"{load:.2f}" for load in os.getloadavg()), flush=True)
    for block in range(blocks * len(roots)):
        root = order[block % len(order)]
        out = subprocess.run(
            [sys.executable, __file__, "--in-process-block", root, "--writes", str(writes)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": root},
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        found[root].append(result)
        print(
            f"  {root}: {result['cpu_us']:.0f} CPU us a write (user {result['user_us']:.0f}, "
            f"system {result['system_us']:.0f})",
            flush=True,
        )
    for root, results in found.items():
        cpu = sorted(r["cpu_us"] for r in results)
        print(f"{root}: median {cpu[len(cpu) // 2]:.0f}, best {cpu[0]:.0f} CPU us a write over {len(cpu)} blocks")
    print("load average at the end: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--orgs", type=int, default=200, help="organisations the PATCHes go to")
    parser.add_argument(
        "--mix",
        choices=("both", "patch", "register"),
        default="both",
        help="registrations and PATCHes in turn, or only one of them",
    )
    parser.add_argument(
        "--patches",
        choices=("mixed", "texts"),
        default="mixed",
        help="what the PATCHes change: every other one the goals, the others the website or contacts "
        "(mixed), or every one the goals (texts)",
    )
    parser.add_argument(
        "--catch-up-s",
        type=float,
        default=120,
        help="how long the matcher may take to read what the earlier rounds wrote",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="sample the API's gunicorn and the relay with py-spy in the API + relay round; collapsed stacks into DIR",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the rounds without the matcher this many times, in turn, and keep the best of each",
    )
    parser.add_argument(
        "--workers", type=int, help="gunicorn workers of both apps (default: the stack's, as deployed), to try another"
    )
    parser.add_argument(
        "--gunicorn-threads",
        type=int,
        help="gunicorn threads in each worker of both apps (above 1: gunicorn's gthread workers), to try another",
    )
    parser.add_argument("--without-matcher", action="store_true", help="leave out the whole-stack round")
    parser.add_argument(
        "--redis-stats",
        action="store_true",
        help="after each round of the API, Redis's own time a write by command (INFO commandstats)",
    )
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep its logs (default: a temporary folder)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="only the application's own CPU a write: the API's WSGI app in one process on a redis-server, "
        "no gunicorn, no wrk (blocks of --writes, --blocks of them)",
    )
    parser.add_argument(
        "--compare", metavar="ROOT", help="with --in-process: another checkout's code too, in turns with this one's"
    )
    parser.add_argument("--writes", type=int, default=3000, help="with --in-process: writes a block")
    parser.add_argument("--blocks", type=int, default=3, help="with --in-process: blocks of each code")
    parser.add_argument("--in-process-block", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process_block:
        print(json.dumps(_in_process_block(args.in_process_block, args.writes)))
        return 0
    if args.in_process:
        roots = [str(BENCH.parent), *([str(Path(args.compare).resolve())] if args.compare else [])]
        return in_process(roots, args.writes, args.blocks)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (or make bench-write)")
    print("load average at the start: " + " ".join(f"{load:.2f}" for load in os.getloadavg()), flush=True)
    if args.profile and shutil.which("py-spy") is None:
        raise SystemExit("py-spy is missing: pip install py-spy")

    import redis

    from launcher.procs import ServiceProcess, free_port, http_ready
    from launcher.stack import ServiceSpec, Stack, gunicorn_argv, service_specs
    from services.matcher.adapters.redis_state import REVISIONS

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(args.keep or tmp).resolve()
        state.mkdir(parents=True, exist_ok=True)
        ports = {name: str(free_port()) for name in ("PROFILES_PORT", "MATCHER_PORT", "NOTIFIER_PORT", "MAILSINK_PORT")}
        env = {
            **os.environ,
            **ports,
            "NOTIFIER_SMTP_PORT": ports["MAILSINK_PORT"],
            "MAILSINK_DIR": str(state / "mail"),
            "PARTNERMATCH_UP_METRICS_PORT": "0",
        }
        trivial_addr = f"127.0.0.1:{free_port()}"
        trivial = ServiceProcess(
            "trivial",
            [
                *with_workers(gunicorn_argv(), args.workers, args.gunicorn_threads),
                "--pythonpath",
                str(BENCH),
                "--bind",
                trivial_addr,
                "write_path:trivial_app()",
            ],
            env,
            http_ready(f"http://{trivial_addr}/health"),
            echo=False,
            log_file=state / "logs" / "trivial.log",
        )
        print(f"starting the stack in {state} ...", flush=True)

        def specs(env: Mapping[str, str]) -> list[ServiceSpec]:
            return [
                replace(spec, argv=with_workers(spec.argv, args.workers, args.gunicorn_threads))
                if spec.name == "profiles"
                else spec
                for spec in service_specs(env)
            ]

        stack = Stack(state / "stack", env=env, specs=specs, echo=False)
        try:
            trivial.wait_ready(30)
            stack.start()
            api = f"http://127.0.0.1:{ports['PROFILES_PORT']}"
            client = redis.Redis.from_url(stack.env["REDIS_URL"])
            outbox = "{profiles}:outbox"
            setup_writes = write_load(state, api, stack.env["PARTNERMATCH_ADMIN_TOKEN"], args.orgs, args.patches)
            pids = {spec.name: proc.pid for spec, proc in zip(stack.started_specs, stack.services, strict=True)}

            def signal_parts(names: tuple[str, ...], sig: signal.Signals) -> None:
                for name in names:
                    os.kill(pids[name], sig)

            wait_for("the relay published the set-up", lambda: client.xlen(outbox) == 0, 60)
            print(
                f"{args.connections} connections, {args.duration} s a round, mix {args.mix}, PATCHes {args.patches}, "
                f"wrk with {args.threads} threads, {os.cpu_count()} cores:",
                flush=True,
            )
            signal_parts(CONSUMERS, signal.SIGSTOP)
            # What a write costs in each round: the web app's processes, then Redis, the relay and the
            # broker it publishes to, then everything.
            assert stack.redis is not None, "started"
            alone = {"api": pids["profiles"], "redis": stack.redis.pid}
            broker = {"broker": stack.broker.pid} if stack.broker else {}
            with_relay = {**alone, "relay": pids["relay"], **broker}
            everything = {
                **with_relay,
                **{name: pid for name, pid in pids.items() if name not in ("profiles", "relay")},
            }
            tries: dict[str, list[Round]] = {}
            for attempt in range(args.repeat):
                if attempt:
                    signal_parts(("relay",), signal.SIGSTOP)
                for what, url, serving in (
                    ("trivial Flask app, same gunicorn", f"http://{trivial_addr}", {"trivial": trivial.pid}),
                    ("API alone (relay, matcher paused)", api, alone),
                ):
                    stats = command_stats(client) if args.redis_stats else {}
                    tries.setdefault(what, []).append(run_wrk(what, url, state, args, serving))
                    if args.redis_stats and url == api:
                        print_command_stats(stats, command_stats(client), tries[what][-1].acked)
                signal_parts(("relay",), signal.SIGCONT)
                wait_for("the relay emptied the outbox", lambda: client.xlen(outbox) == 0, 120)
                what = "API + relay publishing (matcher paused)"
                with sampled(
                    args.profile if attempt == 0 else None,
                    {"profiles": pids["profiles"], "relay": pids["relay"]},
                    args.duration,
                ):
                    stats = command_stats(client) if args.redis_stats else {}
                    tries.setdefault(what, []).append(run_wrk(what, api, state, args, with_relay))
                    if args.redis_stats:
                        print_command_stats(stats, command_stats(client), tries[what][-1].acked)
                if args.profile and attempt == 0:
                    print_profile(Path(args.profile) / "profiles.txt", tries[what][-1].parts_ms["api"])
            # The best of each: other work on the machine only ever slows a round down.
            rounds = [max(found, key=lambda r: r.per_s) for found in tries.values()]
            acked_in_rounds = sum(r.acked for found in tries.values() for r in found) - sum(
                r.acked for r in tries["trivial Flask app, same gunicorn"]
            )
            signal_parts(CONSUMERS, signal.SIGCONT)

            def matcher_caught_up() -> bool:
                applied = {k.decode(): int(v) for k, v in client.hgetall(REVISIONS).items()}
                return all(applied.get(org, 0) >= rev for org, rev in committed_revisions(client).items())

            if not args.without_matcher:
                wait_for("the matcher read every profile", matcher_caught_up, args.catch_up_s)
                rounds.append(run_wrk("whole stack (matcher scoring)", api, state, args, everything))
            wait_for("the relay emptied the outbox", lambda: client.xlen(outbox) == 0, 120)
            resident = {"API": resident_mib(pids["profiles"]), "trivial": resident_mib(trivial.pid)}
            committed = committed_revisions(client)
            published = published_revisions(stack.env["KAFKA_BOOTSTRAP_SERVERS"])
        finally:
            stack.stop()
            trivial.stop()

    acked = setup_writes + acked_in_rounds + sum(r.acked for r in rounds[3:])
    writes = {(org, rev) for org, last in committed.items() for rev in range(1, last + 1)}
    missing = writes - published
    base = rounds[0]
    print()
    print(
        f"{'round':<42} {'writes/s':>9} {'x trivial':>9} {'CPU ms':>7} {'x trivial':>9} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'refused':>8} {'errors':>6} {'wrk cores':>9}"
    )
    for r in rounds:
        print(
            f"{r.what:<42} {r.per_s:>9,.0f} {r.per_s / base.per_s:>9.2f} {r.cpu_ms:>7.2f} "
            f"{base.cpu_ms / r.cpu_ms:>9.2f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.refused:>8} {r.errors:>6} "
            f"{r.wrk_cores:>9.2f}"
        )
    print(
        "(CPU ms: CPU time of the serving processes per acknowledged write; its 'x trivial' is the rate the "
        "round would reach against the trivial app's on cores of its own, undisturbed by other work)"
    )
    print("CPU ms a write by part:")
    for r in rounds:
        print(
            f"  {r.what}: "
            + ", ".join(f"{name} {ms:.2f} (system {r.system_ms[name]:.2f})" for name, ms in r.parts_ms.items())
        )
    for name, sizes in resident.items():
        print(f"resident memory of the {name}'s gunicorn workers: " + ", ".join(f"{mib:.0f}" for mib in sizes) + " MiB")
    print("load average at the end: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
    print()
    print(
        f"writes acknowledged: {acked}; in Redis: {len(writes)}; on the profiles topic: "
        f"{len(writes & published)}; missing: {len(missing)}"
    )
    if missing:
        print(f"NOT PUBLISHED, e.g. {sorted(missing)[:5]}")
        return 1
    if acked > len(writes):
        print("MORE WRITES ACKNOWLEDGED THAN STORED")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
