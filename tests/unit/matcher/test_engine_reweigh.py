"""The weights learnt again beside the event path (MatchEngine.reweigh with the caller's lock): an
upsert goes through while they are learnt, the index swapped in is what a fresh fit of the same
profiles gives, and two indexes of one corpus end alike whatever order it came in."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from services.matcher.engine import MatchEngine, OrgProfile
from tests.unit.matcher.test_engine import _orgs

ARRIVAL = OrgProfile("rs-soft", "Softver", "rs-ict", "RS", "Razvoj softvera za poljoprivredu.", "Tražimo voćare.", "sr")


def _same_index(engine: MatchEngine, fresh: MatchEngine) -> None:
    """The same weights, rows (in the same order), vectors, word weights and lists."""
    assert engine.weights_digest() == fresh.weights_digest()
    assert np.array_equal(engine.idf, fresh.idf)
    assert engine.term_idf == fresh.term_idf
    assert engine.ids == fresh.ids
    for r in range(len(engine.ids)):
        assert np.array_equal(engine.right[r], fresh.right[r])
        assert engine.terms[r] == fresh.terms[r]
    assert dict(engine.suggestions_for_all(3)) == dict(fresh.suggestions_for_all(3))


def _fitted(mini_lexicon, profiles: list[OrgProfile]) -> MatchEngine:
    engine = MatchEngine(mini_lexicon)
    engine.fit(profiles)
    return engine


def test_an_upsert_goes_through_while_the_weights_are_learnt_and_the_swapped_index_is_a_fresh_fits(mini_lexicon):
    engine = _fitted(mini_lexicon, _orgs()[:4])
    for org in _orgs()[4:]:
        engine.upsert(org)  # weights of four, six indexed
    lock = threading.Lock()
    learning, go_on = threading.Event(), threading.Event()
    learn = engine._learnt_from

    def learn_slowly(taken):
        learning.set()
        assert go_on.wait(10)
        return learn(taken)

    engine._learnt_from = learn_slowly  # type: ignore[method-assign]
    thread = threading.Thread(target=engine.reweigh, kwargs={"hold": lock})
    thread.start()
    try:
        assert learning.wait(10)
        # the lock is free while the weights are learnt: the event path indexes and answers
        assert lock.acquire(timeout=1)
        try:
            engine.upsert(ARRIVAL)
            assert [s.id for s in engine.top(ARRIVAL.id, 3)]
        finally:
            lock.release()
        assert thread.is_alive()
    finally:
        go_on.set()
        thread.join(10)
    assert not thread.is_alive()

    # the weights are those of the six taken; the arrival is indexed with them, as an upsert would be
    of_six = _fitted(mini_lexicon, _orgs())
    assert engine.weights_digest() == of_six.weights_digest()
    assert engine.changes_since_learnt == 1
    of_six.upsert(ARRIVAL)
    assert engine.ids == [*sorted(o.id for o in _orgs()), ARRIVAL.id]
    assert dict(engine.suggestions_for_all(3)) == dict(of_six.suggestions_for_all(3))

    # learnt again with nothing changing meanwhile: what a fit of the seven gives, row for row
    engine.reweigh(hold=lock)
    _same_index(engine, _fitted(mini_lexicon, sorted([*_orgs(), ARRIVAL], key=lambda p: p.id)))
    assert engine.changes_since_learnt == 0


def test_a_removal_while_the_weights_are_learnt_is_caught_up(mini_lexicon):
    engine = _fitted(mini_lexicon, _orgs())
    learn = engine._learnt_from

    def remove_meanwhile(taken):
        engine.remove("pl-soft-2")
        engine.upsert(ARRIVAL)
        return learn(taken)

    engine._learnt_from = remove_meanwhile  # type: ignore[method-assign]
    engine.reweigh()
    assert engine.changes_since_learnt == 2
    assert "pl-soft-2" not in {s.id for org in ("rs-fruit", "rs-fruit-2") for s in engine.top(org, 5)}
    with pytest.raises(KeyError):
        engine.top("pl-soft-2", 3)
    assert ARRIVAL.id in {s.id for s in engine.top("rs-fruit", 5)}


def test_two_indexes_of_one_corpus_learn_the_same_weights_whatever_order_it_came_in(mini_lexicon):
    orgs = [*_orgs(), ARRIVAL]
    early = _fitted(mini_lexicon, orgs[:2])  # started when two had registered
    for org in orgs[2:]:
        early.upsert(org)
    late = _fitted(mini_lexicon, list(reversed(orgs[3:])))  # started later, and saw the rest after
    for org in orgs[:3]:
        late.upsert(org)
    late.remove("pl-med")
    late.upsert(orgs[4])
    assert early.weights_digest() != late.weights_digest()
    early.reweigh()
    late.reweigh()
    _same_index(early, late)


def test_one_reweigh_at_a_time(mini_lexicon):
    engine = _fitted(mini_lexicon, _orgs())
    learn = engine._learnt_from

    def reweigh_again(taken):
        with pytest.raises(RuntimeError):
            engine.reweigh()
        return learn(taken)

    engine._learnt_from = reweigh_again  # type: ignore[method-assign]
    engine.reweigh()
    assert engine.weights_digest() == _fitted(mini_lexicon, _orgs()).weights_digest()
