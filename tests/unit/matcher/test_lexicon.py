"""The project's own lexicon: complete in all 16 languages, consistent, and mapping real phrasing."""

from __future__ import annotations

import pytest

from partnermatch.languages import PROFILE_LANGUAGES
from services.matcher.engine import load_lexicon
from services.matcher.engine.lexicon import KINDS


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


def test_every_concept_has_a_label_in_every_one_of_the_16_languages(lexicon):
    missing = {
        c.id: sorted(set(PROFILE_LANGUAGES) - {k for k, v in c.labels.items() if v}) for c in lexicon.concepts.values()
    }
    assert not {k: v for k, v in missing.items() if v}


def test_kinds_sectors_and_related_sectors_are_consistent(lexicon):
    sectors = {c.id for c in lexicon.concepts.values() if c.kind == "sector"}
    assert len(sectors) >= 13
    for c in lexicon.concepts.values():
        assert c.kind in KINDS, c.id
        if c.kind == "activity":
            assert c.sector in sectors, c.id
        for r in c.related:
            assert r in sectors, (c.id, r)
            assert c.id in lexicon.concepts[r].related, f"{c.id} → {r} is not symmetric"


SENTENCES = {
    "pl": ("Nasza firma zajmuje się tworzeniem oprogramowania dla szkół.", {"ict", "education"}),
    "sr": ("Kompanija se bavi razvojem softvera i preradom voća.", {"ict", "agrifood"}),
    "hr": ("Tvrtka proizvodi namještaj od masivnog drva.", {"wood"}),
    "bs": ("Klaster okuplja firme iz metaloprerađivačke industrije i livnice.", {"metal"}),
    "sl": ("Podjetje se ukvarja s turizmom in gostinstvom.", {"tourism"}),
    "mk": ("Компанијата развива софтвер за болници.", {"ict", "health"}),
    "bg": ("Фирмата произвежда пластмасови опаковки и стъкло.", {"chemistry"}),
    "ru": ("Образовательный кластер химии и стекла ищет промышленных партнёров.", {"education", "chemistry"}),
    "uk": ("Компанія займається логістикою та складськими послугами.", {"logistics"}),
    "cs": ("Firma se zabývá stavebnictvím a výstavbou infrastruktury.", {"construction"}),
    "sk": ("Spoločnosť vyrába textil a odevy.", {"textiles"}),
    "ro": ("Compania dezvoltă proiecte de energie regenerabilă și fotovoltaice.", {"energy"}),
    "hu": ("A cég szoftverfejlesztéssel és informatikai tanácsadással foglalkozik.", {"ict"}),
    "sq": ("Kompania merret me turizëm dhe hoteleri në bregdet.", {"tourism"}),
    "de": ("Wir sind ein Zulieferer der Automobilindustrie mit Schweißtechnik.", {"metal"}),
    "en": ("We design furniture and run a sawmill.", {"wood"}),
}


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_a_sentence_in_each_language_maps_to_its_sectors(lexicon, lang):
    text, expected = SENTENCES[lang]
    found = {lexicon.sector_of(h.concept) for h in lexicon.find(text, lang)}
    assert expected <= found, f"{lang}: expected {expected}, found {found}"


def test_serbian_cyrillic_and_latin_map_to_the_same_concepts(lexicon):
    cyr = {h.concept for h in lexicon.find("Развој софтвера и информационе технологије за пољопривреду.", "sr")}
    lat = {h.concept for h in lexicon.find("Razvoj softvera i informacione tehnologije za poljoprivredu.", "sr")}
    assert cyr == lat and {"ict", "agrifood"} <= cyr


@pytest.mark.parametrize(
    ("text", "lang", "concept"),
    [
        ("Потребно ни е ERP-решение поврзано со сметководството.", "mk", "ict.enterprise_software"),
        ("HACCP-rendszer bevezetése a húsüzemben.", "hu", "agrifood.food_safety"),
        ("Sprijinim IMM-urile din regiune.", "ro", "coop.smes"),
        ("Wir suchen LKW-Fahrer und KEP-Dienstleister.", "de", "logistics.courier_last_mile"),
        ("Nudimo CNC-obradu metala.", "hr", "metal.machining_cnc"),
    ],
)
def test_an_acronym_joined_to_a_word_by_a_hyphen_still_names_its_concept(lexicon, text, lang, concept):
    """Hungarian and Romanian inflect an acronym after a hyphen, and most languages join one to a
    noun so ("ERP-решение", "CNC-obrada"): its concept is named all the same."""
    assert concept in {h.concept for h in lexicon.find(text, lang)}


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Fűszerpaprikát termesztünk és dolgozunk fel.", "hu"),
        ("Uprawiamy paprykę w szklarniach.", "pl"),
        ("Отглеждаме чушки за ЕС.", "bg"),
        ("Proizvodimo ajvar od paprike.", "sr"),
    ],
)
def test_a_pepper_grower_is_in_agrifood(lexicon, text, lang):
    """Peppers are the vegetable of the Pannonian plain and the Balkans; Hungarian "termeszt-" is
    growing crops."""
    assert "agrifood" in {lexicon.sector_of(h.concept) for h in lexicon.find(text, lang)}


def test_a_hyphenated_word_names_no_acronym_it_is_not_written_in_capitals(lexicon):
    assert "ict" not in {h.concept for h in lexicon.find("It-is a well-known fact.", "en")}


def test_no_common_function_word_of_any_language_names_a_sector_or_activity(lexicon):
    """Stop words of all 16 languages (stopwordsiso, ours for mk and sq) must not map to a sector
    or activity: a stem like `škol*` would make Russian "сколько" (how many) an education word."""
    import stopwordsiso

    from services.matcher.engine.analysis import stopwords

    words: set[str] = set()
    for lang in PROFILE_LANGUAGES:
        words |= set(stopwordsiso.stopwords(lang)) if stopwordsiso.has_lang(lang) else set()
        words |= set(stopwords(lang))
    assert len(words) > 3000
    wrong = {}
    # Czech's list has the loanword "design": it is design; the English list has the web words
    # "website" and "homepage", which name web design where a request asks for one (asked forms)
    for word in sorted(words - {"design", "website", "homepage"}):
        hits = [
            c
            for c in lexicon.token(word, None).singles  # an asked form's too: it would fire in every request
            if lexicon.concepts[lexicon.asked.get(c, c)].kind in ("sector", "activity", "country", "region")
        ]
        if hits:
            wrong[word] = hits
    assert not wrong


def test_the_kept_compiled_lexicon_finds_what_a_fresh_compile_finds(tmp_path, monkeypatch, caplog):
    from partnermatch import cachefile
    from services.matcher.engine import lexicon as lexicon_module

    texts = {
        "pl": "Produkcja mebli z drewna, tartak i obróbka CNC; szukamy partnerów IT.",
        "sr": "Прерада воћа и производња сокова, хладњаче и HACCP.",
        "de": "Wir entwickeln Software für Krankenhäuser und Medizintechnik.",
        "sq": "Turizëm rural dhe agroturizëm, prodhim vere.",
    }
    monkeypatch.setattr(cachefile, "_folder", None)
    fresh = load_lexicon()  # nothing kept: compiled
    monkeypatch.setattr(cachefile, "_folder", tmp_path)
    load_lexicon()  # compiled and kept
    (copy,) = tmp_path.glob("lexicon-*.pickle")

    def no_compiling(files):
        raise AssertionError("compiled although a copy is kept")

    monkeypatch.setattr(lexicon_module, "_compile", no_compiling)
    kept = load_lexicon()  # read from the copy, or the stub above fails
    monkeypatch.undo()
    monkeypatch.setattr(cachefile, "_folder", tmp_path)
    for lang, t in texts.items():
        assert kept.find(t, lang) == fresh.find(t, lang) != []

    copy.write_bytes(b"\x80\x05 damaged")
    with caplog.at_level("WARNING"):
        assert load_lexicon().find(texts["pl"], "pl") == fresh.find(texts["pl"], "pl")
    assert "unreadable" in caplog.text
    assert load_lexicon().find(texts["de"], "de") == fresh.find(texts["de"], "de")

    # A changed lexicon file is a new copy, never the old one.
    changed = tmp_path / "data"
    changed.mkdir()
    for f in lexicon_module.DATA_DIR.glob("*.yaml"):
        (changed / f.name).write_bytes(f.read_bytes())
    monkeypatch.setattr(lexicon_module, "DATA_DIR", changed)
    first = sorted(changed.glob("*.yaml"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n# a comment changes the file\n", encoding="utf-8")
    load_lexicon()
    assert len(list(tmp_path.glob("lexicon-*.pickle"))) == 2


def test_a_phrase_several_languages_write_alike_names_its_concept_once(tmp_path):
    """Serbian, Croatian, Bosnian and Slovene forms of one phrase meet the same words: one
    occurrence in the text is one, not one per language that lists the phrase."""
    from services.matcher.engine.analysis import analyse

    path = tmp_path / "lexicon.yaml"
    path.write_text(
        "- id: tourism\n"
        "  kind: sector\n"
        "  labels: {en: tourism, hr: turizam}\n"
        "  forms:\n"
        '    sr: ["zdravstven* turiz*", "turizam"]\n'
        '    hr: ["zdravstven* turiz*"]\n'
        '    bs: ["zdravstven* turiz*"]\n'
        '    sl: ["zdravstveni turizem", "zdravstven* turiz*"]\n',
        encoding="utf-8",
    )
    lexicon = load_lexicon([path])
    a = analyse(lexicon, "Razvijamo zdravstveni turizem i turizam.", "", "hr")
    assert sorted(a.offer_hits["tourism"]) == ["turizam", "zdravstveni turizem"]


ASKED_LEXICON = """
- id: ict
  kind: sector
  labels: {en: ICT}
  forms: {en: [software]}
- id: ict.ecommerce_web
  kind: activity
  sector: ict
  labels: {en: web shops}
  forms: {en: [webshop]}
  asked_forms: {en: [website, webshop], pl: ["stron* internetow*"]}
- id: cue.seek
  kind: cue
  labels: {en: seek}
  forms: {en: [we need], pl: [potrzebujemy]}
- id: cue.offer
  kind: cue
  labels: {en: offer}
  forms: {en: [we offer]}
"""


@pytest.mark.parametrize(
    ("capabilities", "goals", "offered", "sought", "asked"),
    [
        ("Visit our website for our cheeses.", "", None, None, False),  # no request: says nothing
        ("We make cheese. We need a new website.", "", None, ["website"], True),
        ("Robimy sery. Potrzebujemy nowej strony internetowej.", "", None, ["strony internetowej"], True),
        ("", "We plan to grow. A new website for our dairy.", None, ["website"], False),  # the goals' needs, implicit
        ("", "A new website for our dairy.", None, ["website"], True),  # terse goals: a request (TERSE_GOALS_WORDS)
        ("", "We offer tastings, see our website.", None, None, False),
        ("Our webshop sells cheese.", "", ["webshop"], None, False),  # its own form: an offer, once
        ("", "We need a webshop.", None, ["webshop"], True),  # a form and an asked form: named once
    ],
)
def test_asked_forms_name_their_concept_only_where_something_is_asked(
    tmp_path, capabilities, goals, offered, sought, asked
):
    from services.matcher.engine.analysis import analyse

    path = tmp_path / "lexicon.yaml"
    path.write_text(ASKED_LEXICON, encoding="utf-8")
    lexicon = load_lexicon([path])
    a = analyse(lexicon, capabilities, goals, "pl" if "sery" in capabilities else "en")
    assert a.offer_hits.get("ict.ecommerce_web") == offered
    assert a.seek_hits.get("ict.ecommerce_web") == sought
    assert ("ict.ecommerce_web" in a.asked) is asked
    assert "ict.ecommerce_web?" not in {*a.offer_hits, *a.seek_hits, *a.asked}
    # the lexicon's own look-up (what tests and tools read) does not report asked forms
    assert {h.concept for h in lexicon.find("we need a website", "en")} == {"cue.seek"}


def test_asked_forms_are_for_concepts_the_matcher_scores(tmp_path):
    path = tmp_path / "lexicon.yaml"
    path.write_text(
        "- id: cue.seek\n  kind: cue\n  labels: {en: seek}\n  forms: {en: [we need]}\n  asked_forms: {en: [help]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="asked forms"):
        load_lexicon([path])


@pytest.mark.parametrize(
    ("lang", "text", "concept"),
    [
        ("pl", "Produkujemy hale stalowe.", "metal.steel_structures"),
        ("ru", "Внедряем умные фермы.", "agrifood.agritech"),
        ("sr", "Radimo seču šuma.", "wood.forestry"),
        ("sl", "Ponujamo okna in vrata.", "wood.joinery"),
    ],
)
def test_a_phrase_may_start_with_a_stem_shorter_than_four_letters(lexicon, lang, text, concept):
    assert concept in {h.concept for h in lexicon.find(text, lang)}
