"""`partnermatch match`: batch matching of a JSON-lines file of organisations (the contract the
evaluation uses). Reads and writes files; the matching itself is the pure engine."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import multiprocessing as mp
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from partnermatch import vocabulary
from partnermatch.cachefile import DEFAULT_FOLDER
from partnermatch.logs import configure_logging
from partnermatch.settings import setting

logger = logging.getLogger(__name__)
TEXT_FIELDS = ("name", "cluster", "country", "language", "capabilities", "goals")
NEED_FIELDS = ("offers", "seeks", "seeks_countries")  # optional lists of lexicon ids / ISO codes
LEMMA_INDEX = setting(
    "PARTNERMATCH_LEMMA_INDEX",
    DEFAULT_FOLDER,
    "Folder for what the matcher builds once per installation (`partnermatch lemmas`): the lemma "
    "index from simplemma's dictionaries, and copies of the decoded language detection model and "
    "of the compiled lexicon. Every service reads it",
)


class InputError(ValueError):
    """A line of the input that cannot be used; the message names the line and the problem."""


class MatchingError(RuntimeError):
    """A worker process failed; nothing was written to the output file."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "match",
        help="suggest partners for every organisation of a JSON-lines file",
        description="One JSON organisation per line in (id, name, cluster, country, language optional, "
        "capabilities, goals; optional lists offers, seeks, seeks_countries); one line per "
        "organisation out: its best partners with reasons.",
    )
    parser.add_argument("--input", required=True, help="input .jsonl file, or - for standard input")
    parser.add_argument("--output", required=True, help="output .jsonl file, or - for standard output")
    parser.add_argument("--top", type=int, default=5, help="partners per organisation (default 5)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that analyse and match (default: the CPUs, at most 4, from 4,000 organisations on)",
    )
    parser.set_defaults(func=run)


def read_organisations(stream: IO[str]) -> list[Any]:
    from services.matcher.engine import OrgProfile

    seen: dict[str, int] = {}
    profiles = []
    given: dict[str, set[str]] = {"needs": set(), "countries": set()}
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(doc, dict):
            raise InputError(f"line {number}: expected a JSON object, got {type(doc).__name__}")
        org_id = doc.get("id")
        if isinstance(org_id, int) and not isinstance(org_id, bool):
            org_id = str(org_id)
        if not isinstance(org_id, str) or not org_id.strip():
            raise InputError(f'line {number}: missing or empty "id" (a string)')
        if org_id in seen:
            raise InputError(f"line {number}: duplicate id {org_id!r} (first on line {seen[org_id]})")
        seen[org_id] = number
        values: dict[str, str | None] = {}
        for name in TEXT_FIELDS:
            value = doc.get(name)
            if value is not None and not isinstance(value, str):
                raise InputError(f'line {number}: "{name}" must be a string, got {type(value).__name__}')
            values[name] = value
        needs = {name: _need_list(doc.get(name), name, number) for name in NEED_FIELDS}
        given["needs"].update(needs["offers"], needs["seeks"])
        given["countries"].update(needs["seeks_countries"])
        profiles.append(
            OrgProfile(
                id=org_id,
                name=values["name"] or "",
                cluster=values["cluster"] or f"(no cluster) {org_id}",
                country=values["country"] or "",
                language=(values["language"] or None),
                capabilities=values["capabilities"] or "",
                goals=values["goals"] or "",
                **needs,
            )
        )
    _warn_unknown(given["needs"], given["countries"])
    return profiles


def _need_list(value: Any, name: str, number: int) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(f'line {number}: "{name}" must be a list of strings, got {type(value).__name__}')
    for item in value:
        if not isinstance(item, str):
            raise InputError(
                f'line {number}: "{name}" must be a list of strings, has '
                f"{json.dumps(item, ensure_ascii=False)[:40]} ({type(item).__name__})"
            )
    return tuple(dict.fromkeys(value))


_COUNTRY_CODE = re.compile(r"[A-Z]{2}")


def _warn_unknown(needs: set[str], countries: set[str]) -> None:
    """One warning for the whole file: unknown ids are kept (the engine ignores what it does not
    know), but a typo should not pass unseen. The vocabulary is read only if some line has needs."""
    if not needs and not countries:
        return
    codes = vocabulary.country_codes()  # while the lexicon has no countries: any two capitals
    unknown = sorted(needs - vocabulary.need_ids()) + sorted(
        c for c in countries if (c not in codes if codes else not _COUNTRY_CODE.fullmatch(c))
    )
    if unknown:
        logger.warning(
            "unknown ids in offers, seeks or seeks_countries: kept, but nothing matches on them",
            extra={"count": len(unknown), "ids": unknown[:20]},
        )


def match_file(
    src: IO[str],
    dst: IO[str],
    top: int,
    lemma_index: str | None = None,
    workers: int | None = None,
    scratch: str | None = None,
) -> int:
    from services.matcher.engine import MatchEngine
    from services.matcher.engine.text import use_lemma_index
    from services.matcher.engine.topn import kernel
    from services.matcher.engine.workers import can_fork

    started = time.monotonic()
    use_lemma_index(lemma_index)
    profiles = read_organisations(src)
    logger.info("read organisations", extra={"count": len(profiles)})
    engine = MatchEngine()

    def progress(stage: str) -> Any:
        def report(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            logger.info(stage, extra={"done": done, "total": total, "per_s": round(rate, 1)})

        return report

    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if len(profiles) >= 4000 else 1
    with rare_collections():
        # the candidate product's compiled code is loaded (half a second) while the workers analyse
        engine.fit(profiles, progress=progress("analysed"), workers=workers, keep_analyses=True, meanwhile=kernel)
        parts = min(workers, len(profiles)) if can_fork() else 1
        if parts > 1:
            _match_in_parts(
                engine,
                profiles,
                top,
                dst,
                parts,
                progress(f"matched (part 1 of {parts}, the others alongside)"),
                scratch,
            )
        else:
            _write_part(engine, profiles, 0, len(profiles), top, dst, progress("matched"))
    logger.info("done", extra={"organisations": len(profiles), "seconds": round(time.monotonic() - started, 2)})
    return len(profiles)


@contextlib.contextmanager
def rare_collections() -> Iterator[None]:
    """A batch run makes millions of small objects and keeps nearly all of them until the end, so
    CPython's cycle collector, which runs every 700 new objects, mostly rescans live data: about
    3 s of a 20,000-organisation run. Collect far less often while it lasts."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


class LineWriter:
    """One output line: what json.dumps of {"id": ..., "suggestions": [s.to_dict() ...]} writes,
    byte for byte, built from strings encoded once (concept ids, the words of a reason) instead
    of half a million dictionaries encoded one by one."""

    def __init__(self) -> None:
        self._strings: dict[Any, str] = {}
        self._heads: dict[tuple[Any, ...], str] = {}  # a reason's opening, by (concept, kind, direction)

    def _enc(self, value: Any) -> str:
        got = self._strings.get(value)
        if got is None:
            got = self._strings[value] = json.dumps(
                list(value) if isinstance(value, tuple) else value, ensure_ascii=False
            )
        return got

    def __call__(self, org_id: str, suggestions: list[Any]) -> str:
        enc, known, heads = self._enc, self._strings.get, self._heads
        out = []
        for s in suggestions:
            reasons = []
            for concept, kind, direction, weight, terms_a, terms_b in s.reasons:
                head = heads.get((concept, kind, direction))
                if head is None:
                    head = heads[(concept, kind, direction)] = (
                        f'{{"concept": {enc(concept)}, "kind": {enc(kind)}, "direction": {enc(direction)}, "weight": '
                    )
                reasons.append(
                    f'{head}{round(weight, 4)!r}, "terms_a": {known(terms_a) or enc(terms_a)}, '
                    f'"terms_b": {known(terms_b) or enc(terms_b)}}}'
                )
            out.append(
                f'{{"id": {known(s.id) or enc(s.id)}, "score": {round(s.score, 4)!r}, '
                f'"reasons": [{", ".join(reasons)}]}}'
            )
        return f'{{"id": {enc(org_id)}, "suggestions": [{", ".join(out)}]}}\n'


def _write_part(engine: Any, profiles: list[Any], lo: int, hi: int, top: int, dst: IO[str], progress: Any) -> None:
    """The output lines of profiles[lo:hi] (the engine's rows lo..hi-1, fitted in input order)."""
    import numpy as np

    line = LineWriter()
    results = engine.suggestions_for_all(top, progress=progress, rows=np.arange(lo, hi))
    for p, (org_id, suggestions) in zip(profiles[lo:hi], results, strict=True):
        assert org_id == p.id
        dst.write(line(org_id, suggestions))


def _match_in_parts(
    engine: Any, profiles: list[Any], top: int, dst: IO[str], parts: int, progress: Any, scratch: str | None = None
) -> None:
    """Match and write in `parts` processes at once: this one takes the first part and writes it
    straight out, forked children write the others to temporary files (in `scratch`, by default
    the system's temporary folder), appended in order. Each part's reasons and lines are made
    where its product ran, so nothing is sent back and forth. If this process fails or is
    stopped, the children are stopped too and their files removed."""
    from services.matcher.engine.topn import kernel
    from services.matcher.engine.workers import frozen_objects

    kernel()  # compiled (or loaded) once here, not in every child
    n = len(profiles)
    bounds = [n * i // parts for i in range(parts + 1)]
    children: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="partnermatch-match-", dir=scratch) as tmp:
        files = {i: os.path.join(tmp, f"part-{i}.jsonl") for i in range(1, parts)}  # this process writes part 0
        with frozen_objects():  # a collection in a child would copy the parent's memory page by page
            try:
                for i in range(1, parts):
                    child = mp.get_context("fork").Process(
                        target=_child_part,
                        args=(engine, profiles, bounds[i], bounds[i + 1], top, files[i]),
                        name=f"partnermatch-match-{i}",
                    )
                    child.start()
                    children.append(child)
                _write_part(engine, profiles, bounds[0], bounds[1], top, dst, progress)
            except BaseException:
                for child in children:
                    child.terminate()
                raise
            finally:
                for child in children:
                    child.join()
        failed = [c.name for c in children if c.exitcode != 0]
        if failed:
            raise MatchingError(f"matching failed in {', '.join(failed)} (its error is printed above)")
        for path in files.values():
            _append(path, dst)


def _append(path: str, dst: IO[str]) -> None:
    """Append a part file (UTF-8) to the output: as bytes where the output is UTF-8 over a byte
    stream (half a second less for 50 MB than decoding and encoding it again), else as text."""
    raw = getattr(dst, "buffer", None)
    if raw is None or (getattr(dst, "encoding", "") or "").lower().replace("-", "").replace("_", "") != "utf8":
        with open(path, encoding="utf-8") as part:
            shutil.copyfileobj(part, dst)
        return
    dst.flush()
    with open(path, "rb") as part:
        shutil.copyfileobj(part, raw, 1 << 20)
    raw.flush()


def _child_part(engine: Any, profiles: list[Any], lo: int, hi: int, top: int, path: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        _write_part(engine, profiles, lo, hi, top, out, None)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: workers stopped, temporary files removed


def run(args: argparse.Namespace) -> int:
    configure_logging(os.environ)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    cache = LEMMA_INDEX.read(os.environ)
    if args.top < 1:
        print("partnermatch match: --top must be at least 1", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print("partnermatch match: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        src = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        print(f"partnermatch match: cannot read {args.input}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        with src:
            try:
                profiles_out: IO[str]
                if args.output == "-":
                    match_file(src, sys.stdout, args.top, cache, args.workers)
                else:
                    tmp = args.output + ".partial"
                    try:
                        with open(tmp, "w", encoding="utf-8") as profiles_out:
                            match_file(
                                src,
                                profiles_out,
                                args.top,
                                cache,
                                args.workers,
                                scratch=os.path.dirname(os.path.abspath(args.output)),
                            )
                        os.replace(tmp, args.output)
                    except BaseException:
                        with contextlib.suppress(OSError):
                            os.unlink(tmp)  # no half-written file left beside the output
                        raise
            except UnicodeDecodeError as exc:
                print(
                    f"partnermatch match: {args.input} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                    file=sys.stderr,
                )
                return 2
    except InputError as exc:
        print(f"partnermatch match: {args.input}: {exc}", file=sys.stderr)
        return 2
    except MatchingError as exc:
        print(f"partnermatch match: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"partnermatch match: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0
