"""The one Reason value (partnermatch.reasons): the wire format, the sides, how it reads."""

import ast
import json
from pathlib import Path

import pytest

from partnermatch import vocabulary
from partnermatch.reasons import OWN_OFFERS, PARTNER_OFFERS, REJECTION_LABELS, REJECTION_REASONS, SHARED, Reason

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "contract" / "golden"


def golden_reasons() -> list[dict]:
    found = []
    for path in sorted(GOLDEN.glob("*.json")):
        found.extend(json.loads(path.read_text(encoding="utf-8"))["payload"].get("reasons", []))
    return found


def test_the_golden_events_hold_reasons():
    assert golden_reasons()


@pytest.mark.parametrize("wire", golden_reasons())
def test_a_reason_goes_back_on_the_wire_as_it_came(wire):
    assert Reason.from_dict(wire).to_dict() == wire
    assert json.dumps(Reason.from_dict(wire).to_dict(), sort_keys=True) == json.dumps(wire, sort_keys=True)


@pytest.mark.parametrize("wire", golden_reasons())
def test_seen_from_the_other_side_twice_is_the_reason_itself(wire):
    reason = Reason.from_dict(wire)
    assert reason.seen_from("b").seen_from("b") == reason
    assert reason.seen_from("a") == reason
    assert reason.flipped().flipped() == reason


def test_seen_from_b_swaps_offers_and_seeks_and_the_words():
    reason = Reason.from_dict(
        {
            "concept": "ict.software",
            "kind": "activity",
            "direction": "a_offers_b_seeks",
            "weight": 0.4,
            "terms_a": ["oprogramowania"],
            "terms_b": ["softvera"],
        }
    )
    from_b = reason.seen_from("b")
    assert from_b.to_dict() == {
        "concept": "ict.software",
        "kind": "activity",
        "direction": "b_offers_a_seeks",
        "weight": 0.4,
        "terms_a": ["softvera"],
        "terms_b": ["oprogramowania"],
    }
    assert (reason.side, from_b.side) == (OWN_OFFERS, PARTNER_OFFERS)
    shared = Reason(concept="coop.rd", kind="cooperation", direction=SHARED, terms_a=("x",), terms_b=("y",))
    assert shared.seen_from("b").direction == SHARED and shared.seen_from("b").side == SHARED
    with pytest.raises(ValueError):
        reason.seen_from("c")


def test_keys_the_wire_adds_are_kept():
    wire = {
        "concept": None,
        "kind": "term",
        "direction": "shared",
        "weight": 1,
        "terms_a": [],
        "terms_b": [],
        "note": "kept",
    }
    assert Reason.from_dict(wire).seen_from("b").to_dict() == wire


def test_a_reason_reads_with_the_concepts_label_in_the_readers_language():
    reason = Reason(
        concept="agrifood",
        kind="sector",
        direction="a_offers_b_seeks",
        weight=0.5,
        terms_a=("rolnictwo",),
        terms_b=("poljoprivreda",),
    )
    labels = vocabulary.concept_labels
    # the name the reader reads first, then the organisations' own words
    assert reason.render("pl", labels) == "rolnictwo i przetwórstwo spożywcze (rolnictwo ↔ poljoprivreda)"
    assert reason.render("sr-Cyrl", labels) == "пољопривреда и прехрамбена индустрија (rolnictwo ↔ poljoprivreda)"
    assert Reason(concept="agrifood", terms_a=("Farm",), terms_b=("farm",)).render("en", labels) == (
        "agriculture and food processing (Farm)"
    )
    # a country one side seeks and the other is in: partners from the country (what is sought, not
    # a thing offered), then the seeker's word for it
    country = Reason(concept="country.RS", kind="country", direction="b_offers_a_seeks", terms_a=("Serbii",))
    assert country.render("en", labels) == "partners from Serbia (Serbii)"
    assert Reason(concept="country.RS", kind="country", terms_a=("Serbia",)).render("en", labels) == (
        "partners from Serbia"
    )
    # a country by its short name, though its label adds the official one ("Dania (Królestwo Danii)")
    assert Reason(concept="country.DK", kind="country", terms_a=("Danii",)).render("pl", labels) == (
        "partnerzy z kraju: Dania (Danii)"
    )
    assert country.render("sr-Cyrl", labels).startswith("партнери из земље: ")
    # an unknown concept: the organisations' words only, as written, whatever the reader's script
    assert (
        Reason(concept="no.such", terms_a=("rolnictwo",), terms_b=("poljoprivreda",)).render("sr-Cyrl", labels)
        == "rolnictwo ↔ poljoprivreda"
    )


def test_a_need_met_reads_as_who_seeks_what_from_whom():
    reason = Reason(
        concept="agrifood",
        kind="sector",
        direction="b_offers_a_seeks",
        weight=0.5,
        terms_a=("rolnictwo",),
        terms_b=("poljoprivreda",),
    )
    seeker, provider, need = reason.as_need()
    assert (seeker, provider) == ("own", "partner")
    assert need.render_need("en", "Mleczarnia", "Voćar", vocabulary.concept_labels) == (
        "Mleczarnia seeks agriculture and food processing — Voćar offers it (rolnictwo ↔ poljoprivreda)"
    )
    seeker, provider, need = reason.flipped().as_need()
    assert (seeker, provider, need.terms_a) == ("partner", "own", ("rolnictwo",))  # the seeker's words
    assert need.render_need("sr-Cyrl", "А", "Б", vocabulary.concept_labels).startswith("А тражи: ")
    with pytest.raises(ValueError):
        Reason(direction=SHARED).as_need()


def test_rejection_reasons_each_have_a_label():
    assert REJECTION_REASONS == ("not_relevant", "already_partners", "different_markets", "no_capacity", "other")
    assert set(REJECTION_LABELS) == set(REJECTION_REASONS)


def test_the_notifier_imports_nothing_of_the_matcher():
    """The notifier reads events; what it needs of a reason is in the shared package."""
    offending = []
    for path in sorted((ROOT / "services" / "notifier").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("import_module", "__import__")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names = [str(node.args[0].value)]
            else:
                continue
            offending += [
                f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                for name in names
                if name == "services.matcher" or name.startswith("services.matcher.")
            ]
    assert offending == []


def test_a_sides_words_leave_out_those_another_of_its_terms_holds_and_repeats():
    """What the QA pass read on a card: "(делове за аутомобилску, аутомобилску, аутомобилску
    индустрију ↔ …)". A term standing whole inside another of the same side is said once."""
    labels = vocabulary.concept_labels
    reason = Reason(
        concept="agrifood",
        terms_a=("прехрамбене", "прехрамбене индустрије", "Прехрамбене"),
        terms_b=("делове за аутомобилску", "аутомобилску", "аутомобилску индустрију", "auto"),
    )
    line = reason.render("sr-Cyrl", labels)
    assert line.endswith("(прехрамбене индустрије ↔ делове за аутомобилску, аутомобилску индустрију, auto)")
    # a word inside another word is not a term inside a term
    assert Reason(terms_a=("auto", "automotive")).render("en", labels) == "auto, automotive"


def test_every_reader_language_writes_a_country_met_in_its_own_words():
    from partnermatch.languages import READER_LANGUAGES

    country = Reason(concept="country.PL", kind="country", direction="b_offers_a_seeks", terms_a=())
    lines = {lang: country.render(lang, vocabulary.concept_labels) for lang in READER_LANGUAGES}
    assert all(line != lines["en"] for lang, line in lines.items() if lang != "en"), lines
    assert lines["en"] == "partners from Poland"
