"""The HTTP edge every service's Flask app shares: request bodies read whole or refused with a 413,
JSON parsed with limits on nesting and number size, so hostile input gets a 4xx, never a 500, and
a store that cannot be reached answered with a 503 and Retry-After, never a 500.

`harden(app)` installs all three, and counts and times every request (partnermatch.metrics; each
app adds GET /metrics with `metrics.expose`). I/O: only the request body being read.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable
from itertools import accumulate
from typing import Any, NoReturn

import orjson
import redis
from flask import Flask, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider, JSONProvider
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from webargs import flaskparser
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES

from partnermatch import metrics
from partnermatch.jsonvalues import holds_float
from partnermatch.settings import TRUSTED_PROXIES

logger = logging.getLogger(__name__)

MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 100
# An oversized body is read and thrown away up to this much, so the client, which may still be
# sending, reads the 413 instead of a connection reset; a larger one gets the reset.
DISCARD_BYTES = 16 * 1024 * 1024
DISCARD_SECONDS = 5.0
# How long a client is asked to wait when the store is unreachable: a restarted redis-server is
# back within a few seconds (partnermatch up restarts it; so does any orchestrator).
RETRY_AFTER_SECONDS = 5

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonTooComplex(ValueError):
    """A JSON text nested too deeply, or with a number too long or out of range; says which."""


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text` (0 for a scalar), found without parsing it.

    Brackets inside strings do not count; in broken JSON the answer may be too high, never too low
    for the part a parser would read."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets), initial=0))


def _digits(literal: str) -> int:
    return sum(ch.isdigit() for ch in literal)


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH, max_digits: int = MAX_NUMBER_DIGITS) -> Any:
    """`json.loads` for untrusted input: refuses nesting deeper than `max_depth`, number literals
    with more than `max_digits` digits, numbers out of a float's range, and NaN / Infinity (which
    are not JSON) with JsonTooComplex. Bytes must be UTF-8 (RFC 8259); other errors as json.loads."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text)
        # Most bodies: orjson reads them (UTF-8 included) as json.loads does, and they give it nothing
        # to refuse here: no deeper nesting than there are brackets, no float (whose literal might be
        # too long). Whatever orjson refuses goes the way below, which gives json's answer or error
        # (it reads an escaped lone surrogate, or an integer beyond 64 bits, where orjson does not).
        if text.count(b"[") + text.count(b"{") <= max_depth:
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError:
                pass
            else:
                if not holds_float(parsed):
                    return parsed
        text = text.decode("utf-8")
    # Depth cannot exceed the number of opening brackets: most bodies need no scan.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise JsonTooComplex(f"nested deeper than {max_depth} levels")

    def parse_int(literal: str) -> int:
        # Checked before int(): Python refuses more than 4,300 digits with a ValueError of its own,
        # and converting a long literal takes time quadratic in its length.
        if len(literal) > max_digits and _digits(literal) > max_digits:
            raise JsonTooComplex(f"a number has more than {max_digits} digits")
        return int(literal)

    def parse_float(literal: str) -> float:
        if len(literal) > max_digits and _digits(literal) > max_digits:
            raise JsonTooComplex(f"a number has more than {max_digits} digits")
        value = float(literal)
        if not math.isfinite(value):
            raise JsonTooComplex(f"the number {literal} is out of range")
        return value

    def parse_constant(name: str) -> Any:
        raise JsonTooComplex(f"{name} is not a JSON value")

    try:
        return json.loads(text, parse_int=parse_int, parse_float=parse_float, parse_constant=parse_constant)
    except RecursionError:  # not reached after the depth check; kept so no input can make a 500
        raise JsonTooComplex(f"nested deeper than {max_depth} levels") from None


class LimitedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, reading with `loads` above (so `request.get_json()` is safe too)."""

    max_depth = MAX_DEPTH
    max_number_digits = MAX_NUMBER_DIGITS

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s, max_depth=self.max_depth, max_digits=self.max_number_digits)


_ANSWER_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_APPEND_NEWLINE
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def compact_json_line(provider: JSONProvider, obj: Any, *, holds_no_float: bool = False) -> bytes:
    r"""`(provider.dumps(obj, separators=(",", ":")) + "\n").encode()`, as a JSON answer's body is
    written, made by orjson where that gives the same bytes: for Flask's provider with sorted keys
    (its default) and ensure_ascii off (the profiles app's), as orjson sorts keys alike and writes
    the same escapes for control characters, quotes and backslashes and every other character as it
    is. Floats (orjson writes those under 1e-4 otherwise), another provider's settings and anything
    orjson does not take as plain JSON go to the provider. `holds_no_float`: the caller knows `obj`
    holds none (the write routes' plain dumps), which saves looking."""
    plain = isinstance(provider, DefaultJSONProvider) and provider.sort_keys and not provider.ensure_ascii
    if not plain or (not holds_no_float and holds_float(obj)):
        return _provider_json_line(provider, obj)
    try:
        return orjson.dumps(obj, option=_ANSWER_OPTIONS)
    except orjson.JSONEncodeError:
        return _provider_json_line(provider, obj)


def _provider_json_line(provider: JSONProvider, obj: Any) -> bytes:
    return (provider.dumps(obj, separators=(",", ":")) + "\n").encode("utf-8")


# The `message` of a request refused for its fields (with `errors`, each field's), and of a body
# that is not JSON: every error of the APIs says in one line what is wrong.
VALIDATION_FAILED = "Validation failed."
INVALID_JSON = "Invalid JSON body."


class _ExplainingParser(flaskparser.FlaskParser):
    """flask-smorest's parser (webargs), whose refusals carry a `message` besides the errors by
    field, as the views' own refusals do (an unknown cluster, a text too long)."""

    def handle_error(
        self,
        error: Any,
        req: Any,
        schema: Any,
        *,
        error_status_code: int | None,
        error_headers: Any,
    ) -> NoReturn:
        flaskparser.abort(
            error_status_code or self.DEFAULT_VALIDATION_STATUS,
            exc=error,
            messages=error.messages,
            schema=schema,
            headers=error_headers,
            message=VALIDATION_FAILED,
        )

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any, **kwargs: Any) -> NoReturn:
        flaskparser.abort(400, exc=error, messages={"json": [INVALID_JSON]}, message=INVALID_JSON)


class ApiBlueprint(SmorestBlueprint):
    """A blueprint of the APIs (flask-smorest's), its refusals explained (_ExplainingParser), those
    of its pages' paging parameters too."""

    ARGUMENTS_PARSER = _ExplainingParser()
    PAGINATION_ARGUMENTS_PARSER = _ExplainingParser()


class ExplainingApi(Api):
    """flask-smorest's Api, whose error answers always carry a `message`: an error raised without
    one (an unknown path's 404, a method's 405) takes werkzeug's description of its status.

    `page_error`: how the web app answers an error of an address outside the API (`api_paths`) with
    a page, for a browser that takes HTML: a mistyped address of the pages is then a page in the
    reader's language, not the API's JSON. It returns what a Flask view returns, or None to leave the
    error to the API's answer."""

    def __init__(
        self,
        app: Any = None,
        *,
        page_error: Callable[[HTTPException], Any] | None = None,
        api_paths: tuple[str, ...] = ("/v1/",),
        **kwargs: Any,
    ) -> None:
        self._page_error, self._api_paths = page_error, api_paths
        super().__init__(app, **kwargs)

    def handle_http_exception(self, error: Any) -> Any:
        if (
            self._page_error is not None
            and not request.path.startswith(self._api_paths)
            # a browser's Accept, not a client's "*/*": curl and monitors keep the JSON
            and request.accept_mimetypes.best_match(("application/json", "text/html")) == "text/html"
        ):
            page = self._page_error(error)
            if page is not None:
                return page
        payload, code, headers = super().handle_http_exception(error)
        if "message" not in payload and getattr(error, "description", None):
            payload["message"] = error.description
        return payload, code, headers


def error(status: int, message: str | None = None, errors: dict[str, Any] | None = None) -> Response:
    """An error in the shape flask-smorest gives every error of the APIs: code, status, and a
    message and/or errors by location (`{"json": [...]}` or `{"json": {field: [...]}}`)."""
    payload: dict[str, Any] = {"code": status, "status": HTTP_STATUS_CODES.get(status, "Error")}
    if message is not None:
        payload["message"] = message
    if errors is not None:
        payload["errors"] = errors
    response = jsonify(payload)
    response.status_code = status
    return response


def _has_body() -> bool:
    return request.content_length is not None or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _discard_body() -> None:
    """Read and drop what is left of the body, within DISCARD_BYTES and (checked between reads)
    DISCARD_SECONDS.

    Reads the server's stream directly: werkzeug's own stream stops at the limit (or refuses to
    start), and a server that closes a socket with unread data makes the kernel reset it."""
    declared = request.content_length
    if declared is not None and declared > DISCARD_BYTES:
        return  # it would be reset after all: don't spend the worker's time on it
    stream = request.environ["wsgi.input"]
    left = DISCARD_BYTES if declared is None else declared
    give_up_at = time.monotonic() + DISCARD_SECONDS
    while left > 0 and time.monotonic() < give_up_at:
        chunk = stream.read(min(65536, left))
        if not chunk:
            return
        left -= len(chunk)


def _too_large(limit: int) -> Response:
    _discard_body()
    return error(413, message=f"Request body larger than {limit} bytes.")


def _read_body() -> Response | None:
    """Before every view: the body is read whole (at most MAX_CONTENT_LENGTH) or answered with a
    413; a JSON body must parse within the limits or is answered with a 400."""
    if not _has_body():
        return None
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        return _too_large(limit)
    try:
        body = request.get_data(cache=True)
    except RequestEntityTooLarge:
        return _too_large(limit)
    # A chunked body (no Content-Length) is cut at the limit without a word: one byte more tells.
    if request.content_length is None and len(body) >= limit and request.environ["wsgi.input"].read(1):
        return _too_large(limit)
    if body and request.is_json:
        # flask-smorest's parser (webargs) reads the body again with plain json.loads: what passes
        # here is safe for it. Other invalid JSON is left to it, so it keeps its own answer.
        try:
            current_app.json.loads(body)
        except JsonTooComplex as exc:
            return error(400, message=INVALID_JSON, errors={"json": [f"Invalid JSON body: {exc}."]})
        except ValueError:
            pass
    return None


def _store_unreachable(exc: Exception) -> Response:
    """A request that needed Redis while it was down or not answering. Writes are one MULTI/EXEC
    each, so none is left half-done; the client retries."""
    logger.warning("store unreachable: answered 503", extra={"path": request.path, "error": type(exc).__name__})
    response = error(
        503, message=f"The service cannot reach its data store right now; try again in {RETRY_AFTER_SECONDS} seconds."
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def harden(
    app: Flask,
    *,
    max_depth: int = MAX_DEPTH,
    max_number_digits: int = MAX_NUMBER_DIGITS,
    trusted_proxies: int | None = None,
) -> None:
    """Install the edge on `app`: call it right after `app.config` holds MAX_CONTENT_LENGTH and
    before other `before_request` functions are registered, so it runs first. With
    `trusted_proxies` (default: PARTNERMATCH_TRUSTED_PROXIES) reverse proxies in front, the client's
    address and scheme are read from their X-Forwarded-For/-Proto headers, so rate limits count
    visitors rather than the proxy."""
    if not app.config.get("MAX_CONTENT_LENGTH"):
        raise ValueError("harden() needs MAX_CONTENT_LENGTH in app.config")
    hops = TRUSTED_PROXIES.read_int(os.environ) if trusted_proxies is None else trusted_proxies
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    provider = LimitedJSONProvider(app)
    provider.max_depth = max_depth
    provider.max_number_digits = max_number_digits
    app.json = provider
    metrics.instrument(app)  # first: a request refused below is counted and timed too
    app.before_request(_read_body)
    # BusyLoadingError (a restarted redis-server still reading its data) is a ConnectionError.
    app.register_error_handler(redis.exceptions.ConnectionError, _store_unreachable)
    app.register_error_handler(redis.exceptions.TimeoutError, _store_unreachable)


def json_bodies_only(app: Flask, *, forms: tuple[str, ...] = ("pages",)) -> None:
    """A POST, PUT or PATCH body to the API must be JSON (415 otherwise) in UTF-8 (400): without
    the check a body sent as a form or as text reads as no body at all, and the answer names
    fields as missing that were sent. The blueprints `forms` (the web pages) take form posts.
    Register after harden(), whose check reads the body and bounds its size."""

    def check() -> None:
        if request.method in ("POST", "PUT", "PATCH") and request.blueprint not in forms:
            body = request.get_data(cache=True)
            if body and not request.is_json:
                abort(415, message="Send JSON with Content-Type: application/json.")
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                abort(400, message=f"Body is not valid UTF-8 (byte {exc.start}).")

    app.before_request(check)


def health(app: Flask, ping: Callable[[], Any]) -> None:
    """GET /health: 200 {"status": "ok"} when `ping()` (the service's store) answers, else 503
    {"status": "unavailable"}. Why is logged, never answered: the probe is public, and an error text
    tells a stranger how the service is built."""

    def probe() -> tuple[Response, int]:
        try:
            ping()
        except Exception as exc:  # noqa: BLE001 - report, don't crash the probe
            logger.warning("health: store unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
            return jsonify(status="unavailable"), 503
        return jsonify(status="ok"), 200

    app.add_url_rule("/health", "health", probe, methods=["GET"])


def abort(status: int, message: str | None = None, **details: Any) -> NoReturn:
    """flask-smorest's abort (a JSON error body with `message` and any `errors`), typed as never
    returning, so a view that ends in a refusal reads, and type-checks, as one that ends."""
    from flask_smorest import abort as smorest_abort

    smorest_abort(status, message=message, **details)
    raise AssertionError("flask_smorest.abort returned")  # it raises an HTTPException


def guard(blueprint: Any, check: Callable[[], Any], refusals: dict[int, str]) -> Callable[[Callable[..., Any]], Any]:
    """Declarative access to a flask-smorest view: `check()` runs before the view and either
    returns who is calling, handed to the view as `caller=`, or aborts with one of `refusals`
    (status → what it means), each documented in the OpenAPI document as an error response.

    Put it under the blueprint's `arguments`/`response` decorators: a malformed request is still a
    422 whoever sends it, as it was when each view called its check by hand."""
    from flask_smorest.error_handler import ErrorSchema

    def decorate(view: Callable[..., Any]) -> Any:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            return view(*args, caller=check(), **kwargs)

        documented: Any = guarded
        for status, meaning in sorted(refusals.items(), reverse=True):
            documented = blueprint.alt_response(status, schema=ErrorSchema, description=meaning)(documented)
        return documented

    return decorate
