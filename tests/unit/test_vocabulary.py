"""The vocabulary structured needs are chosen from: the lexicon's sectors, activities and
countries, labelled in every reader language."""

from __future__ import annotations

import textwrap

import pytest

from partnermatch import vocabulary
from partnermatch.languages import READER_LANGUAGES, latin_to_serbian_cyrillic


def test_needs_are_the_lexicons_sectors_and_activities_and_every_activity_has_a_known_sector():
    vocab = vocabulary.get_vocabulary()
    assert {"ict", "agrifood", "logistics"} <= set(vocab.sectors)
    assert {"ict.software", "logistics.cold_chain"} <= set(vocab.activities)
    assert vocabulary.need_ids() == set(vocab.sectors) | set(vocab.activities)
    assert all(term.sector in vocab.sectors for term in vocab.activities.values())


@pytest.mark.parametrize("lang", READER_LANGUAGES)
def test_every_reader_language_gets_every_term_labelled_and_sorted(lang):
    got = vocabulary.vocabulary(lang)
    assert len(got["sectors"]) == len(vocabulary.get_vocabulary().sectors)
    assert len(got["activities"]) == len(vocabulary.get_vocabulary().activities)
    for key in ("sectors", "activities"):
        assert all(item["label"] and item["label"] != item["id"] for item in got[key])
        keys = [vocabulary.sort_key(item["label"], lang) for item in got[key]]
        assert keys == sorted(keys)
    assert all(set(item) == {"id", "label", "sector"} for item in got["activities"])
    assert all(set(item) == {"id", "label"} for item in got["sectors"])


def test_lists_sort_as_readers_of_each_alphabet_expect():
    def ordered(lang: str, *words: str) -> list[str]:
        return sorted(words, key=lambda word: vocabulary.sort_key(word, lang))

    polish = ["Litwa", "Luksemburg", "Łotwa", "Słowacja", "Szwecja", "Śląski Klaster ICT", "Zrenjanin"]
    assert ordered("pl", *reversed(polish)) == polish
    assert ordered("de", "Zypern", "Österreich", "Norwegen", "Polen") == ["Norwegen", "Österreich", "Polen", "Zypern"]
    assert ordered("hr", "Đakovo", "Dubrovnik", "Čakovec", "Cres", "Danska") == [
        "Cres", "Čakovec", "Danska", "Dubrovnik", "Đakovo"
    ]  # fmt: skip
    assert ordered("sr-Cyrl", "Шри Ланка", "Џибути", "Чад", "Ђаково", "Египат", "Данска") == [
        "Данска", "Ђаково", "Египат", "Чад", "Џибути", "Шри Ланка"
    ]  # fmt: skip
    assert ordered("mk", "Ѓорче", "Грција", "Данска", "Египет") == ["Грција", "Данска", "Ѓорче", "Египет"]
    assert ordered("uk", "Йорданія", "Італія", "Ізраїль", "Греція", "Ґамбія", "Данія") == [
        "Греція", "Ґамбія", "Данія", "Ізраїль", "Італія", "Йорданія"
    ]  # fmt: skip
    decomposed = "И\u0306емен"  # "Йемен" typed as И and a breve
    assert ordered("ru", decomposed, "Италия", "Кипр") == ["Италия", decomposed, "Кипр"]


@pytest.mark.parametrize("lang", READER_LANGUAGES)
def test_countries_are_listed_and_named_by_their_short_names(lang):
    """The lexicon's label of a country whose short name is a common word adds its official name
    ("Malta (Republika Malty)"); readers see the short name."""
    labels = [item["label"] for item in vocabulary.vocabulary(lang)["countries"]]
    assert labels and not [label for label in labels if "(" in label]
    assert len(set(labels)) == len(labels)
    assert vocabulary.country_name(lang, "MT") in labels and "(" not in vocabulary.country_name(lang, "MT")


def test_a_country_the_lexicon_lacks_is_named_as_cldr_names_it_and_an_unknown_code_stays():
    assert "TN" not in vocabulary.country_codes() and vocabulary.country_name("de", "TN") == "Tunesien"
    assert vocabulary.country_name("sr-Cyrl", "PL") == "Пољска" and vocabulary.country_name("pl", "") == ""
    assert vocabulary.country_name("pl", "Q1") == "Q1"


def test_serbian_cyrillic_labels_are_the_serbian_latin_ones_transliterated():
    latin = {item["id"]: item["label"] for item in vocabulary.vocabulary("sr")["sectors"]}
    cyrillic = {item["id"]: item["label"] for item in vocabulary.vocabulary("sr-Cyrl")["sectors"]}
    assert cyrillic == {i: latin_to_serbian_cyrillic(label) for i, label in latin.items()}
    assert all(any("\u0400" <= ch <= "\u04ff" for ch in label) for label in cyrillic.values())


def test_an_unknown_reader_language_is_refused():
    with pytest.raises(ValueError):
        vocabulary.vocabulary("xx")


MINI = textwrap.dedent("""\
    - id: food
      kind: sector
      labels: {en: food, pl: żywność, sr: hrana}
    - id: food.cold
      kind: activity
      sector: food
      labels: {en: cold chain, sr: hladni lanac}
    - id: coop.rnd
      kind: cooperation
      labels: {en: research}
    - id: country.pl
      kind: country
      country: pl
      labels: {en: Poland, pl: Polska, sr: Poljska}
    - id: region.balkans
      kind: region
      countries: [RS, BA]
      labels: {en: Western Balkans}
""")


def test_countries_come_from_the_lexicon_entries_of_kind_country(tmp_path):
    (tmp_path / "mini.yaml").write_text(MINI, encoding="utf-8")
    vocab = vocabulary.load_vocabulary(tmp_path.glob("*.yaml"))
    assert set(vocab.sectors) == {"food"} and set(vocab.activities) == {"food.cold"}
    assert vocab.need_ids() == {"food", "food.cold"}
    assert vocab.country_codes() == {"PL"}
    assert vocab.countries["PL"].label("sr-Cyrl") == "Пољска"
    assert vocab.activities["food.cold"].label("de") == "cold chain", "English where a label is missing"


def test_without_countries_in_the_lexicon_the_form_lists_the_callers_codes(tmp_path, monkeypatch):
    (tmp_path / "mini.yaml").write_text(MINI.split("- id: country.pl")[0], encoding="utf-8")
    monkeypatch.setattr(vocabulary, "_loaded", vocabulary.load_vocabulary(tmp_path.glob("*.yaml")))
    assert vocabulary.country_codes() == frozenset()
    assert vocabulary.vocabulary("pl", fallback_countries=["RS", "PL"])["countries"] == [
        {"code": "PL", "label": "PL"},
        {"code": "RS", "label": "RS"},
    ]
    assert vocabulary.vocabulary("pl")["countries"] == []
    assert vocabulary.vocabulary("pl")["sectors"] == [{"id": "food", "label": "żywność"}]


def test_serbian_latin_becomes_cyrillic_digraphs_included():
    assert latin_to_serbian_cyrillic("Džep, LJUBAV i Njegoš") == "Џеп, ЉУБАВ и Његош"
    assert latin_to_serbian_cyrillic("ćevap đak čaša žica šuma") == "ћевап ђак чаша жица шума"
    assert latin_to_serbian_cyrillic("IoT 4.0 (x, w)") == "ИоТ 4.0 (x, w)"
