"""bench/post_visible.py's confirmers against a real redis-server and a stand-in review API: a
suggestion announced while the matcher has not applied the write yet (another organisation's plan
wrote the PATCHed organisation's pair with its new texts, and the PATCH's own plan then announces
nothing) is asked about once the write is applied, and counts as the write's outcome; a pair last
written before the write was sent is never asked about."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
import redis

from services.matcher.adapters.redis_state import PAIR, REVISIONS
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[3] / "bench" / "post_visible.py"
MARKER = "bench-0123456789ab"


@pytest.fixture(scope="module")
def post_visible() -> ModuleType:
    spec = importlib.util.spec_from_file_location("post_visible_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class ReviewStandIn(BaseHTTPRequestHandler):
    """GET /v1/suggestions/<pair>: the pair pending, with the PATCHed organisation's goals as the
    matcher's Redis holds its profile (with the marker once its revision 2 is applied)."""

    store: redis.Redis
    asked: list[str]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        pair_id = self.path.rsplit("/", 1)[-1]
        self.asked.append(pair_id)
        org_a, _, org_b = pair_id.partition("~")
        applied = int(self.store.hget(REVISIONS, "org-x") or 0)
        goals = f"new goals ({MARKER})" if applied >= 2 else "old goals"
        view = {
            "pair_id": pair_id,
            "state": "pending",
            "own": {"org_id": org_a, "goals": goals if org_a == "org-x" else "theirs"},
            "partner": {"org_id": org_b, "goals": goals if org_b == "org-x" else "theirs"},
        }
        body = json.dumps(view).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def review(redis_client: redis.Redis) -> Iterator[tuple[str, list[str]]]:
    asked: list[str] = []
    handler = type("Handler", (ReviewStandIn,), {"store": redis_client, "asked": asked})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


def _patch_sent(post_visible: ModuleType, tracker: object) -> object:
    w = post_visible.Write(0, "patch", {}, "cluster-x", org_id="org-x", token="t", marker=MARKER, revision=2, name="X")
    w.sent = time.time()
    tracker.acknowledged(w, "org-x", w.sent + 0.003)  # type: ignore[attr-defined]
    return w


def _pair_written(client: redis.Redis, pair_id: str, at: float) -> None:
    client.set(PAIR + pair_id, json.dumps({"pair_id": pair_id, "state": "pending", "updated_ms": int(at * 1000)}))


def test_a_suggestion_announced_before_the_patch_is_applied_is_seen_once_it_is(
    post_visible: ModuleType, redis_client: redis.Redis, redis_server, review: tuple[str, list[str]]
) -> None:
    url, asked = review
    tracker = post_visible.Tracker()
    stop = threading.Event()
    threading.Thread(
        target=post_visible.confirm,
        args=(url, {"cluster-x": "coordinator-token"}, tracker, redis_server.url, stop),
        daemon=True,
    ).start()
    try:
        redis_client.hset(REVISIONS, "org-x", 1)
        w = _patch_sent(post_visible, tracker)
        # another organisation's plan writes the pair with the PATCH's texts (the table reader has
        # indexed the PATCH) and announces it before the PATCH's own run applies the profile
        _pair_written(redis_client, "org-p~org-x", w.sent + 0.2)
        tracker.on_suggested("org-p~org-x", ("org-p", "org-x"), w.sent + 0.3)
        time.sleep(0.3)  # the confirmers look at it while the write is not applied
        assert w.visible is None
        # the PATCH's own run applies the profile and finds the pair as it is: no announcement
        redis_client.hset(REVISIONS, "org-x", 2)
        applied = time.time()
        wait_until(lambda: w.visible is not None, timeout=5, message="the suggestion seen once the write is applied")
        assert w.visible - applied < 1.0
        assert w.early_outcome
        assert asked == ["org-p~org-x"]  # nothing asked before the write was applied
    finally:
        stop.set()


def test_a_pair_last_written_before_the_write_was_sent_is_never_asked_about(
    post_visible: ModuleType, redis_client: redis.Redis, redis_server, review: tuple[str, list[str]]
) -> None:
    url, asked = review
    tracker = post_visible.Tracker()
    stop = threading.Event()
    threading.Thread(
        target=post_visible.confirm,
        args=(url, {"cluster-x": "coordinator-token"}, tracker, redis_server.url, stop),
        daemon=True,
    ).start()
    try:
        redis_client.hset(REVISIONS, "org-x", 2)
        w = _patch_sent(post_visible, tracker)
        _pair_written(redis_client, "org-q~org-x", w.sent - 5)  # the relay late with an old suggestion
        tracker.on_suggested("org-q~org-x", ("org-q", "org-x"), w.sent + 0.1)
        time.sleep(0.5)
        assert w.visible is None and asked == []
    finally:
        stop.set()
