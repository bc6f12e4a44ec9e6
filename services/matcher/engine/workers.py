"""Analysing many profiles in forked worker processes, for the batch command's fit (a live service
runs threads and so never forks), keeping forked children from copying the parent's memory, and
giving memory freed after a fit back to the system. Starts processes; no other I/O."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import gc
import itertools
import multiprocessing as mp
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from services.matcher.engine.analysis import Analysis, from_wire, pack, to_wire
from services.matcher.engine.features import FeatureSpace, Readings
from services.matcher.engine.values import OrgProfile

Analyse = Callable[[OrgProfile], Analysis]
T = TypeVar("T")

# Chunks handed to each worker or done and not yet taken: enough to keep the workers busy while
# this process takes a chunk's results, few enough that they do not pile up
CHUNKS_IN_FLIGHT = 3
# Organisations analysed here before the workers are forked: enough to fill the per-word caches
# with the common words the workers then inherit, few enough that the other cores do not wait
# long (20,000 organisations: 1,000 first took 1.9 s alone, cold; 200 take 0.8 s, and the run
# is some 0.6 s shorter)
FIRST_CHUNK = 200

_FORKED_WORK: Callable[[list[OrgProfile]], Any] | None = None  # what a forked worker inherited


def can_fork() -> bool:
    """Forking copies only the calling thread: unsafe once other threads hold locks."""
    return "fork" in mp.get_all_start_methods() and threading.active_count() == 1


@contextlib.contextmanager
def frozen_objects() -> Iterator[None]:
    """Out of the cycle collector's sight while forked workers live: a collection in a worker would
    write to every object it scans and so copy the parent's memory, page by page (measured: two
    analysis workers took 6.8 s where one process took 4.2 s; frozen, 3.4 s). Leaves alone a
    caller that froze its objects itself."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def release_freed_memory() -> None:
    """Give the C allocator's free pages back to the system (glibc's malloc_trim; elsewhere
    nothing). After a fit, what the workers sent and this process dropped once read (their
    messages, the analyses read from them) leaves free memory the allocator keeps: measured at
    100,000 organisations, 1,409 MiB resident before, 902 MiB after."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is not None:
        trim(0)


def analyse_all(
    analyse: Analyse,
    items: Iterable[OrgProfile],
    workers: int,
    chunk: int = 1000,
    while_waiting: Callable[[], object] | None = None,
) -> Iterator[list[Analysis]]:
    """analyse(p) of every item in input order, a chunk at a time: in `workers` forked processes
    where forking is safe, else in this one. `while_waiting` runs here once the workers have
    their first chunks (what comes next, prepared meanwhile)."""
    for _, analysed in map_chunks(lambda part: [analyse(p) for p in part], items, workers, chunk, while_waiting):
        yield analysed


def read_all(
    features: FeatureSpace,
    profiles: Iterable[OrgProfile],
    workers: int,
    word_id: dict[str, int],
    keep_analyses: bool = False,
    chunk: int = 1000,
    while_waiting: Callable[[], object] | None = None,
) -> Iterator[tuple[list[OrgProfile], list[Analysis | bytes], Readings]]:
    """Every profile analysed and read, a chunk at a time in input order, as fit() keeps them: the
    organisations as the index keeps them (id, cluster, country), their analyses (packed unless
    `keep_analyses`) and their readings, numbered by `word_id` (which it extends). The workers pack
    and read their own chunks, so this process never holds more than a few chunks' analyses
    unpacked (at a million organisations they took gigabytes while they waited here to be
    packed). Raises ValueError for an organisation given twice."""

    here = os.getpid()

    def digest(part: list[OrgProfile]) -> tuple[bytes | list[Analysis] | list[bytes], Readings]:
        analyses = [features.analyse(p) for p in part]
        readings = features.read(analyses, [p.country for p in part], {})
        if not keep_analyses:
            return [pack(a) for a in analyses], readings
        # kept whole: marshalled where they cross from a forked worker, as they are here
        return (to_wire(analyses) if os.getpid() != here else analyses), readings

    seen: set[str] = set()
    for part, (sent, readings) in map_chunks(digest, profiles, workers, chunk, while_waiting):
        stored: list[Analysis | bytes] = list(from_wire(sent)) if isinstance(sent, bytes) else list(sent)
        kept = []
        for p in part:
            if p.id in seen:
                raise ValueError(f"organisation {p.id} appears twice")
            seen.add(p.id)
            kept.append(OrgProfile(id=p.id, cluster=p.cluster, country=p.country))
        yield kept, stored, readings.renumbered(word_id)


def map_chunks(
    work: Callable[[list[OrgProfile]], T],
    items: Iterable[OrgProfile],
    workers: int,
    chunk: int,
    while_waiting: Callable[[], object] | None = None,
) -> Iterator[tuple[list[OrgProfile], T]]:
    """(chunk, work(chunk)) for the items' chunks in input order, read from `items` as they are
    needed: in `workers` forked processes where forking is safe, else in this one. At most
    CHUNKS_IN_FLIGHT chunks per worker are handed out or done and not yet taken, so neither the
    input nor the results pile up here."""
    it = iter(items)
    first = list(itertools.islice(it, min(chunk, FIRST_CHUNK) if workers > 1 else chunk))
    if not first:
        return
    # A first small chunk is done here: the workers then inherit the per-word caches it filled,
    # rather than each looking up the most common words again.
    yield first, work(first)
    chunks = _chunks(it, chunk)
    second = next(chunks, None)
    if second is None:
        return
    if workers <= 1 or not can_fork():
        for part in itertools.chain([second], chunks):
            yield part, work(part)
        return
    global _FORKED_WORK
    _FORKED_WORK = work
    pending: collections.deque[tuple[list[OrgProfile], Future[T]]] = collections.deque()
    try:
        with frozen_objects(), ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            for part in itertools.chain([second], chunks):
                pending.append((part, pool.submit(_work_chunk, part)))
                if len(pending) >= CHUNKS_IN_FLIGHT * workers:
                    if while_waiting is not None:
                        while_waiting()
                        while_waiting = None
                    done, future = pending.popleft()
                    yield done, future.result()  # a worker that dies raises BrokenProcessPool here
            if while_waiting is not None:
                while_waiting()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
    finally:
        for _, future in pending:
            future.cancel()
        _FORKED_WORK = None


def _chunks(items: Iterable[OrgProfile], size: int) -> Iterator[list[OrgProfile]]:
    it = iter(items)
    while part := list(itertools.islice(it, size)):
        yield part


def _work_chunk(part: list[OrgProfile]) -> Any:
    assert _FORKED_WORK is not None
    return _FORKED_WORK(part)
