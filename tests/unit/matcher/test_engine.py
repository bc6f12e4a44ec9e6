"""The matching engine on a small lexicon: reciprocity, the never-self/never-own-cluster rules,
reasons, and incremental updates agreeing with a full fit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.matcher.engine import EngineSettings, MatchEngine, OrgProfile, render_reason
from services.matcher.engine.text import fold, tokens, transliterate
from tests.unit.matcher.conftest import MINI

P = OrgProfile


def _orgs():
    return [
        P(
            "pl-soft",
            "Soft PL",
            "pl-ict",
            "PL",
            "Tworzenie oprogramowania i usługi informatyczne.",
            "Szukamy partnerów z rolnictwa i przetwórstwa żywności.",
            "pl",
        ),
        P(
            "rs-fruit",
            "Voćar",
            "rs-agro",
            "RS",
            "Prerada voća, poljoprivreda, hladnjače.",
            "Tražimo softver za praćenje proizvodnje.",
            "sr",
        ),
        P("rs-fruit-2", "Воћар 2", "rs-agro", "RS", "Прерада воћа и пољопривреда.", "Тражимо софтвер.", "sr"),
        P(
            "ru-chem",
            "Химия",
            "ru-chem",
            "RU",
            "Химическая промышленность, производство стекла.",
            "Ищем партнёров в медицине.",
            "ru",
        ),
        P("pl-med", "Szpital", "pl-med", "PL", "Szpital i usługi medyczne.", "Szukamy dostawców chemii.", "pl"),
        P("pl-soft-2", "Soft PL 2", "pl-ict", "PL", "Oprogramowanie dla rolnictwa.", "Szukamy rolników.", "pl"),
    ]


def test_serbian_cyrillic_and_latin_fold_to_the_same_words():
    cyr = [fold(t) for t in tokens("Развој софтвера, информационе технологије, ђак, џеп, љубав, њива")]
    lat = [fold(t) for t in tokens("Razvoj softvera, informacione tehnologije, đak, džep, ljubav, njiva")]
    assert cyr == lat
    assert transliterate("Шабац") == "Šabac"


@given(st.text(max_size=12))
def test_strip_marks_gives_what_decomposing_and_dropping_the_marks_gives(text):
    """The shortcut for plain ASCII words changes nothing: the letters NFD would decompose and
    those folded by hand are all outside ASCII."""
    import unicodedata

    from services.matcher.engine.text import _FOLD_EXTRA, strip_marks

    decomposed = unicodedata.normalize("NFD", text.translate(_FOLD_EXTRA))
    assert strip_marks(text) == "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def test_serbian_cyrillic_and_latin_profiles_get_identical_concepts(engine):
    engine.fit(
        [
            P("a", cluster="x", capabilities="Развој софтвера и ИКТ услуге", goals="пољопривреда", language="sr"),
            P("b", cluster="y", capabilities="Razvoj softvera i IKT usluge", goals="poljoprivreda", language="sr"),
        ]
    )
    a, b = engine.analyses[engine.row["a"]], engine.analyses[engine.row["b"]]
    assert set(a.offer_hits) == set(b.offer_hits) == {"ict", "ict.software"}
    assert (engine.right[engine.row["a"]] == engine.right[engine.row["b"]]).all()


def test_acronyms_match_only_in_capitals(engine):
    engine.fit(
        [
            P("a", cluster="x", capabilities="Firma IT z Katowic", language="pl"),
            P("b", cluster="y", capabilities="We like it when it works", language="en"),
        ]
    )
    assert "ict" in engine.analyses[engine.row["a"]].offer_hits
    assert "ict" not in engine.analyses[engine.row["b"]].offer_hits


def test_an_organisation_is_never_its_own_partner_nor_one_of_its_own_cluster(engine):
    engine.fit(_orgs())
    for org in _orgs():
        partners = {s.id for s in engine.top(org.id, 10)}
        assert org.id not in partners
        same_cluster = {o.id for o in _orgs() if o.cluster == org.cluster}
        assert not partners & same_cluster


def test_offering_what_the_other_seeks_both_ways_beats_one_way(engine):
    both = P("both", cluster="c1", capabilities="Oprogramowanie dla firm.", goals="Szukamy rolnictwa.", language="pl")
    one_way = P(
        "oneway", cluster="c2", capabilities="Oprogramowanie dla firm.", goals="Szukamy turystyki.", language="pl"
    )
    seeker = P("seeker", cluster="c3", capabilities="Poljoprivreda i voće.", goals="Tražimo softver.", language="sr")
    engine.fit([both, one_way, seeker])
    ranked = [s.id for s in engine.top("seeker", 2)]
    assert ranked == ["both", "oneway"]
    assert engine.score_pair("seeker", "both").score > engine.score_pair("seeker", "oneway").score


def test_a_score_is_read_from_the_side_whose_need_it_meets(engine):
    # the software house seeks agriculture and the farm offers it; the farm seeks tourism, which
    # the software house does not offer: the farm ranks higher in the software house's list
    soft = P("soft", cluster="c1", capabilities="Oprogramowanie dla firm.", goals="Szukamy rolnictwa.", language="pl")
    farm = P("farm", cluster="c2", capabilities="Poljoprivreda i voće.", goals="Tražimo turizam.", language="sr")
    engine.fit([soft, farm])
    there, back = engine.score_pair("soft", "farm"), engine.score_pair("farm", "soft")
    assert there.score > back.score
    assert there.reasons[0].direction == "b_offers_a_seeks"


def test_reasons_say_who_offers_and_who_seeks_with_the_words_of_each_side(engine):
    engine.fit(_orgs())
    pair = engine.score_pair("pl-soft", "rs-fruit")
    by_concept = {(r.concept, r.direction): r for r in pair.reasons}
    software = by_concept[("ict.software", "a_offers_b_seeks")]
    assert "oprogramowania" in [t.lower() for t in software.terms_a] and "softver" in software.terms_b
    assert ("agrifood", "b_offers_a_seeks") in by_concept
    assert render_reason(software, "pl", engine.lexicon).startswith("tworzenie oprogramowania (")
    assert render_reason(software, "sr-Cyrl", engine.lexicon).startswith("развој софтвера (")
    assert software.to_dict()["direction"] == "a_offers_b_seeks"


def test_an_upsert_gives_the_same_lists_as_a_full_fit_with_the_same_weights(mini_lexicon):
    orgs = _orgs()
    full = MatchEngine(mini_lexicon)
    full.fit(orgs)
    incremental = MatchEngine(mini_lexicon)
    incremental.fit(orgs[:-1])
    incremental.idf, incremental.term_idf = full.idf, full.term_idf
    for o in orgs[:-1]:  # same weights: re-put the existing rows with the full fit's weights
        incremental.upsert(o)
    update = incremental.upsert(orgs[-1])
    for o in orgs:
        assert [s.id for s in incremental.top(o.id, 3)] == [s.id for s in full.top(o.id, 3)]
    assert [s.id for s in update.suggestions[:3]] == [s.id for s in full.top(orgs[-1].id, 3)]


def test_an_upsert_reports_whose_lists_it_entered_and_a_removal_whose_it_left(engine):
    engine.fit(_orgs()[:4])
    for o in _orgs()[:4]:
        engine.top(o.id, 5)
    update = engine.upsert(_orgs()[5])  # a second software firm, wanted by the fruit growers
    assert "rs-fruit" in update.entered
    assert "pl-soft-2" in {s.id for s in engine.top("rs-fruit", 5)}
    removal = engine.remove("pl-soft-2")
    assert "rs-fruit" in removal.left
    assert "pl-soft-2" not in {s.id for s in engine.top("rs-fruit", 5)}
    with pytest.raises(KeyError):
        engine.top("pl-soft-2", 5)


def test_batch_top_k_agrees_with_one_by_one_top_k(engine):
    engine.fit(_orgs())
    batch = dict(engine.suggestions_for_all(3))
    for o in _orgs():
        engine.topk.clear()
        one_by_one = engine.top(o.id, 3)
        assert [s.id for s in batch[o.id]] == [s.id for s in one_by_one]
        assert [s.reasons for s in batch[o.id]] == [s.reasons for s in one_by_one]


def test_empty_goals_fall_back_to_capabilities(engine):
    engine.fit(
        [
            P("a", cluster="x", capabilities="Oprogramowanie", goals="", language="pl"),
            P("b", cluster="y", capabilities="Softver i IKT", goals="", language="sr"),
        ]
    )
    assert engine.top("a", 1)[0].id == "b"


_FORK_CHECK = """
import sys
from services.matcher.engine import MatchEngine
from services.matcher.engine.lexicon import load_lexicon
from services.matcher.engine.workers import analyse_all, can_fork, read_all
from tests.unit.matcher.test_engine import _orgs, P
assert can_fork(), "a fresh process without threads must be allowed to fork"
items = [P(f"{p.id}-{i}", p.name, p.cluster, p.country, p.capabilities, p.goals, p.language)
         for i, p in enumerate(_orgs() * 3)]
engine = MatchEngine(load_lexicon([sys.argv[1]]))
serial = [a for part in analyse_all(engine.features.analyse, items, workers=1, chunk=4) for a in part]
forked = [a for part in analyse_all(engine.features.analyse, items, workers=2, chunk=4) for a in part]
assert forked == serial, "forked analyses differ"
assert any(a.offer_hits for a in forked)
kept = [a for _, part, _ in read_all(engine.features, items, 2, {}, keep_analyses=True, chunk=4) for a in part]
assert kept == serial, "analyses sent back by the workers differ"
print("same", len(forked))
"""


def test_analysis_in_worker_processes_equals_analysis_in_this_one():
    # In a fresh interpreter: this test process may run other threads, where the engine never forks.
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", _FORK_CHECK, str(MINI)], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "same 18"


def test_a_fit_with_workers_ranks_like_a_fit_without(mini_lexicon):
    items = [
        P(f"{p.id}-{i}", p.name, f"{p.cluster}-{i % 2}", p.country, p.capabilities, p.goals, p.language)
        for i, p in enumerate(_orgs() * 400)
    ]  # 2,400 profiles: three chunks of 1,000
    one, two = MatchEngine(mini_lexicon), MatchEngine(mini_lexicon)
    one.fit(items)
    two.fit(items, workers=2)
    for org in ("pl-soft-0", "rs-fruit-1", "ru-chem-3"):
        assert [(s.id, s.score) for s in two.top(org, 5)] == [(s.id, s.score) for s in one.top(org, 5)]


def test_vectors_built_for_many_profiles_at_once_equal_those_built_one_by_one(engine):
    engine.fit(_orgs())
    analyses = [a for a in engine.analyses if a is not None]
    countries = [p.country for p in engine.profiles if p is not None]
    many = engine.features.vectors_many(analyses, countries)
    one_by_one = np.vstack([engine.features.vectors(a, c)[0] for a, c in zip(analyses, countries, strict=True)])
    assert np.allclose(many, one_by_one, atol=1e-6)
    assert np.count_nonzero(many) > len(analyses)  # not all zeros


def test_the_transposed_linear_map_gives_a_row_its_score_in_every_other_list(engine):
    # An upsert scores the new row in every other row's list with one product against
    # left_transposed(its vector) instead of one left() per row: both must give the same numbers.
    engine.fit(_orgs())
    index = engine.index
    rows = range(len(index.ids))
    for r in rows:
        transposed = index.left_transposed(index.right[r])
        for o in rows:
            assert float(index.right[o] @ transposed) == pytest.approx(
                float(index.left(index.right[o]) @ index.right[r]), abs=1e-6
            )
    assert any(float(index.left(index.right[o]) @ index.right[r]) > 0 for r in rows for o in rows if r != o)


def test_reasons_built_in_bulk_equal_reasons_built_pair_by_pair():
    # The batch builds reasons for all its pairs at once; the live path builds them one pair at a
    # time. On the dev set (real lexicon, 16 languages), every ordered pair must get the same list.
    from services.matcher.batch import read_organisations

    root = Path(__file__).resolve().parents[3] / "tests" / "data" / "devset"
    profiles = [p for path in sorted(root.glob("*.jsonl")) for p in read_organisations(path.open(encoding="utf-8"))]
    engine = MatchEngine()
    engine.fit(profiles)
    n = len(engine.ids)
    owner, cand = np.repeat(np.arange(n), n), np.tile(np.arange(n), n)
    owner, cand = owner[owner != cand], cand[owner != cand]
    bulk = engine.reason_finder.reasons_many(owner, cand, engine.reason_finder.hit_matrices())
    kinds = set()
    for r, o, got in zip(owner.tolist(), cand.tolist(), bulk, strict=True):
        assert got == engine.reasons(r, o), (engine.ids[r], engine.ids[o])
        kinds.update(x.direction for x in got)
    assert kinds == {"a_offers_b_seeks", "b_offers_a_seeks", "shared"}
    assert any(x.kind == "term" for got in bulk for x in got)


def test_batch_lists_are_those_of_top_whatever_the_chunks():
    # The batch takes its candidates from the compiled product (topn.py), one chunk of rows at a
    # time; top() ranks one row with numpy. On the whole dev set, with a both-ways bonus large
    # enough to reorder candidates, both give the same partners in the same order with the same
    # reasons, and chunks of 7 rows give what one chunk of everything gives.
    from services.matcher.batch import read_organisations

    root = Path(__file__).resolve().parents[3] / "tests" / "data" / "devset"
    profiles = [p for path in sorted(root.glob("*.jsonl")) for p in read_organisations(path.open(encoding="utf-8"))]
    engine = MatchEngine(settings=EngineSettings(w_both_ways=0.8))
    engine.fit(profiles)
    whole = dict(engine.suggestions_for_all(5, chunk=len(profiles)))
    small = dict(engine.suggestions_for_all(5, chunk=7))
    assert list(small) == list(whole) == [p.id for p in profiles]
    assert {o: [(s.id, s.score, s.reasons) for s in lst] for o, lst in small.items()} == {
        o: [(s.id, s.score, s.reasons) for s in lst] for o, lst in whole.items()
    }
    for p in profiles:
        one = engine.top(p.id, 5)
        assert [(s.id, s.reasons) for s in whole[p.id]] == [(s.id, s.reasons) for s in one], p.id
        assert [s.score for s in whole[p.id]] == pytest.approx([s.score for s in one], abs=1e-5)
    assert sum(len(lst) for lst in whole.values()) == 5 * len(profiles)


def test_word_vectors_of_a_fit_equal_those_built_one_by_one(engine):
    engine.fit(
        _orgs() * 1
        + [
            P(
                f"x{i}",
                cluster=f"c{i}",
                capabilities="Oprogramowanie dla rolnictwa i szpitali.",
                goals="Szukamy partnerów: oprogramowanie, rolnictwo.",
                language="pl",
            )
            for i in range(3)
        ]
    )
    assert any(engine.terms)
    for r, a in enumerate(engine.analyses):
        one = engine.features.term_vector(a)
        assert engine.terms[r].keys() == one.keys()
        assert all(abs(engine.terms[r][t] - w) < 1e-12 for t, w in one.items())


def test_equal_scores_beyond_the_candidates_do_not_depend_on_the_input_order():
    # 80 identical profiles tie for one seeker's 60 candidate places: which of them it gets, and in
    # which order, follows their ids, not the order of the input.
    seeker = P(
        "seeker", cluster="s", capabilities="Oprogramowanie i chmura.", goals="Szukamy oprogramowania.", language="pl"
    )
    twins = [
        P(f"t{i:02d}", cluster=f"c{i}", capabilities="Oprogramowanie.", goals="", language="pl") for i in range(80)
    ]
    lists = []
    for order in (twins, twins[::-1], twins[40:] + twins[:40]):
        engine = MatchEngine()
        engine.fit([seeker, *order])
        lists.append([(s.id, s.score) for s in dict(engine.suggestions_for_all(5))["seeker"]])
    assert lists[0] == lists[1] == lists[2]
    assert [i for i, _ in lists[0]] == ["t00", "t01", "t02", "t03", "t04"]


def test_the_weights_are_due_to_be_learnt_again_as_profiles_arrive(mini_lexicon):
    settings = EngineSettings(reweigh_min_changes=5, reweigh_share=0.2)
    engine = MatchEngine(mini_lexicon, settings)
    engine.fit(_orgs())
    software = engine.features.concept_index["ict.software"]
    before = float(engine.idf[software])
    arrivals = [
        P(f"new-{i}", cluster=f"n{i}", capabilities="Tworzenie oprogramowania.", language="pl") for i in range(6)
    ]
    due = []
    for org in arrivals:
        engine.upsert(org)
        due.append(engine.reweigh_due())
    # five changes, and a fifth of the index: due from the fifth arrival on (the shared index's
    # refresher learns them then, beside the event path); an upsert alone keeps the weights
    assert due == [False, False, False, False, True, True]
    assert engine.idf[software] == before
    engine.reweigh()
    assert engine.idf[software] < before
    assert not engine.reweigh_due() and engine.changes_since_learnt == 0
    fresh = MatchEngine(mini_lexicon, settings)
    fresh.fit([*_orgs(), *arrivals])
    assert np.allclose(engine.idf, fresh.idf)
    assert engine.term_idf == fresh.term_idf
    assert [s.id for s in engine.top("new-5", 3)]  # the index still answers, the last one included
