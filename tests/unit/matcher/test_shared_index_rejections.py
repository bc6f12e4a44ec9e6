"""A matcher sharing its index reads the rejections that may bear on a run's lists with the snapshot
of the pairs (one round trip where the repository reads both at once), after the index's lock is let
go; where one bears on a list, the lists are read again under the lock with the rejections, as
before. The pairs written must be those of the reads one after the other under the lock. The real
engine and shared index, the state in dicts (tests/unit/matcher/fakes.py); the organisations of
test_folded_reads, some of whose candidates the seekers' coordinators rejected as not relevant."""

from __future__ import annotations

import threading

import pytest

from partnermatch import events
from partnermatch.messaging import Record
from services.matcher.engine import MatchEngine, load_lexicon
from services.matcher.live import LiveMatcher
from services.matcher.table import SharedIndex
from tests.unit.matcher.fakes import FakeMatcherRepository
from tests.unit.matcher.test_feedback import TOP_K
from tests.unit.matcher.test_folded_reads import _profiles


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


class FoldingRepository(FakeMatcherRepository):
    """Reads the rejections and the snapshot together, as RedisMatcherState does, noting whether
    the index's lock was held meanwhile."""

    lock: threading.Lock | None = None
    under_lock: int = 0
    dislikes_under_lock: int = 0

    def dislikes_of(self, org_ids):
        if self.lock is not None and self.lock.locked():
            self.dislikes_under_lock += 1
        return super().dislikes_of(org_ids)

    def dislikes_and_snapshot(self, dislikes_of, org_ids, pair_ids, sides_of=()):
        self.reads.append("dislikes+snapshot")
        if self.lock is not None and self.lock.locked():
            self.under_lock += 1
        found = FakeMatcherRepository.dislikes_of(self, dislikes_of)
        snapshot = FakeMatcherRepository.snapshot(self, org_ids, pair_ids, sides_of)
        del self.reads[-2:]  # the two reads above are this one round trip
        return found, snapshot


def _run(state: FakeMatcherRepository, lexicon) -> tuple[dict, list[list[str]]]:
    """Every organisation registered through the shared index; the seekers' coordinators reject
    their two best candidates as not relevant; then every organisation changes its texts. The pairs
    as they end, and the reads of each changed organisation's run."""
    live = LiveMatcher(state, MatchEngine(lexicon), top_k=TOP_K, min_score=0.0, max_pending_per_org=8)
    shared = SharedIndex(live, wait_s=5)
    if isinstance(state, FoldingRepository):
        state.lock = shared.lock
    offsets = iter(range(1, 10_000))

    def handle(envelope: events.Envelope) -> list[str]:
        shared.index_record(Record("profiles", 0, next(offsets), envelope.payload["org_id"], events.encode(envelope)))
        state.reads.clear()
        assert shared.handle_owned_run([envelope]) == {envelope.payload["org_id"]}
        return list(state.reads)

    profiles = _profiles()
    for envelope in profiles:
        handle(envelope)
    for seeker in sorted(o for o in live.clusters if o.startswith("seeker-")):
        state.dislikes[seeker] = {s.id for s in live._top(seeker)[:2]}
    reads = []
    for envelope in profiles:
        envelope.payload["revision"] = 2
        envelope.payload["capabilities"] += " Also exporting."
        reads.append(handle(envelope))
    return state.pairs, reads


def test_a_run_reads_the_rejections_with_the_snapshot_outside_the_lock_and_writes_what_reads_under_it_wrote(
    lexicon,
):
    apart_state = FakeMatcherRepository()
    folded_state = FoldingRepository()
    apart, apart_reads = _run(apart_state, lexicon)
    folded, folded_reads = _run(folded_state, lexicon)

    assert folded == apart
    assert folded_state.under_lock == 0, "the rejections were read while the index's lock was held"
    # A run reads the rejections with the snapshot out of the lock, one round trip for two; where
    # they bear on its lists, the lists are read again under the lock with them ("dislikes": one
    # or two reads) and the snapshot again. A plan reads again for a decided pair it learnt or to
    # pass over partners with no place, in both ways, with the rejections out of the lock.
    bore = saved = 0
    for one, two in zip(folded_reads, apart_reads, strict=True):
        if one[0] == "snapshot":  # no list to read rejections for
            assert one == two
            continue
        assert one[0] == "dislikes+snapshot" and two[0] == "dislikes"
        assert len(one) <= len(two) + 1  # a rejection that bears costs one read more at most
        if "dislikes" in one:  # read under the lock only once a rejection bore (not for a pass)
            assert one[one.index("dislikes") - 1] == "dislikes+snapshot"
            bore += 1
        saved += len(one) < len(two)
    assert folded_state.dislikes_under_lock == sum(one.count("dislikes") for one in folded_reads)
    assert bore > 0, "no rejection bore on a list: the test shows nothing"
    # 4 of the 40 organisations reject candidates, and a run plans many lists: in this set they
    # bear on about half of the runs
    assert saved >= len(folded_reads) / 4
