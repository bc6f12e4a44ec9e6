"""Settings are read when used, not when a module is imported (issue 15 item 5): a process (or a
test) that sets PARTNERMATCH_LEMMA_INDEX after importing the shared package and the engine's text
module gets that folder for the lemma index and the cached files. Run in a fresh interpreter, so no
other test has opened them before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROGRAM = """
import json, os, sys
from partnermatch import cachefile
from services.matcher.engine import text
os.environ["PARTNERMATCH_LEMMA_INDEX"] = sys.argv[1]
print(json.dumps({"cached": str(cachefile.folder()), "lemmas": str(text._lemma_index().folder)}))
"""


def test_the_lemma_folder_is_read_at_first_use_not_at_import(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PARTNERMATCH_LEMMA_INDEX"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", _PROGRAM, str(tmp_path)], env=env, capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert Path(found["cached"]) == tmp_path
    assert Path(found["lemmas"]).parent == tmp_path
