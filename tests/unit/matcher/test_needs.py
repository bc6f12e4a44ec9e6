"""Needs first, on the project's real lexicon: request cues per language, negation, country wishes,
structured needs, and reasons that name the need met in the direction the texts support."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from partnermatch.languages import READER_LANGUAGES, is_cyrillic
from services.matcher.engine import EngineSettings, MatchEngine, OrgProfile
from services.matcher.engine.analysis import analyse
from services.matcher.engine.render import render_need

ROOT = Path(__file__).resolve().parents[3]

# A software house that ends its capabilities with a request for agri-food partners, in every
# language (Serbian in both scripts): the request is a need, the rest an offer.
SEEKING_AGRIFOOD = {
    "pl": "Tworzymy oprogramowanie dla firm. Szukamy partnerów z rolnictwa i przetwórstwa żywności.",
    "sr": "Razvijamo softver za preduzeća. Tražimo partnere iz poljoprivrede i prehrambene industrije.",
    "sr-Cyrl": "Развијамо софтвер за предузећа. Тражимо партнере из пољопривреде и прехрамбене индустрије.",
    "hr": "Razvijamo softver za tvrtke. Tražimo partnere iz poljoprivrede i prehrambene industrije.",
    "bs": "Razvijamo softver za firme. Tražimo partnere iz poljoprivrede i prehrambene industrije.",
    "sl": "Razvijamo programsko opremo za podjetja. Iščemo partnerje iz kmetijstva in živilske industrije.",
    "mk": "Развиваме софтвер за компании. Бараме партнери од земјоделството и прехранбената индустрија.",
    "bg": "Разработваме софтуер за фирми. Търсим партньори от селското стопанство и хранителната промишленост.",
    "ru": "Разрабатываем программное обеспечение для предприятий. Ищем партнёров из сельского хозяйства "
    "и пищевой промышленности.",
    "uk": "Розробляємо програмне забезпечення для підприємств. Шукаємо партнерів із сільського господарства "
    "та харчової промисловості.",
    "cs": "Vyvíjíme software pro firmy. Hledáme partnery ze zemědělství a potravinářského průmyslu.",
    "sk": "Vyvíjame softvér pre firmy. Hľadáme partnerov z poľnohospodárstva a potravinárskeho priemyslu.",
    "ro": "Dezvoltăm software pentru companii. Căutăm parteneri din agricultură și industria alimentară.",
    "hu": "Szoftvereket fejlesztünk vállalatoknak. Partnereket keresünk a mezőgazdaság és az élelmiszeripar "
    "területéről.",
    "sq": "Zhvillojmë softuer për kompani. Kërkojmë partnerë nga bujqësia dhe industria ushqimore.",
    "de": "Wir entwickeln Software für Unternehmen. Wir suchen Partner aus der Landwirtschaft und der "
    "Lebensmittelindustrie.",
    "en": "We develop software for companies. We are looking for partners in agriculture and food processing.",
}


@pytest.fixture(scope="module")
def lexicon():
    from services.matcher.engine import load_lexicon

    return load_lexicon()


def _sectors(lexicon, hits) -> set[str]:
    return {lexicon.sector_of(c) for c in hits if lexicon.sector_of(c)}


@pytest.mark.parametrize("lang", sorted(SEEKING_AGRIFOOD))
def test_a_request_at_the_end_of_the_capabilities_is_read_as_a_need(lexicon, lang):
    a = analyse(lexicon, SEEKING_AGRIFOOD[lang], "", lang.split("-")[0])
    assert "agrifood" in _sectors(lexicon, a.seek_hits), a.seek_hits
    assert "agrifood" in _sectors(lexicon, a.asked)
    assert "ict" in _sectors(lexicon, a.offer_hits), a.offer_hits
    assert "ict" not in _sectors(lexicon, a.seek_hits)
    assert "agrifood" not in _sectors(lexicon, a.offer_hits)


def test_serbian_cyrillic_and_latin_requests_give_the_same_needs(lexicon):
    latin = analyse(lexicon, SEEKING_AGRIFOOD["sr"], "", "sr")
    cyrillic = analyse(lexicon, SEEKING_AGRIFOOD["sr-Cyrl"], "", "sr")
    assert set(latin.seek_hits) == set(cyrillic.seek_hits)
    assert set(latin.offer_hits) == set(cyrillic.offer_hits)
    assert latin.asked == cyrillic.asked


def test_structured_needs_stand_in_the_script_the_organisation_writes(lexicon):
    """Their labels are the organisation's words in reasons: a Serbian profile written in Cyrillic
    gets Cyrillic ones (seen on 'my partnerships' as "агро-прехрамбеног, poljoprivreda i ...")."""
    needs = {"offers": ("ict.software",), "seeks": ("agrifood",), "seeks_countries": ("PL",)}
    cyrillic = analyse(lexicon, SEEKING_AGRIFOOD["sr-Cyrl"], "", "sr", **needs)
    latin = analyse(lexicon, SEEKING_AGRIFOOD["sr"], "", "sr", **needs)
    assert "пољопривреда и прехрамбена индустрија" in cyrillic.seek_hits["agrifood"]
    assert "Пољска" in cyrillic.wishes["PL"] and "развој софтвера" in cyrillic.offer_hits["ict.software"]
    assert "poljoprivreda i prehrambena industrija" in latin.seek_hits["agrifood"] and "Poljska" in latin.wishes["PL"]
    assert {c: len(w) for c, w in cyrillic.seek_hits.items()} == {c: len(w) for c, w in latin.seek_hits.items()}


def test_a_goals_sentence_that_says_we_offer_is_an_offer(lexicon):
    a = analyse(lexicon, "", "Oferujemy tworzenie oprogramowania. Szukamy producentów żywności.", "pl")
    assert "ict" in _sectors(lexicon, a.offer_hits)
    assert "agrifood" in _sectors(lexicon, a.seek_hits)


@pytest.mark.parametrize(
    ("lang", "goals"),
    [
        ("bs", "Računi za električnu energiju su nam porasli tri puta. Tražimo nekoga ko će nam pomoći."),
        ("en", "Our energy bills have tripled since 2021. We are looking for someone to help us with this."),
        ("pl", "Rachunki za energię elektryczną wzrosły trzykrotnie. Szukamy kogoś, kto nam pomoże."),
    ],
)
def test_a_request_that_names_nothing_asks_for_what_the_goals_describe(lexicon, lang, goals):
    """A problem, then "we are looking for someone to help": the problem's needs are stated ones."""
    a = analyse(lexicon, "Ljevaonica sivog liva.", goals, lang)
    assert "energy" in _sectors(lexicon, a.asked), (a.asked, a.seek_hits)


@pytest.mark.parametrize(
    ("lang", "goals"),
    [
        ("en", "Type of cooperation: research agreement. Partner sought: a farm cooperative with irrigated orchards."),
        ("pl", "Rodzaj współpracy: umowa badawcza. Poszukiwany partner: gospodarstwo sadownicze z nawadnianiem."),
        ("sr", "Tip saradnje: istraživački ugovor. Traženi partner: voćarska zadruga sa zasadima jabuke."),
        ("sk", "Typ spolupráce: výskumná dohoda. Hľadaný partner: ovocinárske družstvo so sadmi jabĺk."),
        ("de", "Art der Kooperation: Forschungsvertrag. Gesuchter Partner: ein Obstbaubetrieb mit Apfelplantagen."),
        ("en", "Type of cooperation: pilot. Business request: a fruit farm cooperative with irrigated orchards."),
        ("sk", "Typ spolupráce: pilot. Dopyt: ovocinárske družstvo so sadmi jabĺk na pilotný projekt."),
        ("ru", "Тип сотрудничества: пилот. Запрос: фермерское хозяйство с яблоневыми садами."),
    ],
)
def test_a_partnering_profiles_partner_sought_header_asks(lexicon, lang, goals):
    """The header of a partnering network's request names what is sought: its sentence asks."""
    a = analyse(lexicon, "Software for precision irrigation.", goals, lang)
    assert "agrifood" in _sectors(lexicon, a.asked), (a.asked, a.seek_hits)
    # the same header heading a line of its own, in the capabilities
    header, _, sought = goals.partition(". ")[2].partition(":")
    b = analyse(lexicon, f"Software for precision irrigation.\n{header}\n{sought.strip()}", "", lang)
    assert "agrifood" in _sectors(lexicon, b.asked), (b.asked, b.seek_hits)


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "We are a sought partner of dairies and fruit farms across the region."),
        ("pl", "Jesteśmy poszukiwanym partnerem gospodarstw sadowniczych i przetwórni owoców."),
        ("hr", "Postali smo traženi partner voćara i prerađivača voća u regiji."),
        ("sr", "Постали смо тражени партнер воћара и прерађивача воћа."),
        ("sk", "Sme hľadaný partner ovocinárskych družstiev a sadov."),
        ("hu", "Keresett partnere vagyunk a gyümölcstermesztőknek és a tejüzemeknek."),
        ("ro", "Suntem un partener căutat de fermele de fructe și de fabricile de lactate."),
        ("sk", "Dopyt po našich strojoch pre ovocinárske družstvá a sady rastie každým rokom."),
        ("pl", "Na zapytanie klienta dostarczamy systemy nawadniania dla sadów i gospodarstw rolnych."),
        ("ro", "Livrăm la cerere sisteme de irigații pentru ferme de fructe."),
        ("de", "Auf Anfrage liefern wir Bewässerungssysteme für Obstbaubetriebe."),
    ],
)
def test_a_sought_after_partner_is_praise_and_no_request(lexicon, lang, text):
    """The words of the header also praise or say other things ("demand for our machines grows",
    "on a customer's request"): in a sentence of the capabilities they ask for nothing, and what
    the sentence names stays what the organisation offers or serves."""
    a = analyse(lexicon, text, "", lang)
    assert "agrifood" not in _sectors(lexicon, a.asked), (a.asked, a.seek_hits)
    assert not a.seek_hits, a.seek_hits


def test_a_request_that_names_what_it_seeks_leaves_the_other_goals_implicit(lexicon):
    a = analyse(lexicon, "", "Tražimo distributere. Računi za električnu energiju su nam porasli.", "bs")
    assert "energy" in _sectors(lexicon, a.seek_hits) and "energy" not in _sectors(lexicon, a.asked)


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "We are not looking for more software firms, but for farms and food processors."),
        ("pl", "Nie szukamy kolejnych firm informatycznych, ale gospodarstw rolnych i przetwórni żywności."),
        ("sr", "Ne tražimo nove softverske firme, već poljoprivredna gazdinstva i prerađivače hrane."),
        ("pl", "Nie szukamy kolejnych firm informatycznych, szukamy gospodarstw rolnych i przetwórni żywności."),
    ],
)
def test_what_a_request_negates_is_no_need(lexicon, lang, text):
    a = analyse(lexicon, "", text, lang)
    assert "agrifood" in _sectors(lexicon, a.seek_hits)
    assert "ict" not in _sectors(lexicon, a.seek_hits)


# "What we lack is ..." asks as "we are looking for" does, at the end of the capabilities too; a
# "we lack nothing" of the same words does not.
LACKING_LOGISTICS = {
    "pl": "Produkujemy meble tapicerowane. Brakuje nam przewoźnika, który dowiezie je do klientów.",
    "sr": "Proizvodimo nameštaj. Nedostaje nam prevoznik koji bi robu vozio kupcima.",
    "sl": "Izdelujemo pohištvo. Manjka nam prevoznik, ki bi blago vozil kupcem.",
    "mk": "Произведуваме мебел. Ни недостига превозник кој би ја возел стоката до купувачите.",
    "bg": "Произвеждаме мебели. Липсва ни превозвач, който да доставя стоката до клиентите.",
    "ru": "Производим мебель. Нам не хватает перевозчика, который доставлял бы товар клиентам.",
    "uk": "Виробляємо меблі. Нам бракує перевізника, який доставляв би товар клієнтам.",
    "cs": "Vyrábíme nábytek. Chybí nám dopravce, který by zboží vozil zákazníkům.",
    "sk": "Vyrábame nábytok. Chýba nám dopravca, ktorý by tovar vozil zákazníkom.",
    "ro": "Producem mobilă. Ne lipsește un transportator care să livreze marfa clienților.",
    "hu": "Bútorokat gyártunk. Hiányzik nekünk egy fuvarozó, aki a vevőkhöz szállítaná az árut.",
    "sq": "Prodhojmë mobilje. Na mungon një transportues që t'ua dërgojë mallin klientëve.",
    "de": "Wir fertigen Möbel. Uns fehlt ein Spediteur, der die Ware zu den Kunden bringt.",
    "en": "We make furniture. What we lack is a haulier to bring the goods to our customers.",
}


@pytest.mark.parametrize("lang", sorted(LACKING_LOGISTICS))
def test_what_the_organisation_lacks_is_a_stated_need(lexicon, lang):
    a = analyse(lexicon, LACKING_LOGISTICS[lang], "", lang)
    assert "logistics" in _sectors(lexicon, a.asked), (a.seek_hits, a.offer_hits)
    assert "wood" in _sectors(lexicon, a.offer_hits) and "wood" not in _sectors(lexicon, a.seek_hits)


def test_lacking_nothing_is_no_need(lexicon):
    a = analyse(lexicon, "", "Nie brakuje nam przewoźników, szukamy producentów tkanin obiciowych.", "pl")
    assert "textiles" in _sectors(lexicon, a.asked)
    assert "logistics" not in _sectors(lexicon, a.seek_hits)


# An aim of partnering with someone in a goals list asks for them, as "we are looking for" does;
# in the capabilities the same words say whom the organisation works with.
PARTNERING_WITH_ENERGY = {
    "pl": "Cele na lata 2025–2027:\n1. Wzrost sprzedaży.\n2. Nawiązanie współpracy z dostawcami instalacji "
    "fotowoltaicznych i pomp ciepła.",
    "sr": "Ciljevi:\n1. Rast prodaje.\n2. Uspostavljanje saradnje sa isporučiocima solarnih elektrana i "
    "toplotnih pumpi.",
    "ru": "Задачи:\n1. Рост продаж.\n2. Налаживание сотрудничества с поставщиками солнечных электростанций и "
    "тепловых насосов.",
    "cs": "Cíle:\n1. Růst prodeje.\n2. Navázání spolupráce s dodavateli fotovoltaických elektráren a tepelných "
    "čerpadel.",
    "de": "Ziele:\n1. Umsatzwachstum.\n2. Zusammenarbeit mit Anbietern von Photovoltaikanlagen und Wärmepumpen.",
    "en": "Our aims:\n1. Grow sales.\n2. Partnerships with suppliers of solar power plants and heat pumps.",
}


@pytest.mark.parametrize("lang", sorted(PARTNERING_WITH_ENERGY))
def test_an_aim_of_partnering_with_someone_in_the_goals_asks_for_them(lexicon, lang):
    a = analyse(lexicon, "", PARTNERING_WITH_ENERGY[lang], lang)
    assert "energy" in _sectors(lexicon, a.asked), a.seek_hits


@pytest.mark.parametrize(
    ("lang", "goals", "sector"),
    [
        ("en", "Our brochure is five years old. We want someone who can film our tours and shoot photos.", "creative"),
        ("en", "Keen to meet partners from the wood processing and furniture industry.", "wood"),
        ("mk", "Сакаме некој што ќе ни сними квалитетни видеа и фотографии од турите.", "creative"),
        ("ru", "Нужен партнёр, который поможет наладить обучение в колледже.", "education"),
        ("de", "Wir wünschen uns jemanden, der unsere Produkte fotografiert und Werbung gestaltet.", "creative"),
    ],
)
def test_a_goal_that_wants_someone_who_does_something_asks_for_it(lexicon, lang, goals, sector):
    assert sector in _sectors(lexicon, analyse(lexicon, "", goals, lang).asked)


@pytest.mark.parametrize(
    ("lang", "goals", "sector"),
    [
        (
            "en",
            "Our priorities:\n– expand work-based learning by linking member schools with hotels and restaurants;",
            "tourism",
        ),
        (
            "sl",
            "Naloge grozda:\n– povezovanje članov, ki izdelujejo sedeže, s proizvajalci tehničnih tekstilij;",
            "textiles",
        ),
        ("mk", "Ни треба добавувач на стаклени тегли со капаци.", "chemistry"),
    ],
)
def test_an_aim_of_linking_members_with_others_asks_for_those_others(lexicon, lang, goals, sector):
    assert sector in _sectors(lexicon, analyse(lexicon, "", goals, lang).asked)


def test_the_aims_of_a_list_ask_one_by_one_and_a_list_under_a_request_asks_for_every_item(lexicon):
    aims = analyse(
        lexicon,
        "",
        "Cele na lata 2025–2027:\n1. Eksport mebli tapicerowanych do Niemiec.\n"
        "2. Nawiązanie współpracy z dostawcami instalacji fotowoltaicznych.",
        "pl",
    )
    assert "energy" in _sectors(lexicon, aims.asked)
    assert "wood" not in _sectors(lexicon, aims.asked), "an aim beside the partnering one asks for nothing"
    asked = analyse(lexicon, "", "Szukamy:\n- producentów tkanin obiciowych;\n- firm transportowych.", "pl").asked
    assert {"textiles", "logistics"} <= _sectors(lexicon, asked)


def test_whom_the_capabilities_say_the_organisation_works_with_is_no_need(lexicon):
    a = analyse(lexicon, "Współpraca z dostawcami instalacji fotowoltaicznych i pomp ciepła od 2010 roku.", "", "pl")
    assert "energy" in _sectors(lexicon, a.offer_hits)
    assert not a.seek_hits and not a.asked


@pytest.mark.parametrize(
    ("lang", "goals", "countries"),
    [
        ("pl", "Szukamy dystrybutorów w Niemczech i Austrii.", {"DE", "AT"}),
        ("sr", "Тражимо партнере из Словеније и Хрватске.", {"SI", "HR"}),
        ("sr", "Tražimo partnere iz Slovenije i Hrvatske.", {"SI", "HR"}),
        ("en", "We are looking for partners from the Western Balkans.", {"RS", "BA", "ME", "MK", "AL", "XK"}),
        ("de", "Wir suchen Vertriebspartner in Polen.", {"PL"}),
        ("ru", "Ищем партнёров из Сербии.", {"RS"}),
    ],
)
def test_a_country_in_a_request_is_a_wish(lexicon, lang, goals, countries):
    a = analyse(lexicon, "", goals, lang)
    assert countries <= set(a.wishes), a.wishes


def test_a_country_the_capabilities_only_mention_is_no_wish(lexicon):
    a = analyse(lexicon, "Eksportujemy meble do Niemiec i Francji od 1995 roku.", "", "pl")
    assert not a.wishes


def _engine(orgs, **settings):
    engine = MatchEngine(settings=EngineSettings(**settings)) if settings else MatchEngine()
    engine.fit(orgs)
    return engine


P = OrgProfile
SOFT = P(
    "soft",
    "Banat Soft",
    "rs-ict",
    "RS",
    "Razvijamo softver i mobilne aplikacije, obuka IT kadrova.",
    "Tražimo partnere iz poljoprivrede i prehrambene industrije za digitalizaciju.",
    "sr",
)
PEERS = [
    P(
        f"ict-{i}",
        f"Software {i}",
        f"c-ict-{i}",
        "PL",
        "Tworzenie oprogramowania, aplikacje mobilne, usługi IT i chmura obliczeniowa.",
        "Rozwój firm informatycznych.",
        "pl",
    )
    for i in range(4)
]
FARMS = [
    P(
        f"agro-{i}",
        f"Agro {i}",
        f"c-agro-{i}",
        "SK",
        "Poľnohospodárstvo, pestovanie ovocia a zeleniny, výroba mliečnych výrobkov.",
        "",
        "sk",
    )
    for i in range(3)
]


def test_organisations_that_offer_what_one_seeks_come_first_with_the_need_as_first_reason():
    engine = _engine([SOFT, *PEERS, *FARMS])
    top = engine.top("soft", 5)
    assert {s.id for s in top[:3]} == {f.id for f in FARMS}
    first = top[0].reasons[0]
    assert first.direction == "b_offers_a_seeks"
    assert engine.lexicon.sector_of(first.concept) == "agrifood"
    line = render_need(first.to_dict(), "en", "Banat Soft", "Agro 0")
    assert line.startswith("Banat Soft seeks ") and "— Agro 0 offers it" in line


@pytest.mark.parametrize("lang", READER_LANGUAGES)
@pytest.mark.parametrize("kind, concept", [("sector", "agrifood"), ("country", "country.PL")])
def test_a_need_met_reads_as_a_sentence_in_every_reader_language(lang, kind, concept):
    """Serbian Cyrillic too: its sentence is the Serbian one transliterated, placeholders kept (they
    were transliterated with it, so every Cyrillic reader got the bare words instead)."""
    reason = {"concept": concept, "kind": kind, "terms_a": ["агро-прехрамбеног"], "terms_b": ["mleko"]}
    line = render_need(reason, lang, "ДатаПоље", "Mleczarnia Podlaska")
    assert line.startswith("ДатаПоље ") and "Mleczarnia Podlaska" in line
    assert line.endswith("(агро-прехрамбеног ↔ mleko)") and "{" not in line
    if lang == "sr-Cyrl":
        assert line.startswith("ДатаПоље тражи") and is_cyrillic(line.replace("Mleczarnia Podlaska", ""))


def test_an_organisation_that_seeks_nothing_in_particular_still_gets_its_peers():
    quiet = P("quiet", "Quiet Soft", "rs-ict", "RS", "Razvijamo softver i mobilne aplikacije.", "", "sr")
    engine = _engine([quiet, *PEERS, *FARMS])
    assert {s.id for s in engine.top("quiet", 4)} == {p.id for p in PEERS}


def test_structured_needs_count_without_any_words_for_them():
    plain = P(
        "plain",
        "Plain Soft",
        "rs-ict",
        "RS",
        "Razvijamo softver i mobilne aplikacije.",
        "",
        "sr",
        seeks=("agrifood",),
        seeks_countries=("SK",),
    )
    engine = _engine([plain, *PEERS, *FARMS])
    top = engine.top("plain", 5)
    assert {s.id for s in top[:3]} == {f.id for f in FARMS}
    concepts = {r.concept for r in top[0].reasons if r.direction == "b_offers_a_seeks"}
    assert "country.SK" in concepts
    assert any(engine.lexicon.sector_of(c) == "agrifood" for c in concepts if not c.startswith("country."))


def test_a_country_wish_brings_partners_from_there_first_among_equals():
    seeker = P(
        "seeker",
        "Seeker",
        "pl-x",
        "PL",
        "Produkujemy sery i jogurty.",
        "Szukamy firm transportowych z chłodniami w Niemczech.",
        "pl",
    )
    carriers = [
        P(
            f"log-{c}",
            f"Carrier {c}",
            f"c-log-{c}",
            c,
            "Freight transport, cold chain logistics and warehousing.",
            "",
            "en",
        )
        for c in ("CZ", "DE", "HU")
    ]
    engine = _engine([seeker, *carriers])
    top = engine.top("seeker", 3)
    assert top[0].id == "log-DE"
    assert any(r.concept == "country.DE" and r.direction == "b_offers_a_seeks" for r in top[0].reasons)

    # however much more the country weighs, what the carrier does (cold chain) says more than where
    # it is, and comes first among the reasons; both ways of building them agree
    heavy = _engine([seeker, *carriers], w_country=0.9)
    [listed] = [s for s in heavy.top("seeker", 3) if s.id == "log-DE"]
    first = listed.reasons[0]
    assert first.direction == "b_offers_a_seeks" and not first.concept.startswith("country."), listed.reasons
    assert "country.DE" in [r.concept for r in listed.reasons]


def _seekers_and_devset():
    orgs = []
    for folder in ("devset", "seekers"):
        for path in sorted((ROOT / "tests" / "data" / folder).glob("*.jsonl")):
            orgs += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        P(
            o["id"],
            o.get("name", ""),
            o["cluster"],
            o.get("country", ""),
            o.get("capabilities", ""),
            o.get("goals", ""),
            o.get("language"),
        )
        for o in orgs
    ]


def test_no_reason_claims_a_direction_the_texts_do_not_support():
    engine = _engine(_seekers_and_devset())
    lex = engine.lexicon
    checked = 0
    for org_id, suggestions in engine.suggestions_for_all(5):
        a = engine.analyses[engine.row[org_id]]
        for s in suggestions:
            b = engine.analyses[engine.row[s.id]]
            for r in s.reasons:
                if r.kind == "country":
                    code = r.concept.removeprefix("country.")
                    if r.direction == "b_offers_a_seeks":
                        assert code in a.wishes and engine.profiles[engine.row[s.id]].country == code
                    else:
                        assert code in b.wishes and engine.profiles[engine.row[org_id]].country == code
                    checked += 1
                    continue
                if r.direction == "shared":
                    continue
                seeker, provider = (a, b) if r.direction == "b_offers_a_seeks" else (b, a)

                def names(hits, concept):
                    return concept in hits or any(lex.sector_of(c) == concept for c in hits)

                assert names(seeker.seek_hits, r.concept), (org_id, s.id, r)
                assert names(provider.offer_hits, r.concept), (org_id, s.id, r)
                checked += 1
    assert checked > 1000


# A hotel whose goals name its own trade ("for our hotel") beside what it seeks (software), other
# hotels and a software house; texts in Croatian, Slovenian, Serbian and Polish.
HOTEL_SEEKING_SOFTWARE = [
    P(
        "hotel",
        "Hotel Mirna",
        "hr-istra-tourism",
        "HR",
        "Hotel s 180 soba i 12 apartmana na obali, wellness centar, dva restorana i kongresna dvorana.",
        "Za naš hotel trebamo sustav za online rezervacije povezan s hotelskim softverom i mobilnu "
        "aplikaciju za goste hotela: online prijava, narudžbe iz restorana i rezervacija wellnessa.",
        "hr",
    ),
    P(
        "spa",
        "Terme Zreče",
        "si-spa-tourism",
        "SI",
        "Hotel in wellness center s termalnimi bazeni, restavracija in kongresna dvorana.",
        "Iščemo partnerje za skupne turistične pakete in izmenjavo gostov med hoteli.",
        "sl",
    ),
    P(
        "lodge",
        "Durmitor Lodge",
        "me-tourism",
        "ME",
        "Hotel i restoran na Žabljaku, planinski turizam, wellness i domaća kuhinja.",
        "Tražimo turističke agencije i hotele za zajedničku promociju.",
        "sr",
    ),
    P(
        "booking",
        "Rezerwacje.dev",
        "pl-ict",
        "PL",
        "Tworzymy oprogramowanie dla hoteli: systemy rezerwacji online, aplikacje mobilne dla gości, "
        "integracje z systemami hotelowymi.",
        "Szukamy hoteli do wdrożeń pilotażowych.",
        "pl",
    ),
]


def test_a_need_said_with_the_own_trades_words_seeks_what_it_names_not_its_own_trade():
    """ "For our hotel we need a booking system": the hotel words are the seeker's own trade, not
    what it seeks. Its needs weigh software, its own trade's activities next to nothing (they met
    other hotels as needs, at full weight); built one by one as in a fit."""
    engine = _engine(HOTEL_SEEKING_SOFTWARE)
    features = engine.features
    needs = features.vectors(engine.analyses[engine.row["hotel"]], "HR")[0][features.block["seeks"]]
    weight = {
        c: float(needs[features.concept_index[c]])
        for c in ("tourism.hotels", "tourism.gastronomy", "ict.software", "ict.ecommerce_web")
    }
    # software: the app, and the online booking system (a web solution, ict.ecommerce_web's)
    ict = np.hypot(weight["ict.software"], weight["ict.ecommerce_web"])
    assert ict > 0.9 and weight["tourism.hotels"] < 0.05 and weight["tourism.gastronomy"] < 0.05
    assert engine.top("hotel", 3)[0].id == "booking"
    analyses = [a for a in engine.analyses if a is not None]
    countries = [p.country for p in engine.profiles if p is not None]
    many = features.vectors_many(analyses, countries)
    one_by_one = np.vstack([features.vectors(a, c)[0] for a, c in zip(analyses, countries, strict=True)])
    assert np.allclose(many, one_by_one, atol=1e-6)


def test_a_need_of_the_own_sector_picked_from_the_form_counts_whole():
    """The discount is for the own trade's words in the goals; a dairy that picks "livestock" from
    the form's list seeks farms, and says so: that need keeps its weight, one by one as in a fit."""
    dairy = P(
        "dairy",
        "Mleczarnia Łyna",
        "pl-dairy",
        "PL",
        "Produkujemy sery dojrzewające, masło i jogurty z mleka od 400 dostawców.",
        "Rozwijamy eksport serów.",
        "pl",
        seeks=("agrifood.livestock",),
    )
    engine = _engine([dairy, *HOTEL_SEEKING_SOFTWARE])
    features = engine.features
    analyses = [a for a in engine.analyses if a is not None]
    countries = [p.country for p in engine.profiles if p is not None]
    one = features.vectors(engine.analyses[engine.row["dairy"]], "PL")[0][features.block["seeks"]]
    many = features.vectors_many(analyses, countries)
    column = features.concept_index["agrifood.livestock"]
    assert one[column] > 0.3, "a need picked from the form is not discounted as the own trade's words are"
    assert np.allclose(many[engine.row["dairy"], features.block["seeks"]], one, atol=1e-6)


FOUNDRY_GOALS = {  # the same need for heat-recovery systems, as an aim of partnering, as a request, implicit
    "partnering": "Wzrost eksportu odlewów. Nawiązanie współpracy z dostawcami systemów odzysku ciepła i "
    "magazynowania energii.",
    "request": "Wzrost eksportu odlewów. Szukamy dostawców systemów odzysku ciepła i magazynowania energii.",
    "implicit": "Wzrost eksportu odlewów. Odzysk ciepła i magazynowanie energii.",
}


def test_a_need_an_aim_of_partnering_states_counts_between_an_implicit_one_and_a_request(lexicon):
    from services.matcher.engine.analysis import from_wire, pack, to_wire, unpack

    engine = MatchEngine()
    features = engine.features
    foundry = "Odlewnia żeliwa: odlewy dla przemysłu maszynowego, obróbka mechaniczna odlewów."
    analyses = {kind: analyse(lexicon, foundry, goals, "pl") for kind, goals in FOUNDRY_GOALS.items()}
    partnered = analyses["partnering"]
    assert "energy" in _sectors(lexicon, partnered.partnered) and partnered.partnered <= partnered.asked
    assert not analyses["request"].partnered
    assert unpack(pack(partnered)) == partnered
    assert from_wire(to_wire([partnered])) == [partnered]

    def sought_energy(kind: str) -> float:
        return float(
            features.vectors(analyses[kind], "PL")[0][features.block["seek_sector"]][features.sector_index["energy"]]
        )

    assert sought_energy("implicit") < sought_energy("partnering") < sought_energy("request")
    settings = EngineSettings(partnering_weight=1.0)
    as_request = MatchEngine(settings=settings).features.vectors(partnered, "PL")[0]
    assert np.allclose(as_request, MatchEngine(settings=settings).features.vectors(analyses["request"], "PL")[0])
    kinds = list(analyses.values())
    many = features.vectors_many(kinds, ["PL"] * len(kinds))
    one_by_one = np.vstack([features.vectors(a, "PL")[0] for a in kinds])
    assert np.allclose(many, one_by_one, atol=1e-6)


# A member's answer to "what do you seek?" typed in a hurry: one short sentence naming the partners
# or the goods, with no "we seek" (seekers_n is written so).
TERSE_GOALS = [
    ("hr", "Hoteli, kampovi i turističke zajednice.", "tourism"),
    ("de", "Physiotherapie und ärztliche Begleitung für Gesundheitswochen.", "health"),
    ("bg", "Медицински центрове, клиники по физикална терапия и рехабилитация.", "health"),
    ("hr", "CLT paneli, lijepljeno lamelirano drvo, drvena stolarija.", "wood"),
    ("hu", "napelemes rendszerek, hoszivattyuk, energetikai tanusitvany", "energy"),
]


@pytest.mark.parametrize(("lang", "goals", "sector"), TERSE_GOALS)
def test_goals_of_one_short_sentence_ask_for_what_they_name(lexicon, lang, goals, sector):
    assert sector in _sectors(lexicon, analyse(lexicon, "", goals, lang).asked)


@pytest.mark.parametrize(
    "goals",
    [
        # after a sentence of the organisation's own plans: goals that say what it plans
        "Rast izvoza na tržišta EU. Hoteli, kampovi i turističke zajednice.",
        # one sentence, but longer than a fragment
        (
            "Hoteli, kampovi i turističke zajednice na cijeloj obali Jadrana, od Istre i Kvarnera preko "
            "srednje Dalmacije sve do Dubrovnika i Konavala."
        ),
    ],
)
def test_longer_goals_without_a_request_stay_implicit(lexicon, goals):
    a = analyse(lexicon, "", goals, "hr")
    assert "tourism" in _sectors(lexicon, a.seek_hits)
    assert "tourism" not in _sectors(lexicon, a.asked), a.asked


def test_terse_goals_read_as_a_request_with_its_negations(lexicon):
    a = analyse(lexicon, "", "Möbelhersteller, keine Händler oder Großhändler.", "de")
    assert "wood" in _sectors(lexicon, a.asked)
    assert "partner.distributors" in a.refused and "partner.distributors" not in a.asked, (a.asked, a.refused)


def test_terse_goals_stay_implicit_where_the_capabilities_asked_already(lexicon):
    """The request is in the capabilities; goals of one short sentence then often say what the
    organisation does or plans ("its own games, games to order, AR and VR apps")."""
    capabilities = "Razvijamo edukativne igre. Tražimo klinike i osnovne škole za pilot-projekte."
    a = analyse(lexicon, capabilities, "Razvoj i izdavanje vlastitih igara, AR i VR aplikacije.", "hr")
    assert "education" in _sectors(lexicon, a.asked)
    assert "ict" in _sectors(lexicon, a.seek_hits) and "ict" not in _sectors(lexicon, a.asked), a.asked


def test_a_list_of_short_aims_on_lines_stays_implicit(lexicon):
    a = analyse(lexicon, "", "- Rozwój eksportu\n- Zakup nowych maszyn CNC\n- Szkolenia pracowników", "pl")
    assert "metal" in _sectors(lexicon, a.seek_hits) and not a.asked, a.asked


@pytest.mark.parametrize(
    ("lang", "goals"), [("hr", "Širenje poslovanja na tržišta EU."), ("sr", "Ширење пословања на тржиште ЕУ.")]
)
def test_expansion_is_no_cheese(lexicon, lang, goals):
    """Macedonian "сирење" (cheese) folds to Serbo-Croatian "širenje" (expansion): phrases only."""
    assert not analyse(lexicon, "", goals, lang).seek_hits


def test_terse_goals_weigh_as_a_request_toward_the_sought_sector(lexicon):
    features = MatchEngine().features
    studio = "Produkcija reklama i dokumentaraca, snimanje dronom, kolor korekcija, Split."

    def sought_tourism(goals: str) -> float:
        vector = features.vectors(analyse(lexicon, studio, goals, "hr"), "HR")[0]
        return float(vector[features.block["seek_sector"]][features.sector_index["tourism"]])

    terse = sought_tourism("Hoteli, kampovi i turističke zajednice.")
    implicit = sought_tourism("Rast izvoza na tržišta EU. Hoteli, kampovi i turističke zajednice.")
    requested = sought_tourism("Tražimo hotele, kampove i turističke zajednice.")
    assert terse > 2 * implicit
    assert terse == pytest.approx(requested, rel=0.05)


def _org(org_id: str, cluster: str, country: str, lang: str, capabilities: str, goals: str = "") -> OrgProfile:
    return OrgProfile(
        id=org_id, name=org_id, cluster=cluster, country=country, language=lang, capabilities=capabilities, goals=goals
    )


SOFTWARE_HOUSE = "Software house z Krakowa: aplikacje webowe i mobilne, 40 programistów, Java i React."
NO_MORE_PEERS = (
    "Nie szukamy kolejnych software house'ów ani agencji IT. Szukamy hoteli i pensjonatów, które przetestują "
    "nasz system rezerwacji."
)
REFUSING_ORGS = [
    _org("soft-pl", "pl-ict", "PL", "pl", SOFTWARE_HOUSE, NO_MORE_PEERS),
    _org("soft-rs", "rs-ict", "RS", "sr", "Razvoj softvera po meri, web i mobilne aplikacije, 30 programera."),
    _org("soft-cz", "cz-ict", "CZ", "cs", "Vývoj softwaru na zakázku, webové a mobilní aplikace, 25 vývojářů."),
    _org("hotel-hr", "hr-tour", "HR", "hr", "Obiteljski hotel s 40 soba i restoranom u Poreču."),
    _org("hotel-sk", "sk-tour", "SK", "sk", "Horský hotel so 64 izbami a wellness v Tatrách."),
]


def test_a_negated_request_keeps_what_it_took_back(lexicon):
    from services.matcher.engine.analysis import from_wire, pack, to_wire, unpack

    a = analyse(lexicon, SOFTWARE_HOUSE, NO_MORE_PEERS, "pl")
    assert "ict" in _sectors(lexicon, a.refused), a.refused
    assert "tourism" in _sectors(lexicon, a.asked) and "tourism" not in _sectors(lexicon, a.refused)
    assert unpack(pack(a)) == a
    assert from_wire(to_wire([a])) == [a]
    assert not analyse(lexicon, SOFTWARE_HOUSE, "Szukamy hoteli i pensjonatów.", "pl").refused


def test_an_organisation_that_refuses_its_own_sector_gets_no_peers_first():
    """A software house that is not looking for more software houses but for hotels: the hotels
    come first; without the refusal counted, the other software houses did."""
    engine = MatchEngine()
    engine.fit(REFUSING_ORGS)
    assert {s.id for s in engine.top("soft-pl", 2)} == {"hotel-hr", "hotel-sk"}
    ignored = MatchEngine(settings=EngineSettings(refused_peer_damp=0.0))
    ignored.fit(REFUSING_ORGS)
    assert ignored.top("soft-pl", 1)[0].id.startswith("soft-")
    # what it does still meets the others' needs in full (the sector block); its likeness to
    # software houses (the shared block) is what it refused
    row = engine.row["soft-pl"]
    counted, not_counted = np.asarray(engine.index.right[row]).ravel(), np.asarray(ignored.index.right[row]).ravel()
    block, ict = engine.features.block, engine.features.sector_index["ict"]
    sector, shared = block["sector"], block["shared"]
    assert np.array_equal(counted[sector], not_counted[sector]) and counted[sector][ict] > 0.5
    assert counted[shared][ict] == 0.0 < not_counted[shared][ict]


def test_peers_of_another_kind_asked_for_by_the_sector_stay_wanted(lexicon):
    """A builder seeking "other builders for a consortium, not material suppliers": the negation takes back
    construction's suppliers, but the request names construction itself, so its peers stay."""
    features = MatchEngine().features
    builder = "Градежна фирма: санација на фасади и кровови, 80 вработени."
    goals = "Бараме други градежни фирми за заеднички конзорциум. Не бараме добавувачи на градежни материјали."
    a = analyse(lexicon, builder, goals, "mk")
    assert "construction" in _sectors(lexicon, a.refused), a.refused
    shared = features.block["shared"]
    counted = features.vectors(a, "MK")[0][shared]
    a.refused.clear()
    assert np.allclose(counted, features.vectors(a, "MK")[0][shared])


@pytest.mark.parametrize("partnering_weight", [0.3, 0.0])
def test_refusals_read_one_by_one_and_many_at_once_agree(lexicon, partnering_weight):
    """Also where a sector is named only by an aim of partnering, which at weight 0 asks nothing."""
    features = MatchEngine(settings=EngineSettings(partnering_weight=partnering_weight)).features
    builder = _org(
        "y", "y", "PL", "pl", "Firma budowlana.", "Współpraca z branżą budowlaną. Nie szukamy firm budowlanych."
    )
    analyses = [
        analyse(lexicon, o.capabilities, o.goals, o.language)
        for o in [*REFUSING_ORGS, _org("x", "x", "MK", "mk", "Градежна фирма.", "Не бараме добавувачи."), builder]
    ]
    assert "construction" in analyses[-1].refused and "construction" in analyses[-1].partnered
    countries = ["PL", "RS", "CZ", "HR", "SK", "MK", "PL"]
    assert analyses[0].refused and analyses[-1].refused
    one_by_one = np.vstack([features.vectors(a, c)[0] for a, c in zip(analyses, countries, strict=True)])
    assert np.allclose(features.vectors_many(analyses, countries), one_by_one, atol=1e-6)
    shared = features.block["shared"]
    assert one_by_one[0, shared][features.sector_index["ict"]] == 0.0


def test_a_request_for_what_an_aim_of_partnering_also_names_counts_in_full(lexicon):
    both = analyse(
        lexicon,
        "",
        "Cele:\n1. Współpraca z dostawcami pomp ciepła.\n2. Szukamy też dostawców pomp ciepła do nowej hali.",
        "pl",
    )
    assert "energy" in _sectors(lexicon, both.asked) and not _sectors(lexicon, both.partnered)


@pytest.mark.parametrize(
    ("lang", "capabilities"),
    [
        ("pl", "Nie brakuje nam doświadczenia w produkcji mebli tapicerowanych."),
        ("mk", "Не ни недостига искуство во производство на мебел."),
        ("uk", "Не бракує нам досвіду у виробництві меблів."),
        ("de", "Uns fehlt es nicht an Erfahrung in der Möbelfertigung."),
        ("ro", "Nu ne lipsește experiența în producția de mobilă."),
    ],
)
def test_lacking_nothing_in_the_capabilities_is_an_offer(lexicon, lang, capabilities):
    a = analyse(lexicon, capabilities, "", lang)
    assert "wood" in _sectors(lexicon, a.offer_hits) and not a.asked and not a.seek_hits


def test_what_the_organisation_has_before_what_it_lacks_stays_an_offer(lexicon):
    a = analyse(lexicon, "We have our own CNC machining shop, but we lack refrigerated transport.", "", "en")
    assert _sectors(lexicon, a.asked) == {"logistics"}
    assert "metal" in _sectors(lexicon, a.offer_hits)


@pytest.mark.parametrize(
    ("lang", "capabilities", "sector"),
    [
        ("sl", "Izdelujemo pohištvo po meri. Kupcem ni treba skrbeti za prevoz, dostavimo sami.", "wood"),
        ("ru", "Если вам нужен партнёр в области логистики и перевозок, мы к вашим услугам.", "logistics"),
    ],
)
def test_words_that_ask_elsewhere_say_what_the_capabilities_offer(lexicon, lang, capabilities, sector):
    a = analyse(lexicon, capabilities, "", lang)
    assert sector in _sectors(lexicon, a.offer_hits) and not a.asked


def test_an_offer_of_cooperation_in_the_goals_stays_an_offer(lexicon):
    a = analyse(lexicon, "", "We provide our members with export training and software development services.", "en")
    assert "ict" in _sectors(lexicon, a.offer_hits) and "ict" not in _sectors(lexicon, a.asked)


def test_a_negated_partner_is_no_need_though_named_after_cooperation_with(lexicon):
    a = analyse(lexicon, "", "We are not looking for cooperation with software companies, but with hotels.", "en")
    assert "tourism" in _sectors(lexicon, a.asked) and "ict" not in _sectors(lexicon, a.seek_hits)


def test_an_aim_of_cooperation_that_names_no_partner_does_not_make_the_other_aims_requests(lexicon):
    a = analyse(lexicon, "", "Az együttműködés erősítése. Bútoraink exportjának növelése Németországba.", "hu")
    assert "wood" not in _sectors(lexicon, a.asked)


def test_a_request_wrapped_over_two_lines_of_a_list_asks_for_both_lines(lexicon):
    a = analyse(lexicon, "", "Cele:\n- Szukamy partnerów\n  z branży transportowej i logistycznej.", "pl")
    assert "logistics" in _sectors(lexicon, a.asked)


@pytest.mark.parametrize(
    ("lang", "capabilities"),
    [
        ("bs", "Bavimo se CNC obradom i zavarivanjem. Naši najvažniji kupci su mljekare i vinarije."),
        (
            "ru",
            (
                "Выполняем токарную обработку на станках с ЧПУ и сварку. "
                "Нашими заказчиками являются молочные заводы и винодельни."
            ),
        ),
        ("cs", "Zajišťujeme CNC obrábění a svařování. Mezi naše zákazníky patří mlékárny a vinařství."),
        ("en", "We do CNC machining and welding. Our customers include dairies and wineries."),
        ("de", "Wir bieten CNC-Bearbeitung und Schweißen. Zu unseren Kunden zählen Molkereien und Weingüter."),
        ("hu", "CNC-megmunkálással és hegesztéssel foglalkozunk. Ügyfeleink között tejüzemek és borászatok vannak."),
    ],
)
def test_whom_the_capabilities_say_the_organisation_serves_is_not_what_it_offers(lexicon, lang, capabilities):
    a = analyse(lexicon, capabilities, "", lang)
    assert "metal" in _sectors(lexicon, a.offer_hits)
    assert "agrifood" not in _sectors(lexicon, a.offer_hits) and not a.seek_hits


@pytest.mark.parametrize(
    ("lang", "capabilities"),
    [
        # "for our customers" is no list of customers: the sentence says what the organisation does
        ("de", "Wir fertigen Möbel und Küchen für unsere Kunden."),
        ("en", "We make furniture and fitted kitchens for our customers."),
        # an offer before the customers: what it offers them
        ("en", "We offer furniture making and joinery, and our clients include hotels and offices."),
    ],
)
def test_what_the_organisation_does_for_its_customers_stays_an_offer(lexicon, lang, capabilities):
    assert "wood" in _sectors(lexicon, analyse(lexicon, capabilities, "", lang).offer_hits)


def test_customers_named_in_the_goals_are_needs_as_the_goals_are(lexicon):
    a = analyse(lexicon, "", "Our customers are hotels; we seek a partner in furniture making for them.", "en")
    assert "wood" in _sectors(lexicon, a.asked)


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("cs", "Tiskárna s ofsetovým a digitálním tiskem."),
        ("pl", "Drukarnia offsetowa i cyfrowa."),
        ("ru", "Типография: офсетная и цифровая печать."),
        ("de", "Druckerei für Etiketten und Verpackungen."),
        ("hu", "Nyomdánk ofszetnyomtatással foglalkozik."),
        ("sr-Cyrl", "Штампарија са офсет штампом."),
    ],
)
def test_a_printing_house_is_creative(lexicon, lang, text):
    a = analyse(lexicon, text, "", lang.split("-")[0])
    assert "creative" in _sectors(lexicon, a.offer_hits)


def test_an_architecture_studio_is_creative_and_structural_engineering_construction(lexicon):
    studio = analyse(lexicon, "Ateliér Prostor architekti: architektonické studie a návrhy rodinných domů.", "", "cs")
    engineers = analyse(lexicon, "Tragwerksplanung und Statik für Hallen und Brücken.", "", "de")
    assert "creative" in _sectors(lexicon, studio.offer_hits) and "construction" not in _sectors(
        lexicon, studio.offer_hits
    )
    assert "construction" in _sectors(lexicon, engineers.offer_hits)


def test_german_suchen_before_its_object_asks_where_an_und_left_the_wir_behind(lexicon):
    a = analyse(
        lexicon,
        "",
        "Wir spezialisieren uns auf Verpackungsdesign und suchen Partner aus der Lebensmittelbranche.",
        "de",
    )
    assert "agrifood" in _sectors(lexicon, a.asked)
    others = analyse(lexicon, "Wir beraten Unternehmen, die Partner aus der Lebensmittelbranche suchen.", "", "de")
    assert not others.asked


@pytest.mark.parametrize(
    ("lang", "asking", "telling", "sector"),
    [
        ("sr", "Потребно нам је да нам неко направи нову веб-страницу.", "Посетите нашу веб-страницу.", "ict"),
        ("sk", "Potrebujeme niekoho, kto nám spraví novú webstránku.", "Navštívte našu webstránku.", "ict"),
        (
            "pl",
            "Potrzebujemy profesjonalnych zdjęć naszych produktów.",
            "Zdjęcia naszych pokoi są na stronie.",
            "creative",
        ),
        (
            "sq",
            "Na duhet dikush që të na prodhojë kuzhinat dhe garderobat.",
            "Kuzhinat e hotelit janë të reja.",
            "wood",
        ),
    ],
)
def test_a_thing_asked_for_names_its_trade_where_the_same_words_elsewhere_say_nothing(
    lexicon, lang, asking, telling, sector
):
    assert sector in _sectors(lexicon, analyse(lexicon, "", asking, lang).asked)
    assert sector not in _sectors(lexicon, analyse(lexicon, telling, "", lang).offer_hits)


@pytest.mark.parametrize(
    ("lang", "goals", "sector"),
    [
        ("en", "Our aims: 1. Train boiler operators. 2. Find partners among farms and cooperatives.", "agrifood"),
        ("sr", "Циљеви: 1. Заједнички бренд. 2. Проналажење логистичких партнера – превозника.", "logistics"),
        ("bg", "Цели: 1. Обучение. 2. Намиране на партньори от химическата промишленост.", "chemistry"),
    ],
)
def test_an_aim_of_finding_partners_asks_for_them(lexicon, lang, goals, sector):
    a = analyse(lexicon, "", goals, lang)
    assert sector in _sectors(lexicon, a.asked) and sector not in _sectors(lexicon, a.partnered)


def test_finding_partners_as_a_service_of_the_capabilities_is_no_need(lexicon):
    a = analyse(lexicon, "Pomagamy firmom w znalezieniu partnerów z branży logistycznej.", "", "pl")
    assert not a.asked


def test_a_request_in_one_item_of_a_marked_list_asks_for_that_item_only(lexicon):
    goals = (
        "Obiectivele clusterului:\n1. formarea de muncitori și atragerea tinerilor în construcții;\n"
        "2. nu căutăm alți constructori – avem nevoie de firme IT care să implementeze BIM;\n"
        "3. promovarea comună la târguri."
    )
    a = analyse(lexicon, "", goals, "ro")
    assert "ict" in a.asked and "construction" in a.seek_hits  # the first aim: a need, not asked
    assert "construction" not in a.asked and "coop.trade_fairs" not in a.asked
    # a header that asks asks for every item, marked or not
    listed = analyse(lexicon, "", "Szukamy:\n- firm transportowych,\n- drukarni.", "pl")
    assert {"logistics", "creative"} <= _sectors(lexicon, listed.asked)


def test_macedonian_ni_treba_with_an_adjective_asks_and_slovene_ni_treba_does_not(lexicon):
    asks = analyse(lexicon, "", "Ни треба сигурен добавувач на стаклени тегли со капаци.", "mk")
    assert "chemistry" in _sectors(lexicon, asks.asked)
    slovene = analyse(lexicon, "Ni treba novih naložb v steklarno, imamo dovolj stekla.", "", "sl")
    assert not slovene.asked


@pytest.mark.parametrize(
    ("lang", "capabilities", "sector"),
    [
        # customers as the subject of what the organisation does for them: its offers
        ("pl", "Nasi klienci otrzymują kompleksową obsługę w zakresie transportu i logistyki.", "logistics"),
        ("de", "Durch die Nähe zu unseren Kunden bieten wir schnelle CNC-Bearbeitung und Schweißarbeiten.", "metal"),
        # what follows "we make" after the customers named is offered again
        ("en", "Our customers include dairies and wineries, for which we offer CNC machining and welding.", "metal"),
    ],
)
def test_what_the_organisation_does_for_customers_it_names_is_still_offered(lexicon, lang, capabilities, sector):
    assert sector in _sectors(lexicon, analyse(lexicon, capabilities, "", lang).offer_hits)


def test_a_question_to_the_reader_in_german_is_no_request(lexicon):
    a = analyse(lexicon, "Sie suchen einen zuverlässigen Partner für CNC-Bearbeitung? Dann sind Sie richtig.", "", "de")
    assert not a.asked and "metal" in _sectors(lexicon, a.offer_hits)


def test_helping_members_find_partners_after_we_offer_is_an_offer(lexicon):
    a = analyse(lexicon, "", "We offer our members export consulting and help them find partners in Serbia.", "en")
    assert not a.asked and not a.wishes


@pytest.mark.parametrize(
    ("lang", "text", "asked", "offered"),
    [
        (
            "en",
            "Our services:\n- CNC machining and welding. We are looking for a partner in logistics.\n- software",
            "logistics",
            "metal",
        ),
        (
            "pl",
            "- Szukamy partnerów z branży\n  transportowej i logistycznej\n- Produkujemy meble",
            "logistics",
            "wood",
        ),
        (
            "ru",
            "Наши услуги:\nа) производство мебели\nб) ищем партнеров в логистике\nв) сварка металла",
            "logistics",
            "wood",
        ),
    ],
)
def test_a_list_is_read_sentence_by_sentence_and_a_wrapped_line_continues_its_sentence(
    lexicon, lang, text, asked, offered
):
    a = analyse(lexicon, text, "", lang)
    assert _sectors(lexicon, a.asked) == {asked} and offered in _sectors(lexicon, a.offer_hits)


@pytest.mark.parametrize(
    ("lang", "text", "sector"),
    [
        ("en", "We organise the annual cyber security summit for SMEs.", "wood"),
        ("en", "We manufacture architectural glass for facades.", "creative"),
        ("pl", "Produkujemy beton architektoniczny i kostkę brukową.", "creative"),
    ],
)
def test_words_of_other_trades_do_not_name_these_sectors(lexicon, lang, text, sector):
    assert sector not in _sectors(lexicon, analyse(lexicon, text, "", lang).offer_hits)


def test_an_asked_form_inside_the_concepts_own_phrase_counts_once(lexicon):
    a = analyse(lexicon, "", "Căutăm parteneri pentru transport rutier de marfă.", "ro")
    assert "transport" not in a.seek_hits.get("logistics.road_transport", [])


# Vocational schools name the trades they teach; one of them seeks hotels for its pupils' practice.
# Texts in Serbian, Croatian, Slovenian and Polish.
SCHOOLS_AND_HOTELS = [
    P(
        "school",
        "Ugostiteljsko-turistička škola Vrnjačka Banja",
        "rs-edu",
        "RS",
        "Školujemo kuvare, konobare, poslastičare i hotelijersko-restoraterske tehničare, oko 480 učenika.",
        "Tražimo hotele i restorane koji bi primili naše učenike na praksu i dualno obrazovanje tokom sezone.",
        "sr",
    ),
    P(
        "school-hr",
        "Turističko-ugostiteljska škola Split",
        "hr-edu",
        "HR",
        "Srednja škola koja obrazuje kuhare, konobare i hotelijersko-turističke tehničare; 520 učenika.",
        "Razmjena učenika i nastavnika s partnerskim školama u programu Erasmus+.",
        "hr",
    ),
    P(
        "school-si",
        "Srednja šola za gostinstvo in turizem Celje",
        "si-edu",
        "SI",
        "Izobražujemo kuharje, natakarje in hotelske tehnike, 390 dijakov, šolska restavracija.",
        "Iščemo partnerske šole za izmenjave dijakov.",
        "sl",
    ),
    P(
        "hotel-hr",
        "Hotel Adriatic",
        "hr-tourism",
        "HR",
        "Hotel s 210 soba, dva restorana, wellness i kongresna dvorana na obali.",
        "Proširenje ponude za goste iz Njemačke i Austrije.",
        "hr",
    ),
    P(
        "hotel-pl",
        "Hotel Górski",
        "pl-tourism",
        "PL",
        "Hotel w Zakopanem: 140 pokoi, restauracja regionalna, spa i sale konferencyjne.",
        "Rozwój oferty dla gości zagranicznych.",
        "pl",
    ),
]


def test_a_school_that_teaches_a_trade_and_seeks_its_firms_gets_them_before_other_schools_of_it():
    """A school's trades are what it teaches: its request for hotels asks for hotels (not for
    schooling, which "our pupils" and "dual education" name), and the schools teaching the same
    trade are no hotels to it. They stay alike to it (likeness keeps the trades), so the nearest
    one, in a language of its own family, may still come first."""
    engine = _engine(SCHOOLS_AND_HOTELS)
    features, blocks = engine.features, engine.features.block
    vector, _ = features.vectors(engine.analyses[engine.row["school"]], "RS")
    sought = dict(zip(features.sectors, vector[blocks["seek_sector"]].tolist(), strict=True))
    assert sought["tourism"] > sought["education"], sought

    def ranks(e: MatchEngine) -> dict[str, int]:
        return {s.id: i for i, s in enumerate(e.top("school", 4))}

    taught, untaught = ranks(engine), ranks(_engine(SCHOOLS_AND_HOTELS, taught_weight=1.0))
    assert max(taught["hotel-hr"], taught["hotel-pl"]) < taught["school-si"], taught
    assert min(untaught["hotel-hr"], untaught["hotel-pl"]) > untaught["school-si"], untaught  # what it fixes


def test_a_teaching_organisations_vector_is_the_same_made_alone_or_with_many():
    """vectors() (an upsert) and vectors_many() (a fit) count the taught trades alike."""
    engine = _engine(SCHOOLS_AND_HOTELS)
    features = engine.features
    analyses = [engine.analyses[engine.row[p.id]] for p in SCHOOLS_AND_HOTELS]
    countries = [p.country for p in SCHOOLS_AND_HOTELS]
    many = features.vectors_many(analyses, countries)
    one_by_one = np.vstack([features.vectors(a, c)[0] for a, c in zip(analyses, countries, strict=True)])
    assert np.allclose(many, one_by_one, atol=1e-6)
    education = features.sectors.index("education")
    own = many[:, features.block["sector"]]
    assert (own[:3, education] >= engine.settings.teaching_share).all()  # the three schools teach
    alike = many[:, features.block["shared"]]
    assert (own[:3, education] > alike[:3, education] / np.linalg.norm(alike[:3], axis=1)).all()


# Common trades as members write them. A walk through each sector's trades, NACE-style (session
# 28), found many without forms in most languages (a brewery, a coffee roastery, locks and hinges,
# an optician, demolition, removals, taxis, tutoring, an internet provider, murals, wool washing;
# then bottling, hats, socks, coffins, trailers, lifts, candles, psychotherapy, chimneys, gas
# networks, ferries, congresses, diving, youth work, video surveillance);
# the rows hold those and a few forms that were there before (Hungarian "kárpitos", Bosnian
# "keramičar", Croatian "kamp", "saddlery").
TRADES = [
    ("pl", "Rodzinny browar rzemieślniczy spod Tarnowa.", "agrifood"),
    ("cs", "Jsme malá palírna? Ne, pražírna kávy v Brně: pražíme výběrovou kávu.", "agrifood"),
    ("de", "Familienbetrieb mit eigener Nudelherstellung seit 1958.", "agrifood"),
    ("ru", "Сахарный завод в Липецкой области, переработка свёклы.", "agrifood"),
    ("hu", "Kárpitos műhely, újrakárpitozás.", "wood"),
    ("sk", "Ručne štiepané šindle na strechy kostolov.", "wood"),
    ("sr", "Производња брава за врата и сигурносних брава.", "metal"),
    ("en", "Compression springs and leaf springs made to order.", "metal"),
    ("hr", "Optičarska radnja: naočale s dioptrijom i kontaktne leće, pregled vida.", "health"),
    ("ro", "Executăm demolări și dezafectări de hale.", "construction"),
    ("de", "Gerüstbau und Gerüstverleih.", "construction"),
    ("bs", "Keramičar sa 15 godina iskustva: polaganje pločica i parketa.", "construction"),
    ("uk", "Буріння свердловин на воду для приватних будинків і ферм.", "construction"),
    ("mk", "Селидби на станови и канцеларии низ цела Македонија.", "logistics"),
    ("bg", "Такси услуги в Пловдив, 40 автомобила.", "logistics"),
    ("hr", "Obiteljski kamp s 80 parcela za šatore i kampere na Krku.", "tourism"),
    ("de", "Wir gestalten Murals und Street-Art an Fassaden.", "creative"),
    ("pl", "Malujemy szyldy i liternictwo na witrynach sklepów.", "creative"),
    ("sq", "Ofrojmë mësime private dhe përgatitje për maturën shtetërore.", "education"),
    ("en", "Computer repair and laptop servicing for small offices.", "ict"),
    ("cs", "Jsme poskytovatel internetu: optika do domácností v 30 obcích.", "ict"),
    ("uk", "Миємо та чешемо овечу вовну, валяємо повсть.", "textiles"),
    ("en", "Saddlery workshop: handmade saddles and harness for riding stables.", "textiles"),
    ("cs", "Stáčírna minerální vody a limonád.", "agrifood"),
    ("de", "Hutmacherei in dritter Generation: Filzhüte und Trachtenhüte.", "textiles"),
    ("hr", "Tvornica čarapa iz Varaždina.", "textiles"),
    ("ro", "Atelier de sicrie și articole funerare.", "wood"),
    ("pl", "Produkujemy naczepy i przyczepy ciężarowe.", "metal"),
    ("en", "We design and install passenger lifts and escalators.", "metal"),
    ("ru", "Мастерская по изготовлению свечей ручной работы.", "chemistry"),
    ("hu", "Pszichoterápiás magánrendelés felnőtteknek.", "health"),
    ("de", "Schornsteinbau und Schornsteinfeger.", "construction"),
    ("mk", "Дистрибуција на природен гас за домаќинства.", "energy"),
    ("bg", "Фериботна линия Видин - Калафат.", "logistics"),
    ("de", "Wir organisieren Kongresse und Incentive-Reisen.", "tourism"),
    ("en", "PADI diving centre with boat trips.", "tourism"),
    ("sk", "Centrum pre mládež a skautský oddiel.", "education"),
    ("ro", "Instalăm sisteme de supraveghere video și control acces.", "ict"),
]


@pytest.mark.parametrize(("lang", "text", "sector"), TRADES)
def test_common_trades_name_their_sector(lexicon, lang, text, sector):
    a = analyse(lexicon, text, "", lang)
    assert sector in _sectors(lexicon, a.offer_hits), a.offer_hits


@pytest.mark.parametrize(
    ("lang", "text", "sector"),
    [
        ("cs", "Vyrábíme ocelová lana a lanové dráhy.", "textiles"),  # steel wire ropes are metal
        ("en", "We build marinas, piers and breakwaters.", "tourism"),  # a marina builder builds
        ("sr", "Bravo za naš tim! Plutajuće kuće na Savi.", "metal"),  # no "brava" (lock) in "Bravo"
        ("en", "A spa hotel on hot springs with 120 rooms.", "metal"),  # springs of water, not of steel
        ("pl", "Wypożyczalnia rowerów i spływy kajakowe.", "metal"),  # bikes hired, not made
        ("de", "Ein Hotel mit Bier aus der Region auf der Karte.", "agrifood"),  # beer served, not brewed
        ("cs", "Hotel s restaurací a regionální piva.", "agrifood"),
        ("pl", "Produkujemy liny stalowe.", "textiles"),
        ("en", "We make steel wire ropes.", "textiles"),
        ("sr", "Škola ima psihologa i pedagoga.", "health"),  # a school's psychologist
        ("sr", "Nudimo dvosedmičnu praksu.", "wood"),  # "two-week", not a two-seater sofa
        ("hr", "Zapošljavamo vozače C kategorije.", "logistics"),  # a job ad, not a haulier
        ("de", "Alle Zimmer mit Parkettboden.", "construction"),
        ("en", "Suites with sofas and armchairs.", "wood"),
        ("en", "A vocational college in Cork.", "wood"),
        ("ru", "Спектакли на подмостках старого театра.", "construction"),  # a stage, not scaffolding
        ("en", "Teacher training on scaffolding.", "construction"),
        ("pl", "Rozlewnia gazu płynnego.", "agrifood"),  # gas bottling
        ("ru", "Посуточная аренда автомобилей.", "tourism"),  # cars by the day
        ("mk", "Училиште Кузман Шапкарев.", "textiles"),  # a surname
    ],
)
def test_words_these_trades_share_with_others_do_not_name_them(lexicon, lang, text, sector):
    a = analyse(lexicon, text, "", lang)
    assert sector not in _sectors(lexicon, a.offer_hits), a.offer_hits
