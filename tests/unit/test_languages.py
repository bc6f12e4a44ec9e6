"""Language detection on texts written the way clusters write: the dev set's 204 profiles in 16
languages. Serbian, Croatian and Bosnian count as one (the same lemmas and stop words)."""

from __future__ import annotations

import json
from pathlib import Path

from partnermatch.languages import PROFILE_LANGUAGES, detect_language

DEVSET = Path(__file__).resolve().parents[1] / "data" / "devset"
SAME = {"sr": "hbs", "hr": "hbs", "bs": "hbs"}


def test_every_dev_set_profile_is_detected_in_its_language():
    orgs = [json.loads(line) for path in sorted(DEVSET.glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len({o["language"] for o in orgs}) == len(PROFILE_LANGUAGES)
    wrong = [(o["id"], o["language"], got) for o in orgs
             if SAME.get(got := detect_language(f"{o['capabilities']}\n{o['goals']}"), got)
             != SAME.get(o["language"], o["language"])]
    assert wrong == []


def test_too_little_text_gives_the_default():
    assert detect_language("", default="pl") == "pl"
    assert detect_language("12 345 — 2026", default="de") == "de"
