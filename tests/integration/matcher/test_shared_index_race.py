"""Two matchers planning lists at the same moment, each from an index that lacks the other's newest
event (issue 17): the write of a plan made from an index that lacked an event applied meanwhile is
refused, and the plan is made again once the index holds it, so the suggestions end as one
matcher's. Two shared indexes in this process, each with its own real engine, on one real
redis-server; the table reader's records are handed to each by hand, in the order the race needs.
The dev set's first file as the data."""

from __future__ import annotations

import threading

import pytest
import redis

from partnermatch import events
from partnermatch.messaging import Record
from services.matcher.adapters.redis_state import APPLIED_LOG, APPLIED_POSITION
from services.matcher.config import MatcherSettings
from services.matcher.entrypoints.consumer import build_live_matcher
from services.matcher.table import SharedIndex, TableBehind
from tests.integration.matcher.matcher_process import MAX_PENDING
from tests.integration.matcher.test_shared_index import _event, _organisations, _same_suggestions, _suggestions

pytestmark = pytest.mark.integration

REFERENCE_DB = 5  # the single matcher's state, apart from the two's


def _record(envelope: events.Envelope, offset: int) -> Record:
    return Record("profiles", 0, offset, envelope.payload["org_id"], events.encode(envelope))


def _matcher(url: str) -> SharedIndex:
    live = build_live_matcher(
        MatcherSettings(redis_url=url, kafka_bootstrap="unused:9092", max_pending_per_org=MAX_PENDING)
    )
    shared = SharedIndex(live, wait_s=10)
    shared.load()
    return shared


def _noting_lacking(shared: SharedIndex) -> list[dict[str, int]]:
    """What each check of the shared index's writes found it lacked, in order."""
    seen: list[dict[str, int]] = []
    lacking = shared.lacking

    def noting(applied):
        found = lacking(applied)
        seen.append(found)
        return found

    shared.lacking = noting  # type: ignore[method-assign]
    return seen


@pytest.fixture
def reference(redis_server):
    url = redis_server.url.rsplit("/", 1)[0] + f"/{REFERENCE_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    single = build_live_matcher(
        MatcherSettings(redis_url=url, kafka_bootstrap="unused:9092", max_pending_per_org=MAX_PENDING)
    )
    single.load()
    yield single
    client.flushdb()


def test_a_plan_from_an_index_that_lacked_an_event_applied_meanwhile_is_made_again_and_ends_as_one_matchers(
    redis_server, redis_client, reference
):
    orgs = _organisations()
    clusters = {o["cluster"] for o in orgs}
    registrations = [_event(o, 1, o) for o in orgs]
    # y and z both take w's texts: both enter the lists w is in, so the two events change the same
    # lists, and a plan of them made without one of the events leaves its organisation out
    y, z, w = orgs[0], orgs[1], orgs[2]
    y_moves, z_moves = _event(y, 2, w), _event(z, 2, w)

    first, second = _matcher(redis_server.url), _matcher(redis_server.url)
    offset = 0
    for envelope in registrations:
        for shared in (first, second):
            shared.index_record(_record(envelope, offset))
        offset += 1
    first.handle_owned_run(registrations)

    # the second matcher owns y's partition: it indexes y's event and applies it (its index lacks
    # z's, which nobody has applied yet)
    second.index_record(_record(y_moves, offset))
    assert second.handle_owned_run([y_moves]) == {y["id"]}
    # the first owns z's: it has indexed z's event, not yet y's, and plans z's lists without it;
    # its write finds y's event applied meanwhile, waits for the table reader, and plans again
    first.index_record(_record(z_moves, offset + 1))
    assert first.revisions[y["id"]] == 1
    seen_lacking = _noting_lacking(first)
    reader = threading.Timer(0.3, first.index_record, args=(_record(y_moves, offset),))
    reader.start()
    assert first.handle_owned_run([z_moves]) == {z["id"]}
    reader.join()
    second.index_record(_record(z_moves, offset + 1))

    assert {y["id"]: 2} in seen_lacking, "the first plan, made without y's event, was not refused"
    assert seen_lacking[-1] == {}, "the plan written last was made from an index holding every event applied"
    for envelope in [*registrations, y_moves, z_moves]:
        reference.handle(envelope)
    expected = _suggestions(reference.state, clusters)
    assert len(expected) > 50
    _same_suggestions(_suggestions(first.live.state, clusters), expected, reference.engine)


def test_a_write_after_the_log_has_dropped_the_entries_since_its_position_waits_for_every_applied_revision(
    redis_server, redis_client
):
    orgs = _organisations()[:12]
    registrations = [_event(o, 1, o) for o in orgs]
    shared = _matcher(redis_server.url)
    for offset, envelope in enumerate(registrations[:6]):
        shared.index_record(_record(envelope, offset))
    shared.handle_owned_run(registrations[:6])
    position = shared.log_position
    assert int(redis_client.get(APPLIED_POSITION)) == position + 6  # its own six events, checked at the position before

    # another matcher applied the rest while this one wrote nothing, and the log kept too few entries
    # to tell which: this one's next write reads every applied revision and waits for its index
    other = _matcher(redis_server.url)
    for offset, envelope in enumerate(registrations):
        other.index_record(_record(envelope, offset))
    for envelope in registrations[6:]:
        other.handle_owned_run([envelope])
    redis_client.ltrim(APPLIED_LOG, -1, -1)
    assert redis_client.llen(APPLIED_LOG) == 1 < int(redis_client.get(APPLIED_POSITION)) - position

    later = _event(orgs[0], 2, orgs[1])
    shared.index_record(_record(later, 20))
    shared.wait_s = 0.3
    with pytest.raises(TableBehind):  # the index lacks the other's six events: it holds none of them
        shared.handle_owned_run([later])
    assert redis_client.hget("{matcher}:revisions", orgs[0]["id"]) == b"1", "nothing written"

    for offset, envelope in enumerate(registrations[6:], start=6):
        shared.index_record(_record(envelope, offset))
    assert shared.handle_owned_run([later]) == {orgs[0]["id"]}
    assert shared.log_position == int(redis_client.get(APPLIED_POSITION)) - 1


def test_the_lists_a_rejection_plans_are_made_again_when_the_index_lacked_an_event_applied_meanwhile(
    redis_server, redis_client, reference
):
    orgs = _organisations()
    clusters = {o["cluster"] for o in orgs}
    registrations = [_event(o, 1, o) for o in orgs]
    y_moves = _event(orgs[0], 2, orgs[2])
    first, second = _matcher(redis_server.url), _matcher(redis_server.url)
    for offset, envelope in enumerate(registrations):
        for shared in (first, second):
            shared.index_record(_record(envelope, offset))
    first.handle_owned_run(registrations)
    second.index_record(_record(y_moves, 100))
    assert second.handle_owned_run([y_moves]) == {orgs[0]["id"]}  # the first's index lacks it

    # a coordinator rejects a pair as not relevant; the first matcher takes the decision
    pair_id = sorted(first.live.state.pending_ids_of_cluster(orgs[5]["cluster"]))[0]
    first.live.state.decide(pair_id, orgs[5]["cluster"], "coordinator", "reject", reason_code="not_relevant")
    [rejected] = [
        e
        for e in (events.decode(x.value) for x in first.live.state.outbox.head(10_000))
        if e.event_type == events.MATCH_REJECTED
    ]
    seen_lacking = _noting_lacking(first)
    reader = threading.Timer(0.3, first.index_record, args=(_record(y_moves, 100),))
    reader.start()
    handle = first.handlers({events.MATCH_REJECTED: first.live.handle_decision})[events.MATCH_REJECTED]
    assert handle(rejected) is True
    reader.join()
    assert {orgs[0]["id"]: 2} in seen_lacking and seen_lacking[-1] == {}

    for envelope in [*registrations, y_moves]:
        reference.handle(envelope)
    reference.state.decide(pair_id, orgs[5]["cluster"], "coordinator", "reject", reason_code="not_relevant")
    assert reference.handle_decision(rejected) is True
    # the same pairs; a rejection lowers scores (the feedback) that the engine's own scores leave out
    expected, got = _suggestions(reference.state, clusters), _suggestions(first.live.state, clusters)
    assert sorted(got) == sorted(expected)
