"""Language detection on texts written the way clusters write: the dev set's profiles (396) in 16
languages. Serbian, Croatian and Bosnian count as one (the same lemmas and stop words)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from partnermatch.languages import PROFILE_LANGUAGES, detect_language

DEVSET = Path(__file__).resolve().parents[1] / "data" / "devset"
SAME = {"sr": "hbs", "hr": "hbs", "bs": "hbs"}


def test_every_dev_set_profile_is_detected_in_its_language():
    orgs = [
        json.loads(line)
        for path in sorted(DEVSET.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len({o["language"] for o in orgs}) == len(PROFILE_LANGUAGES)
    wrong = [
        (o["id"], o["language"], got)
        for o in orgs
        if SAME.get(got := detect_language(f"{o['capabilities']}\n{o['goals']}", country=o["country"]), got)
        != SAME.get(o["language"], o["language"])
    ]
    assert wrong == []


def test_a_close_call_between_czech_and_slovak_is_settled_by_the_country():
    text = "Navrh, montaz a servis fotovoltaickych elektraren pro domacnosti a firmy, bateriova uloziste."
    assert {detect_language(text, country="CZ"), detect_language(text, country="SK")} == {"cs", "sk"}
    assert detect_language(text, country="CZ") == "cs" and detect_language(text, country="SK") == "sk"
    # not where the text says clearly which it is
    assert detect_language("Hľadáme partnerov pre spoluprácu v oblasti dreva a nábytku.", country="CZ") == "sk"
    assert detect_language("Hledáme partnery pro spolupráci v oblasti dřeva a nábytku.", country="SK") == "cs"


def test_too_little_text_gives_the_default():
    assert detect_language("", default="pl") == "pl"
    assert detect_language("12 345 — 2026", default="de") == "de"


def test_three_letters_anywhere_in_what_detection_reads_are_judged_and_two_are_not():
    assert detect_language("a1 — 2026 b", default="und") == "und"
    assert detect_language("x" + " 1" * 290 + "yz", default="und") in PROFILE_LANGUAGES  # 583 characters
    assert detect_language("x" + " 1" * 300 + "yz", default="und") == "und"  # the third beyond 600


def test_the_kept_copy_of_the_model_detects_as_the_shipped_one(tmp_path, monkeypatch, caplog):
    from partnermatch import cachefile, languages

    texts = [
        f"{o['capabilities']}\n{o['goals']}"
        for path in sorted(DEVSET.glob("*.jsonl"))
        for o in map(json.loads, path.read_text(encoding="utf-8").splitlines()[:20])
    ]
    monkeypatch.setattr(languages, "_identifier", None)
    monkeypatch.setattr(cachefile, "_folder", None)
    shipped = [languages._get_identifier().rank(t[:600])[:3] for t in texts]

    cachefile.use_folder(tmp_path)
    monkeypatch.setattr(languages, "_identifier", None)
    languages.preload_model()  # decodes and writes the copy
    (copy,) = tmp_path.glob("py3langid-*.pickle")
    assert copy.stat().st_mode & 0o444 == 0o444  # readable by whoever runs the service
    monkeypatch.setattr(languages, "_identifier", None)
    with monkeypatch.context() as m:
        m.setattr(languages, "_decoded_identifier", lambda: pytest.fail("decoded although a copy is kept"))
        assert [languages._get_identifier().rank(t[:600])[:3] for t in texts] == shipped  # read from the copy

    copy.write_bytes(b"not a pickle")  # a damaged copy is decoded and written again
    monkeypatch.setattr(languages, "_identifier", None)
    with caplog.at_level("WARNING"):
        assert [languages._get_identifier().rank(t[:600])[:3] for t in texts] == shipped
    assert "unreadable" in caplog.text
    monkeypatch.setattr(languages, "_identifier", None)
    assert [languages._get_identifier().rank(t[:600])[:3] for t in texts] == shipped
    assert copy.stat().st_size > 1_000_000


def test_the_detector_ranks_every_language_with_py3langids_own_scores():
    import random

    from partnermatch import languages

    rng = random.Random(7)
    texts = [
        f"{o['capabilities']}\n{o['goals']}"
        for path in sorted(DEVSET.glob("*.jsonl"))
        for o in map(json.loads, path.read_text(encoding="utf-8").splitlines())
    ]
    alphabet = [chr(c) for c in range(32, 0x530)] + list("ąćęłńóśźżčšžđćăâîșțëçüöäßőű—–“”„«» \n\t")
    odd = ["", "a", "ab", "abcde", "ABCDEF GHI", "ŠTO JE OVO", "Ω", "12 345", "ǅ ǈ ǋ", "e\u0301te\u0301"]
    odd += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 80))) for _ in range(500)]
    shipped = languages._py3langid_identifier()
    detector = languages.Detector(shipped)
    assert detector.window == 6  # the trie's depth: a state is found from the last six bytes
    for text in texts + odd:
        for sample in (text[:300], text[:600], text[:5]):
            assert detector.rank(sample) == shipped.rank(sample), sample


def test_texts_alike_as_far_as_detection_reads_are_detected_alike():
    from partnermatch.languages import DETECTION_CHARS, same_detection

    polish = "Firma zajmuje się tworzeniem oprogramowania dla przemysłu i szkoleniami. " * 9
    assert len(polish) > DETECTION_CHARS
    english_after = polish + "\nWe seek partners in food processing in Serbia and Albania. " * 20
    assert same_detection(polish, english_after)
    assert detect_language(polish) == detect_language(english_after) == "pl"
    assert not same_detection("Szukamy partnerów.", "We seek partners.")


def test_a_serbian_cyrillic_page_names_serbian_profiles_in_cyrillic():
    from partnermatch.languages import NATIVE_NAMES, native_names

    assert native_names("sr-Cyrl")["sr"] == "српски" and native_names("sr")["sr"] == "srpski"
    assert native_names("pl") == NATIVE_NAMES and native_names("sr-Cyrl")["pl"] == "polski"


def test_serbian_croatian_or_bosnian_is_settled_by_the_organisations_country():
    """QA: a Serbian firm's Latin text was detected as Bosnian, and a coordinator's queue filtered
    by Serbian missed it. The three read alike; the country says which."""
    text = "Razvijamo softverska rešenja za mlekare i sledljivost hrane, sa timom od dvadeset inženjera."
    assert SAME.get(detect_language(text), "?") == "hbs"
    assert detect_language(text, country="RS") == "sr"
    assert detect_language(text, country="HR") == "hr"
    assert detect_language(text, country="BA") == "bs"
    assert detect_language("Wir entwickeln Software für Molkereien.", country="RS") == "de", "only among the three"
    cyrillic = "Развијамо софтверска решења за млекаре и следљивост хране, са тимом од двадесет инжењера."
    assert detect_language(cyrillic, country="BA") == detect_language(cyrillic) == "sr", "Cyrillic: Serbian"
    orgs = [
        json.loads(line)
        for path in sorted(DEVSET.parent.glob("*/*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["language"] in SAME
    ]
    right = [
        o for o in orgs if detect_language(f"{o['capabilities']}\n{o['goals']}", country=o["country"]) == o["language"]
    ]
    assert len(right) >= 0.95 * len(orgs), (len(right), len(orgs))
