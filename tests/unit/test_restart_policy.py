"""The restart rules of the local stack's supervisor, on a made-up clock."""

from __future__ import annotations

from launcher.procs import RestartPolicy, RestartTracker

POLICY = RestartPolicy(
    first_delay_s=0.5,
    factor=2.0,
    max_delay_s=4.0,
    give_up_after=5,
    window_s=60.0,
    stable_after_s=30.0,
)


def test_restarts_in_a_row_wait_twice_as_long_each_time_up_to_the_cap():
    tracker = RestartTracker(RestartPolicy(give_up_after=100, max_delay_s=4.0))
    delays = [tracker.died(now=float(i), ran_for_s=0.1) for i in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert tracker.restarts == 6


def test_a_part_that_ran_long_enough_is_restarted_at_once_again():
    tracker = RestartTracker(POLICY)
    assert tracker.died(now=0.0, ran_for_s=1.0) == 0.5
    assert tracker.died(now=2.0, ran_for_s=1.0) == 1.0
    assert tracker.died(now=40.0, ran_for_s=35.0) == 0.5


def test_a_part_that_dies_five_times_within_the_window_is_given_up():
    tracker = RestartTracker(POLICY)
    verdicts = [tracker.died(now=t, ran_for_s=1.0) for t in (0.0, 2.0, 5.0, 9.0, 15.0)]
    assert verdicts[:4] == [0.5, 1.0, 2.0, 4.0]
    assert verdicts[4] is None


def test_deaths_spread_wider_than_the_window_never_give_up():
    tracker = RestartTracker(POLICY)
    assert all(tracker.died(now=t * 20.0, ran_for_s=1.0) is not None for t in range(20))


# ---- the supervisor, when a restart itself fails -------------------------------------------------


class DeadProcess:
    """A process that ended after running since `started_at`."""

    pid = 4242
    alive = False
    ready = None
    log_file = "/dev/null"

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at

    def exit_text(self) -> str:
        return "was killed by SIGKILL"

    def log_tail(self, _lines: int) -> str:
        return ""

    def stop(self, timeout: float) -> None:
        pass


def test_a_restart_that_cannot_start_backs_off_instead_of_counting_as_a_long_run():
    from launcher.procs import Part, StackError, Supervisor

    now = {"t": 1000.0}

    def cannot_start():
        raise StackError("port taken")

    part = Part("relay", DeadProcess(started_at=0.0), cannot_start, policy=POLICY)  # ran 1000 s, then died
    supervisor = Supervisor([part], clock=lambda: now["t"])
    supervisor.tick()
    assert part.restart_at == 1000.5  # a long run before: the first delay
    now["t"] = 1000.5
    supervisor.tick()  # the restart fails: a death after 0 s, not after the old process's 1000 s
    assert part.restart_at == 1000.5 + 1.0
    now["t"] = 1001.5
    supervisor.tick()
    assert part.restart_at == 1001.5 + 2.0
