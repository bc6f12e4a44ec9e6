"""A profile event's plan reads the rejections that bear on its lists and the snapshot of the pairs
in one round trip where the repository reads both at once (dislikes_and_snapshot): the pairs written
must be those of two reads, one after the other, whether the rejections bear on the lists or not.
The engine is the real one, the state test_feedback's fake."""

from __future__ import annotations

import random

import pytest

from partnermatch import events
from services.matcher.engine import MatchEngine, load_lexicon
from services.matcher.live import LiveMatcher
from tests.unit.matcher.test_feedback import NOISE, SOUGHT, TOP_K, FakeState, _upsert


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


class CountingState(FakeState):
    """test_feedback's fake, counting the reads a real store makes a round trip each."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def snapshot(self, org_ids, pair_ids, sides_of=()):
        self.reads.append("snapshot")
        return super().snapshot(org_ids, pair_ids, sides_of)

    def dislikes_of(self, org_ids):
        self.reads.append("dislikes")
        return super().dislikes_of(org_ids)


class FoldingState(CountingState):
    """The same, reading the rejections and the snapshot together as RedisMatcherState does."""

    def dislikes_and_snapshot(self, dislikes_of, org_ids, pair_ids, sides_of=()):
        self.reads.append("dislikes+snapshot")
        return FakeState.dislikes_of(self, dislikes_of), FakeState.snapshot(self, org_ids, pair_ids, sides_of)


def _profiles() -> list[events.Envelope]:
    rng = random.Random(16)
    found = [_upsert(f"seeker-{i}", "c-seekers", ["agrifood.dairy"], SOUGHT, "Dairy cooperative.") for i in range(4)]
    for f, offer in enumerate(SOUGHT):
        for j in range(12):
            offers = [offer, *rng.sample(NOISE, rng.randint(1, 2))]
            found.append(_upsert(f"fam{f}-{j:02d}", f"c-{j % 3}", offers, [], "We work with partners abroad."))
    return found


def _run(state: CountingState, lexicon) -> tuple[dict, list[list[str]]]:
    """Index the profiles, reject some of seeker-0's candidates as not relevant, then change every
    profile again: the pairs as they end, and the reads each profile event made."""
    live = LiveMatcher(state, MatchEngine(lexicon), top_k=TOP_K, min_score=0.0, max_pending_per_org=8)
    reads = []
    profiles = _profiles()
    for envelope in profiles:
        state.reads.clear()
        assert live.handle(envelope)
        reads.append(list(state.reads))
    for candidate in [s.id for s in live._top("seeker-0")][:2]:
        assert live.handle_decision(state.reject(events.pair_id("seeker-0", candidate), "c-seekers", "not_relevant"))
    rng = random.Random(3)
    for envelope in rng.sample(profiles, len(profiles)):
        envelope.payload["revision"] = 2
        envelope.payload["capabilities"] += " Also exporting."
        state.reads.clear()
        assert live.handle(envelope)
        reads.append(list(state.reads))
    return state.pairs, reads


def test_folded_reads_write_the_pairs_two_reads_write(lexicon):
    two, two_reads = _run(CountingState(), lexicon)
    one, one_reads = _run(FoldingState(), lexicon)
    assert one == two
    assert len(one_reads) == len(two_reads)
    # A run reads the rejections with the snapshot, one round trip for two; where they bear on its
    # lists, the lists are read again with them ("dislikes") and the snapshot again. A plan reads
    # again for a decided pair it learnt or to pass over partners with no place, in both ways.
    saved = 0
    for folded, apart in zip(one_reads, two_reads, strict=True):
        if folded[0] == "snapshot":  # no list to read rejections for
            assert folded == apart
            continue
        assert folded[0] == "dislikes+snapshot" and apart[0] == "dislikes"
        assert len(folded) <= len(apart) + 1  # a rejection that bears costs one read more at most
        saved += len(folded) < len(apart)
    assert any("dislikes" in reads for reads in one_reads)  # rejections bore on some lists
    assert saved > len(one_reads) / 2
