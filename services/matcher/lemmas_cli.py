"""`partnermatch lemmas`: build the lemma index from simplemma's dictionaries, keep a decoded copy of
the language detection model beside it and compile the batch's candidate product now (once per
installation), so the first `partnermatch match` or matcher start does not pay for them."""

from __future__ import annotations

import argparse
import os
import sys
import time

from partnermatch.logs import configure_logging


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lemmas", help="build the lemma index for every language and compile the batch's product "
                       "(once per installation)",
        description="Decode simplemma's dictionary of every supported language into the lemma index "
                    "under PARTNERMATCH_LEMMA_INDEX (languages already built are only opened), keep a "
                    "decoded copy of the language detection model there, and compile the batch's "
                    "candidate product into numba's cache.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from partnermatch.languages import preload_model, use_model_cache
    from services.matcher.batch import LEMMA_INDEX
    from services.matcher.engine.lemmas import LemmaIndex
    from services.matcher.engine.topn import kernel

    configure_logging(os.environ)
    folder = LEMMA_INDEX.read(os.environ)
    if not folder:
        print("partnermatch lemmas: PARTNERMATCH_LEMMA_INDEX is empty; nothing to build", file=sys.stderr)
        return 2
    index = LemmaIndex(folder)
    started = time.monotonic()
    for code, seconds in index.build_all().items():
        print(f"{code:4} {seconds:6.2f} s", file=sys.stderr)
    print(f"lemma index ready in {index.folder} ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    started = time.monotonic()
    use_model_cache(folder)
    preload_model()
    print(f"language model copy ready ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    started = time.monotonic()
    kernel()
    print(f"candidate product compiled ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    return 0
