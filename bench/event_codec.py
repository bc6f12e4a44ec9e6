"""What reading one event costs a consumer: partnermatch.events.decode against its baseline in the
same run, json.loads and marshmallow's load and validation (events.decode_document, what decode
did for every record before it had a quick path, and still does for any record the quick checks
do not accept). Every consumer decodes every record it reads: the notifier each suggestion and
withdrawal, the matcher each profile event twice (its table reader and its group's consumer).

Then what writing one costs a producer: events.new_event + events.encode against their baseline in
the same run, new_event + encode as it was before orjson wrote the events holding floats (json.dumps
wrote those: the matcher's suggestions, each of a plan's in RedisMatcherState.apply_profiles; the
events without floats were written by orjson already). The bytes are checked equal.

The events are the contract's examples (tests/contract), a suggestion with five reasons as the
matcher writes them, and a profile with texts of the seekers' dev set. CPU time, best of --rounds
rounds of --n decodes (or builds) each (the machine is shared: the best round is the least
disturbed one).
Usage: python bench/event_codec.py [--n 5000] [--rounds 5] [--only decode|encode]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from partnermatch import events  # noqa: E402
from tests.contract.test_event_contract import EXAMPLES  # noqa: E402

REASON = {
    "kind": "offer_need",
    "direction": "a_to_b",
    "weight": 0.1234,
    "terms_a": ["cloud", "software"],
    "terms_b": ["digital"],
}


def payloads() -> dict[str, tuple[str, dict[str, Any], str]]:
    """Each sample's event type, payload and producer."""
    first = (ROOT / "tests" / "data" / "seekers" / "seekers_a.jsonl").read_text(encoding="utf-8").splitlines()[0]
    seeker = json.loads(first)
    texts = {"capabilities": seeker["capabilities"], "goals": seeker["goals"]}
    profile = {**EXAMPLES[(events.PROFILE_UPSERTED, 2)], **texts}
    suggestion = {
        **EXAMPLES[(events.MATCH_SUGGESTED, 1)],
        "reasons": [{**REASON, "concept": f"concept-{i}"} for i in range(5)],
    }
    return {
        "match.suggested, 5 reasons": (events.MATCH_SUGGESTED, suggestion, "matcher"),
        "match.withdrawn": (events.MATCH_WITHDRAWN, EXAMPLES[(events.MATCH_WITHDRAWN, 1)], "matcher"),
        "profile.upserted v2": (events.PROFILE_UPSERTED, profile, "profiles"),
    }


def samples() -> dict[str, bytes]:
    return {name: events.encode(events.new_event(*made)) for name, made in payloads().items()}


def encoded_as_before(envelope: events.Envelope) -> bytes:
    """encode before orjson wrote events holding floats, for an envelope new_event made: its
    fields known valid, its payload checked, the document written by orjson for the event types
    whose payloads hold no floats (_ORJSON_EVENTS), by json for the others."""
    doc = envelope.to_dict()
    if not events._made_valid(envelope) or not envelope.payload_checked:
        raise ValueError("not an envelope new_event made")
    if (envelope.event_type, envelope.version) in events._ORJSON_EVENTS:
        return events.canonical_json(doc, floats=False)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def best_cpu_us(read: Callable[[Any], Any], raw: Any, n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(n):
            read(raw)
        best = min(best, time.process_time() - began)
    return best / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=("decode", "encode"), default=None)
    args = parser.parse_args()

    def baseline(raw: bytes) -> events.Envelope:
        return events.decode_document(json.loads(raw))

    if args.only != "encode":
        print(f"{'event':<28} {'bytes':>6} {'baseline µs':>12} {'decode µs':>10} {'ratio':>6}")
        for name, raw in samples().items():
            assert events.decode(raw) == baseline(raw)
            slow = best_cpu_us(baseline, raw, args.n, args.rounds)
            quick = best_cpu_us(events.decode, raw, args.n, args.rounds)
            print(f"{name:<28} {len(raw):>6} {slow:>12.1f} {quick:>10.1f} {quick / slow:>6.2f}")
    if args.only != "decode":
        if args.only is None:
            print()
        print(f"{'new_event + …':<28} {'bytes':>6} {'before µs':>14} {'encode µs':>10} {'ratio':>6}")
        for name, made in payloads().items():
            envelope = events.new_event(*made)
            raw = events.encode(envelope)
            assert raw == encoded_as_before(envelope)
            slow = best_cpu_us(lambda m: encoded_as_before(events.new_event(*m)), made, args.n, args.rounds)
            quick = best_cpu_us(lambda m: events.encode(events.new_event(*m)), made, args.n, args.rounds)
            print(f"{name:<28} {len(raw):>6} {slow:>14.1f} {quick:>10.1f} {quick / slow:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
