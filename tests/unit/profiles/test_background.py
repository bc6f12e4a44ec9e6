"""Work after the answer: it runs later, within its jitter, every piece once, and a failing piece
neither stops the others nor escapes."""

from __future__ import annotations

import threading
import time

from services.profiles.adapters.signin_mailer import Background
from tests.helpers import wait_until


def test_work_runs_once_each_within_the_jitter_and_never_at_once():
    background = Background(workers=2, jitter_s=(0.2, 0.4))
    done: list[tuple[int, float]] = []
    lock = threading.Lock()
    started = time.monotonic()

    def work(n: int):
        def run():
            with lock:
                done.append((n, time.monotonic() - started))

        return run

    for n in range(20):
        background.submit(work(n))
    assert done == []  # nothing before the jitter's lower bound
    wait_until(lambda: len(done) == 20, timeout=5, message="all work done")
    assert sorted(n for n, _ in done) == list(range(20))
    assert all(0.2 <= at < 2.0 for _, at in done)


def test_a_failing_piece_is_logged_and_the_rest_runs(caplog):
    background = Background(workers=1, jitter_s=(0.0, 0.05))
    ran = threading.Event()

    def boom():
        raise RuntimeError("smtp down")

    background.submit(boom)
    background.submit(ran.set)
    assert ran.wait(5)
    wait_until(lambda: "background job failed" in caplog.text, timeout=5, message="the failure logged")
