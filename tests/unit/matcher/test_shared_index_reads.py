"""The shared index holds its lock to read the lists a plan needs, not while the plan reads the
stored pairs (a round trip or two to Redis, longer on a busy machine): the table reader indexes
meanwhile, where it waited for the whole plan before."""

from __future__ import annotations

import threading

from services.matcher.table import SharedIndex
from tests.unit.matcher.test_shared_index import FakeLive, _event, _record
from tests.unit.matcher.test_shared_index_weights import LiveWithEngine


def _slowed(release: threading.Event) -> tuple[threading.Event, object]:
    reading = threading.Event()

    def slow(plan):
        def read(*args):
            reading.set()
            assert release.wait(5)
            return plan(*args)

        return read

    return reading, slow


def test_the_table_reader_indexes_while_an_owned_run_reads_the_stored_pairs():
    live = FakeLive()
    shared = SharedIndex(live, wait_s=5)  # type: ignore[arg-type]
    event = _event("org-a", 1)
    shared.index_record(_record(event))
    release = threading.Event()
    reading, slow = _slowed(release)
    live.plan_profiles_read = slow(live.plan_profiles_read)  # type: ignore[method-assign,operator]
    owner = threading.Thread(target=shared.handle_owned_run, args=([event],))
    owner.start()
    assert reading.wait(5)
    shared.index_record(_record(_event("org-b", 1)))  # not held up by the plan's reads of Redis
    assert shared.revisions["org-b"] == 1
    release.set()
    owner.join(5)
    assert live.state.revisions["org-a"] == 1


def test_the_table_reader_indexes_while_a_list_planned_again_reads_the_stored_pairs():
    live = LiveWithEngine()
    shared = SharedIndex(live, wait_s=5)  # type: ignore[arg-type]
    shared.index_record(_record(_event("org-a", 1)))
    release = threading.Event()
    reading, slow = _slowed(release)
    live.plan_read = slow(live.plan_read)  # type: ignore[method-assign,operator]
    replan = threading.Thread(target=shared.replan_lists, args=(["org-a"],))
    replan.start()
    assert reading.wait(5)
    shared.index_record(_record(_event("org-b", 1)))
    assert shared.revisions["org-b"] == 1
    release.set()
    replan.join(5)
    assert live.replanned == [{"org-a"}]
