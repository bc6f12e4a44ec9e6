"""The shared index's writers take turns: while the pass after a refresh writes a list's plan, the
group's consumer makes no plan of its own (it would be written with a WATCH that the pass's write
breaks, again and again for a large run), and the table reader indexes all the same. A run plans the
lists that waited for its organisations in its own plan."""

from __future__ import annotations

import threading

from services.matcher.table import SharedIndex
from tests.unit.matcher.test_shared_index import _event, _record
from tests.unit.matcher.test_shared_index_weights import LiveWithEngine


def test_a_run_is_planned_only_once_the_list_planned_again_before_it_is_written_and_the_table_reads_meanwhile():
    live = LiveWithEngine()
    shared = SharedIndex(live, wait_s=5)  # type: ignore[arg-type]
    shared.index_record(_record(_event("org-a", 1)))
    writing, release = threading.Event(), threading.Event()
    apply_pairs = live.state.apply_pairs

    def slow_write(*plan):
        writing.set()
        assert release.wait(5)
        return apply_pairs(*plan)

    live.state.apply_pairs = slow_write  # type: ignore[method-assign]
    replan = threading.Thread(target=shared.replan_lists, args=(["org-a"],))
    replan.start()
    assert writing.wait(5)

    shared.index_record(_record(_event("org-b", 1)))  # the table reader is not held up by the write
    assert shared.revisions["org-b"] == 1
    owner = threading.Thread(target=shared.handle_owned_run, args=([_event("org-b", 1)],))
    owner.start()
    owner.join(0.3)
    assert owner.is_alive() and live.planned == [], "the consumer planned while the pass was writing"

    release.set()
    replan.join(5)
    owner.join(5)
    assert [org for org, _, _ in live.planned] == ["org-b"]
    assert live.state.revisions["org-b"] == 1


def test_the_lists_that_waited_for_an_organisation_are_planned_with_its_run_and_those_that_came_to_wait_after():
    live = LiveWithEngine()
    shared = SharedIndex(live, wait_s=5)  # type: ignore[arg-type]
    live.clusters.update({"x": "c-2", "y": "c-2", "z": "c-2"})
    live.state.waiting["a"] = {"x", "y"}
    event = _event("a", 1)
    shared.index_record(_record(event))
    apply_profiles = live.apply_profiles

    def another_matcher_meanwhile(change):
        live.state.waiting["a"].add("z")  # its plan of z's list wanted a, not applied yet then
        return apply_profiles(change)

    live.apply_profiles = another_matcher_meanwhile  # type: ignore[method-assign]
    assert shared.handle_owned_run([event]) == {"a"}
    assert live.planned == [("a", 1, {"a", "x", "y"})]  # one plan: the event's and the waiting lists
    assert live.replanned == [{"z"}]  # only the list that came to wait meanwhile, after the run
    assert live.state.waiting["a"] == set()
