"""The state's log of the profile events applied, which a matcher's write checks its index against
(issue 17, N matchers): a write whose plan came from an index lacking an applied event writes
nothing and says which; one that can no longer be told writes nothing and says so. On one
redis-server and on a three-node Redis Cluster."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from services.matcher.adapters.redis_state import (
    APPLIED_LOG,
    APPLIED_POSITION,
    PAIR,
    ListsPlan,
    ProfileChange,
    ProfilesChange,
    RedisMatcherState,
)
from services.matcher.domain import IndexBehind
from tests.integration.matcher.test_review_state import _pair

pytestmark = pytest.mark.integration


@pytest.fixture
def state(store_client):
    return RedisMatcherState(store_client)


class Index:
    """An index holding these revisions, known to hold every event up to `log_position`."""

    def __init__(self, log_position: int, revisions: dict[str, int]) -> None:
        self.log_position = log_position
        self.revisions = revisions

    def lacking(self, applied: Mapping[str, int]) -> dict[str, int]:
        return {org: rev for org, rev in applied.items() if self.revisions.get(org, 0) < rev}


def _applied(state: RedisMatcherState, org: str, revision: int) -> None:
    assert state.apply(ProfileChange(org, revision, {"org_id": org, "revision": revision}))


def _plan(index: Index) -> ListsPlan:
    return ListsPlan([_pair()], [], checked=index)


def test_a_write_from_an_index_holding_every_applied_event_is_made_and_moves_its_position_on(state):
    _applied(state, "org_a", 1)
    _applied(state, "org_b", 1)
    _applied(state, "org_a", 2)
    assert state.applied_position() == 3
    index = Index(0, {"org_a": 2, "org_b": 1})
    state.apply_pairs(_plan(index))
    assert state.r.exists(PAIR + "org_a~org_b")
    assert index.log_position == 3


def test_a_write_from_an_index_that_lacked_an_applied_revision_writes_nothing_and_says_which(state):
    _applied(state, "org_a", 1)
    _applied(state, "org_b", 1)
    _applied(state, "org_a", 2)
    index = Index(1, {"org_a": 1, "org_b": 1})  # it held the first event, not the third
    with pytest.raises(IndexBehind) as behind:
        state.apply_pairs(_plan(index))
    assert behind.value.lacking == {"org_a": 2}
    assert not state.r.exists(PAIR + "org_a~org_b")
    assert index.log_position == 1

    with pytest.raises(IndexBehind):  # a run of events is refused the same way, and not applied
        state.apply_profiles(ProfilesChange({"org_c": (1, {"org_id": "org_c"})}, [_pair()], checked=index))
    assert state.applied_revisions(["org_c"]) == {}


def test_a_write_whose_entries_the_log_no_longer_keeps_or_after_the_state_was_emptied_writes_nothing(state):
    for revision in (1, 2, 3):
        _applied(state, "org_a", revision)
    _applied(state, "org_b", 1)
    state.r.ltrim(APPLIED_LOG, -2, -1)  # as the log drops its oldest entries
    with pytest.raises(IndexBehind) as behind:
        state.apply_pairs(_plan(Index(1, {"org_a": 3, "org_b": 1})))
    assert behind.value.lacking is None  # every applied revision is to be held
    index = Index(2, {"org_a": 3, "org_b": 1})  # the two entries the log keeps are after 2
    state.apply_pairs(_plan(index))
    assert index.log_position == 4

    state.r.set(APPLIED_POSITION, 1)  # the state was emptied and one event applied since
    with pytest.raises(IndexBehind) as behind:
        state.apply_pairs(_plan(Index(4, {"org_a": 3, "org_b": 1})))
    assert behind.value.lacking is None


def test_a_write_not_checked_is_made_whatever_was_applied(state):
    _applied(state, "org_a", 1)
    _applied(state, "org_b", 1)
    state.apply_pairs(ListsPlan([_pair()], []))
    assert state.r.exists(PAIR + "org_a~org_b")
