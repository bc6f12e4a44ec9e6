"""The live index's reasons, read the quick way, are the ones the plain way gives: the shared words
from the two rows' word columns as from their word dictionaries, and a row's evidence gathered
from the analysis an upsert made as from the analysis the index keeps packed."""

from __future__ import annotations

from pathlib import Path

from services.matcher.engine import MatchEngine

DEVSET = Path(__file__).resolve().parents[3] / "tests" / "data" / "devset"


def _profiles():
    from services.matcher.batch import read_organisations

    return [p for path in sorted(DEVSET.glob("*.jsonl")) for p in read_organisations(path.open(encoding="utf-8"))]


def test_shared_words_from_the_word_columns_are_those_of_the_word_dictionaries():
    profiles = _profiles()
    engine = MatchEngine()
    engine.fit(profiles[:250])
    for p in profiles[250:260]:
        engine.upsert(p)  # rows changed since the fit are read from apart
    finder, terms = engine.reason_finder, engine.index.terms
    some = 0
    for r in range(0, len(engine.ids), 7):
        for o in range(3, len(engine.ids), 11):
            a, b = terms[r], terms[o]
            expected = sorted(((a[t] * b[t], t) for t in a.keys() & b.keys()), reverse=True)
            assert finder.shared_words(r, o) == expected
            some += bool(expected)
    assert some > 100


def test_evidence_of_the_row_just_put_is_that_of_its_stored_analysis():
    profiles = _profiles()
    engine = MatchEngine()
    engine.fit(profiles[:250])
    finder = engine.reason_finder
    for p in profiles[250:262]:
        engine.upsert(p)
        r = engine.row[p.id]
        partners = [engine.row[s.id] for s in engine.top(p.id, 10)]
        from_made = [finder.reasons(r, o) for o in partners] + [finder.reasons(o, r) for o in partners]
        finder.forget(r)  # gathered again from the packed analysis
        assert [finder.reasons(r, o) for o in partners] + [finder.reasons(o, r) for o in partners] == from_made


def test_the_parts_of_a_packed_analysis_reasons_read_are_those_unpack_gives():
    from services.matcher.engine.analysis import from_wire, pack, to_wire, unpack, unpack_hits, unpack_surface

    engine = MatchEngine()
    for p in _profiles()[:80]:
        analysis = engine.features.analyse(p)
        packed = pack(analysis)
        assert unpack(packed) == analysis
        assert unpack_hits(packed) == (analysis.offer_hits, analysis.seek_hits, analysis.wishes)
        assert unpack_surface(packed) == analysis.term_surface
        assert from_wire(to_wire([analysis, analysis])) == [analysis, analysis]


def test_reasons_from_analyses_kept_whole_are_those_from_packed_ones():
    profiles = _profiles()
    packed, whole = MatchEngine(), MatchEngine()
    packed.fit(profiles[:200])
    whole.fit(profiles[:200], keep_analyses=True)
    for engine in (packed, whole):
        for p in profiles[200:206]:
            engine.upsert(p)  # the row just put is read from its analysis as made
    lists = [[(s.id, s.score, s.reasons) for s in e.top(p.id, 10)] for e in (packed, whole) for p in profiles[:206:9]]
    half = len(lists) // 2
    assert lists[:half] == lists[half:]
    assert any(r.kind == "term" for found in lists for _, _, reasons in found for r in reasons)  # surfaces quoted
