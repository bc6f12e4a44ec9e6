"""`partnermatch lemmas`: build the lemma index from simplemma's dictionaries, keep decoded copies of
the language detection model and of the compiled lexicon beside it, and compile the batch's
candidate product, now (once per installation), so no `partnermatch match` or matcher start pays
for them."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from partnermatch.logs import configure_logging


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lemmas",
        help="build the lemma index for every language and compile the batch's product (once per installation)",
        description="Decode simplemma's dictionary of every supported language into the lemma index "
        "under PARTNERMATCH_LEMMA_INDEX (languages already built are only opened), keep "
        "copies of the decoded language detection model and of the compiled lexicon "
        "there, and compile the batch's candidate product into numba's cache.",
    )
    parser.set_defaults(func=run)


def build(folder: str, report: Callable[[str, float], None]) -> None:
    """Build, or open where already built, everything kept under `folder`, and compile the batch's
    product and the event path's loops: report(what, seconds) after each step."""
    from partnermatch.languages import preload_model
    from services.matcher.engine.lexicon import load_lexicon
    from services.matcher.engine.text import preload_lemmatizers, use_lemma_index
    from services.matcher.engine.topn import event_kernels, kernel

    use_lemma_index(folder)  # the folder of the lemma index and of the kept copies below
    started = time.monotonic()
    for code, seconds in preload_lemmatizers().items():
        report(f"lemmas ({code})", seconds)
    report(f"lemma index in {folder}", time.monotonic() - started)
    for what, step in (
        ("language model copy", preload_model),
        ("compiled lexicon", load_lexicon),
        ("candidate product (numba)", kernel),
        ("event path loops (numba)", event_kernels),
    ):
        started = time.monotonic()
        step()
        report(what, time.monotonic() - started)


def run(args: argparse.Namespace) -> int:
    from services.matcher.batch import LEMMA_INDEX

    configure_logging(os.environ)
    folder = str(LEMMA_INDEX.read(os.environ))  # never empty: empty means the default
    build(folder, lambda what, seconds: print(f"{what}: ready ({seconds:.1f} s)", file=sys.stderr))
    return 0
