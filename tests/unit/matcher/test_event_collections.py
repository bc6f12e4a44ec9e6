"""The cyclic collector in a matcher's process once it runs events (live.collect_between_runs): a run
ends by freezing what it left, so a run of ordinary size starts no collection, where CPython's
default threshold started collections inside the runs that found nothing to free. The real engine
and shared index over the dev set's organisations (the state in dicts: tests/unit/matcher/fakes.py),
each registered, then each editing its goals, as the group's consumer handles them."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from partnermatch import events
from partnermatch.messaging import Record
from services.matcher import live as live_module
from services.matcher.engine import MatchEngine, load_lexicon
from services.matcher.live import LiveMatcher
from services.matcher.table import SharedIndex
from tests.unit.matcher.fakes import FakeMatcherRepository

DEVSET = Path(__file__).resolve().parents[3] / "tests" / "data" / "devset"


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


def _payloads() -> list[dict]:
    rows = [json.loads(line) for path in sorted(DEVSET.glob("profiles_*.jsonl")) for line in path.open()]
    return [
        {
            "org_id": o["id"],
            "revision": 1,
            "cluster_id": o["cluster"],
            "name": o["name"],
            "country": o["country"],
            "language": o.get("language") or "en",
            "capabilities": o["capabilities"],
            "goals": o["goals"],
            "sectors": [],
            "website": None,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        for o in rows
    ]


@contextmanager
def _collections_counted() -> Iterator[list[int]]:
    started: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(count)
    try:
        yield started
    finally:
        gc.callbacks.remove(count)


def _edits_collected(lexicon, thresholds: tuple[int, int, int] | None) -> tuple[list[int], dict]:
    """Register every organisation, then set the collector (None: the matcher's setting, else these
    thresholds) and edit every one's goals: the generations of the collections started inside the
    edits' runs, and the pairs as they end."""
    state = FakeMatcherRepository()
    live = LiveMatcher(state, MatchEngine(lexicon), top_k=5, min_score=0.05, max_pending_per_org=8)
    shared = SharedIndex(live, wait_s=5)
    offsets = iter(range(1, 100_000))
    collected: list[int] = []

    def handle(payload: dict, counted: bool) -> None:
        envelope = events.new_event(events.PROFILE_UPSERTED, payload, "test")
        record = Record("profiles", 0, next(offsets), payload["org_id"], events.encode(envelope))
        with _collections_counted() as started:
            shared.index_record(record)
            assert shared.handle_owned_run([envelope]) == {payload["org_id"]}
        if counted:
            collected.extend(started)

    before = gc.get_threshold()
    try:
        payloads = _payloads()
        for payload in payloads:
            handle(payload, counted=False)
        if thresholds is None:
            live_module.collect_between_runs()
        else:
            gc.set_threshold(*thresholds)
        for payload in payloads:
            edited = {**payload, "revision": 2, "goals": payload["goals"] + " Also partners for joint exports."}
            handle(edited, counted=True)
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
    return collected, state.pairs


def test_runs_of_the_event_path_start_no_cyclic_collection_with_the_matchers_setting(lexicon):
    as_set, pairs_set = _edits_collected(lexicon, None)
    by_default, pairs_default = _edits_collected(lexicon, (700, 10, 10))
    assert len(pairs_set) > 100, "the edits planned lists and wrote pairs"
    assert len(by_default) > 20, "with CPython's default the runs are collected inside (the premise)"
    assert as_set == [], "each run's leftovers are frozen before the young generation fills"
    # the collector frees no cycle the runs make: the pairs are the same either way
    assert {k: {f: v for f, v in p.items() if not f.endswith("_ms")} for k, p in pairs_set.items()} == {
        k: {f: v for f, v in p.items() if not f.endswith("_ms")} for k, p in pairs_default.items()
    }
