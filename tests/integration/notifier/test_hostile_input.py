"""Hostile bodies at the unsubscribe endpoints: JSON nested 5,000 deep, numbers of 5,000 digits, NaN
and Infinity get a 400 naming the problem and unsubscribe no one; a body over the 16 KiB limit
(JSON nested 10,000 deep, 5 MB) gets a 413 in JSON, also under gunicorn with the whole body sent
before the answer is read; the one-click unsubscribe still works."""

from __future__ import annotations

import pytest
import redis

from services.notifier.adapters.redis_ledger import RedisDeliveryLedger
from services.notifier.config import NotifierSettings
from services.notifier.entrypoints.web import create_app
from services.notifier.tokens import UnsubscribeTokens
from tests.integration.edge import (
    FIVE_MB,
    HOSTILE_JSON,
    assert_refused_as_invalid_json,
    gunicorn_service,
    send_whole_body,
)

from .conftest import SECRET

pytestmark = pytest.mark.integration

EMAIL = "jelena@vojvodina.example.rs"
ONE_CLICK = b"List-Unsubscribe=One-Click"
TOO_LARGE = {"code": 413, "status": "Request Entity Too Large", "message": "Request body larger than 16384 bytes."}
# 10,000 levels take 20,000 bytes: over this service's limit, so the limit answers first.
WITHIN_THE_LIMIT = {
    **HOSTILE_JSON,
    "arrays nested 10,000 deep": ("[" * 5_000 + "]" * 5_000, "nested deeper than 32"),
    "objects nested 10,000 deep": ('{"a":' * 2_500 + "1" + "}" * 2_500, "nested deeper than 32"),
}


def unsubscribe_path() -> str:
    return "/unsubscribe/" + UnsubscribeTokens(SECRET).sign(EMAIL, "org_rs", "sr-Cyrl")


@pytest.fixture
def client(redis_server, redis_client):
    settings = NotifierSettings(redis_url=redis_server.url, kafka_bootstrap="unused:9092", secret_key=SECRET)
    return create_app(settings).test_client()


@pytest.fixture
def ledger(redis_client):
    return RedisDeliveryLedger(redis_client)


@pytest.mark.parametrize("method", ["post", "get"])
@pytest.mark.parametrize("case", WITHIN_THE_LIMIT)
def test_hostile_json_is_a_400_naming_the_problem_and_unsubscribes_no_one(client, ledger, method, case):
    body, words = WITHIN_THE_LIMIT[case]
    r = getattr(client, method)(unsubscribe_path(), data=body, content_type="application/json")
    assert_refused_as_invalid_json(r.status_code, r.json, words)
    assert not ledger.is_suppressed(EMAIL)


@pytest.mark.parametrize("body", ["[" * 10_000 + "]" * 10_000, "x" * FIVE_MB], ids=["nested 10,000 deep", "5 MB"])
def test_a_body_over_the_limit_is_a_413_in_json(client, ledger, body):
    r = client.post(unsubscribe_path(), data=body, content_type="application/json")
    assert r.status_code == 413 and r.json == TOO_LARGE
    assert not ledger.is_suppressed(EMAIL)


def test_the_one_click_unsubscribe_still_works(client, ledger):
    r = client.post(unsubscribe_path(), data=ONE_CLICK, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert ledger.is_suppressed(EMAIL)


# ---- under gunicorn, over a real socket --------------------------------------------------------


@pytest.fixture(scope="module")
def served(redis_server, tmp_path_factory):
    """The unsubscribe app as `partnermatch up` runs it, on its own Redis database."""
    url = f"redis://127.0.0.1:{redis_server.port}/4"
    client = redis.Redis.from_url(url)
    client.flushdb()
    log = tmp_path_factory.mktemp("unsub-gunicorn") / "unsub.log"
    with gunicorn_service(
        "unsubscribe", {"NOTIFIER_REDIS_URL": url, "NOTIFIER_SECRET_KEY": SECRET}, log_file=log
    ) as base:
        yield base, RedisDeliveryLedger(client)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_5_mb_body_sent_whole_is_answered_413_not_reset(served, chunked):
    base, ledger = served
    answer = send_whole_body(
        base, unsubscribe_path(), b"x" * FIVE_MB, chunked=chunked, content_type="application/x-www-form-urlencoded"
    )
    assert answer.status == 413 and answer.json == TOO_LARGE
    assert not ledger.is_suppressed(EMAIL)


def test_hostile_json_over_a_real_socket_is_a_400(served):
    base, ledger = served
    body, words = WITHIN_THE_LIMIT["NaN"]
    answer = send_whole_body(base, unsubscribe_path(), body.encode(), chunked=True)
    assert_refused_as_invalid_json(answer.status, answer.json, words)
    assert not ledger.is_suppressed(EMAIL)


def test_the_one_click_unsubscribe_still_works_over_the_same_server(served):
    base, ledger = served
    for chunked in (False, True):
        answer = send_whole_body(
            base, unsubscribe_path(), ONE_CLICK, chunked=chunked, content_type="application/x-www-form-urlencoded"
        )
        assert answer.status == 200 and answer.headers.get_content_type() == "text/html"
    assert ledger.is_suppressed(EMAIL)
