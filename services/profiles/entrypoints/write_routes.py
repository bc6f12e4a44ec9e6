"""The API's two write routes, POST /v1/organisations and PATCH /v1/organisations/<org_id>, answered
in front of Flask when nothing is refused: a write that validates is answered here with the same
schemas, the same use cases and the same response as the views in app.py give; anything else (a
body that is not plain JSON within the limits, a field error, no or a wrong token, an unknown
cluster or organisation) goes on to the Flask app unchanged, which answers it as it always has.

Why: Flask's request context, the hooks every request runs (the edge's body checks, the rate
limiter, the session, CSRF) and flask-smorest's and webargs' wrappers cost a durable write more CPU
than its validation and its Redis transaction together (bench/write_path.py). The views stay what
the OpenAPI document describes; this answers their successful requests sooner. The Flask app's
request hooks do not run for the writes answered here: a hook added there must be weighed for these
routes too (tests/integration/profiles/test_write_routes.py lists the hooks this was checked against).
No I/O of its own: the request body, and the store through the use cases.
"""

from __future__ import annotations

import io
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from flask import Flask
from marshmallow import RAISE, Schema, ValidationError, fields, missing
from marshmallow.decorators import POST_DUMP, POST_LOAD, PRE_DUMP, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from werkzeug.http import HTTP_STATUS_CODES

from partnermatch import metrics
from partnermatch.httpedge import compact_json_line
from services.profiles import domain, services
from services.profiles.adapters.redis_store import NotFound
from services.profiles.bootstrap import ProfilesDeps
from services.profiles.config import ProfilesSettings

REGISTER_ROUTE = "/v1/organisations"
EDIT_ROUTE = "/v1/organisations/<org_id>"  # the rule's template, as the metrics label it
_ORG_PATH = re.compile(r"/v1/organisations/([A-Za-z0-9_-]{1,100})")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_STATUS_LINES = {status: f"{status} {HTTP_STATUS_CODES[status].upper()}" for status in (200, 201)}


class Refused(Exception):
    """Not for this path to answer: the Flask app answers the request instead."""


def _json_body(environ: dict[str, Any], app: Flask) -> dict[str, Any]:
    """The JSON object of the body, read whole; Refused unless it is one, sent as application/json
    with a Content-Length within the app's limit, valid UTF-8 within the edge's JSON limits."""
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type.partition(";")[0].strip().lower() != "application/json":
        raise Refused
    if environ.get("HTTP_TRANSFER_ENCODING"):
        raise Refused
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        raise Refused from None
    if not 0 < length <= app.config["MAX_CONTENT_LENGTH"]:
        raise Refused
    body = environ["wsgi.input"].read(length)
    # From here on the Flask app reads the body from this copy, whatever happens.
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) != length:
        raise Refused
    try:
        data = app.json.loads(body)  # httpedge's reader, with the limits the app was given
    except ValueError:  # not UTF-8, not JSON, or beyond the limits
        raise Refused from None
    if not isinstance(data, dict):
        raise Refused
    return data


def _valid(schema: Schema, quick: Load, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return quick(data)
    except _NotPlain:
        pass
    try:
        return schema.load(data)
    except ValidationError:
        raise Refused from None


Dump = Callable[[Any], Any]


class _NotPlain(Exception):
    """A value a plain dump does not copy as it is: the schema dumps it."""


def _plain_field(one: fields.Field[Any]) -> Callable[[Any], Any]:
    """How a value of the field is dumped, for the values it takes exactly as marshmallow writes them."""
    if isinstance(one, fields.String) and type(one)._serialize is fields.String._serialize:  # Email, URL too
        kind: type = str
    elif type(one) is fields.Integer and not one.as_string:
        kind = int
    elif type(one) is fields.Boolean:
        kind = bool
    elif type(one) is fields.List:
        inner = _plain_field(one.inner)
        return lambda value: None if value is None else [inner(item) for item in _exactly(list, value)]
    elif type(one) is fields.Nested and not one.many and isinstance(one.schema, Schema):
        nested = _plain_schema(one.schema)
        return lambda value: None if value is None else nested(value)
    else:
        raise TypeError(f"no plain dump of {type(one).__name__}")
    return lambda value: None if value is None else _exactly(kind, value)


def _exactly(kind: type, value: Any) -> Any:
    if type(value) is not kind:
        raise _NotPlain
    return value


def _plain_schema(schema: Schema) -> Dump:
    if schema._hooks.get(PRE_DUMP) or schema._hooks.get(POST_DUMP) or schema.many:
        raise TypeError("no plain dump of a schema with dump hooks")
    dumped = [(name, one.data_key or name, _plain_field(one)) for name, one in schema.dump_fields.items()]

    def dump(obj: Any) -> dict[str, Any]:
        if type(obj) is not dict:
            raise _NotPlain
        out = {}
        for name, key, value_of in dumped:
            if name not in obj:  # marshmallow looks further (attributes, defaults)
                raise _NotPlain
            out[key] = value_of(obj[name])
        return out

    return dump


Load = Callable[[Any], Any]
FieldLoad = Callable[[Any, dict[str, Any]], Any]  # (a field's value, the document it is in) -> loaded


def _validated(validators: Sequence[Callable[[Any], Any]], value: Any) -> Any:
    for valid in validators:
        if valid(value) is False:  # marshmallow counts a False answer as a failure too
            raise _NotPlain
    return value


def _plain_nested(one: fields.Nested) -> bool:
    return not one.many and isinstance(one.schema, Schema) and one.unknown is None


def _plain_field_load(name: str, one: fields.Field[Any]) -> FieldLoad:
    """How the field loads a value: quicker than marshmallow for strings (Email and URL too),
    booleans, lists of them and plain nested documents, each of exactly its JSON type; any other
    field through its own `deserialize`, as Schema.load calls it. _NotPlain where marshmallow
    would refuse the value (or might load it otherwise)."""
    if one.pre_load or one.post_load:
        raise TypeError(f"no plain load of {name}: a field with its own pre_load or post_load")
    field_class = type(one)
    as_marshmallow = (
        field_class.deserialize is fields.Field.deserialize and field_class._validate is fields.Field._validate
    )
    convert: FieldLoad
    if as_marshmallow and isinstance(one, fields.String) and field_class._deserialize is fields.String._deserialize:
        convert = lambda value, _document: _exactly(str, value)  # noqa: E731
    elif (
        isinstance(one, fields.Boolean) and field_class is fields.Boolean and True in one.truthy and False in one.falsy
    ):
        convert = lambda value, _document: _exactly(bool, value)  # noqa: E731
    elif isinstance(one, fields.List) and field_class is fields.List:
        inner = _plain_field_load(name, one.inner)
        convert = lambda value, document: [inner(item, document) for item in _exactly(list, value)]  # noqa: E731
    elif isinstance(one, fields.Nested) and field_class is fields.Nested and _plain_nested(one):
        nested = _plain_schema_load(one.schema)
        convert = lambda value, _document: nested(value)  # noqa: E731
    else:

        def marshmallows(value: Any, document: dict[str, Any]) -> Any:
            try:
                return one.deserialize(value, name, document)
            except ValidationError:
                raise _NotPlain from None

        return marshmallows
    validators, allow_none = tuple(one.validators), one.allow_none

    def load(value: Any, document: dict[str, Any]) -> Any:
        if value is None:
            if allow_none:
                return None
            raise _NotPlain
        return _validated(validators, convert(value, document))

    return load


def _plain_schema_load(schema: Schema) -> Load:
    hooks = schema._hooks
    if hooks.get(POST_LOAD) or hooks.get(VALIDATES) or schema.many or schema.partial or schema.unknown != RAISE:
        raise TypeError("no plain load of a schema with post_load or field validator hooks, many, partial or unknown")
    if any(
        many or options.get("pass_original")
        for tag in (PRE_LOAD, VALIDATES_SCHEMA)
        for _, many, options in hooks.get(tag, ())
    ):
        raise TypeError("no plain load of a schema whose hooks take the collection or the original data")
    before = [getattr(schema, name) for name, _, _ in hooks.get(PRE_LOAD, ())]
    checks = [getattr(schema, name) for name, _, _ in hooks.get(VALIDATES_SCHEMA, ())]
    loads = []
    for name, one in schema.load_fields.items():
        if one.attribute is not None and "." in one.attribute:
            raise TypeError(f"no plain load of {name}: marshmallow nests what it loads")
        loads.append(
            (one.data_key or name, one.attribute or name, _plain_field_load(name, one), one.required, one.load_default)
        )
    known = frozenset(key for key, *_ in loads)

    def load(document: Any) -> dict[str, Any]:
        if type(document) is not dict:
            raise _NotPlain
        for hook in before:
            document = hook(document, many=False, partial=schema.partial, unknown=schema.unknown)
        if type(document) is not dict or not known.issuperset(document):
            raise _NotPlain
        loaded = {}
        for key, attribute, load_value, required, default in loads:
            if key in document:
                loaded[attribute] = load_value(document[key], document)
            elif required:
                raise _NotPlain
            elif default is not missing:
                loaded[attribute] = default() if callable(default) else default
        for check in checks:
            check(loaded, many=False, partial=schema.partial, unknown=schema.unknown)
        return loaded

    return load


def plain_load(schema: Schema) -> Load:
    """`schema.load` of the plainest valid documents, quicker: a dict of known fields only, each value
    of exactly the JSON type its field takes (str, bool, lists and dicts of them, or None where
    allowed), run through the schema's pre_load hooks, its fields' validators and its schema
    validators as marshmallow runs them, gives what marshmallow gives. It raises _NotPlain for
    anything else (whatever marshmallow refuses among it): `schema.load` is then the answer, with
    its errors. Schemas with other hooks (post_load, field validators) are refused here."""
    quick = _plain_schema_load(schema)

    def load(document: Any) -> Any:
        try:
            return quick(document)
        except ValidationError:
            raise _NotPlain from None

    return load


def plain_dump(schema: Schema) -> Dump:
    """`schema.dump`, quicker for plain documents: a dict holding every field the schema dumps,
    each value of exactly the type marshmallow writes for its field (str, int, bool, lists and
    dicts of them, or None) is copied as it is, which is what marshmallow gives for it; any other
    document is dumped by the schema. Schemas with other fields or with dump hooks are refused here."""
    telling = _telling_dump(schema)
    return lambda obj: telling(obj)[0]


def _telling_dump(schema: Schema) -> Callable[[Any], tuple[Any, bool]]:
    """plain_dump(schema), saying whether the plain dump made the document: then it holds only
    str, int, bool, None, lists and dicts (no float)."""
    quick = _plain_schema(schema)

    def dump(obj: Any) -> tuple[Any, bool]:
        try:
            return quick(obj), True
        except _NotPlain:
            return schema.dump(obj), False

    return dump


class WriteRoutes:
    """WSGI middleware: the two write routes' successful requests, answered as the views would;
    every other request, and every refused one, passed on to `app_wsgi` (the Flask app)."""

    def __init__(
        self,
        app: Flask,
        app_wsgi: WSGIApp,
        registration: Schema,
        registered: Schema,
        edit: Schema,
        edited: Schema,
        headers: Sequence[tuple[str, str]],
    ) -> None:
        self.app = app
        self.app_wsgi = app_wsgi
        self.registration, self.edit = registration, edit
        self.quick_registration, self.quick_edit = plain_load(registration), plain_load(edit)
        self.registered, self.edited = _telling_dump(registered), _telling_dump(edited)
        self.headers = list(headers)  # what the app's hooks add to every answer
        # Each label set's counter and histogram, as `labels` gives them (it looks them up under a lock)
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def _deps(self) -> ProfilesDeps:
        return self.app.extensions["partnermatch.profiles"]

    def _settings(self) -> ProfilesSettings:
        return self.app.config["PM_SETTINGS"]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO", "")
        if method == "POST" and path == REGISTER_ROUTE:
            route, handle = REGISTER_ROUTE, self._register
        elif method == "PATCH" and (found := _ORG_PATH.fullmatch(path)):
            org_id = found.group(1)
            route, handle = EDIT_ROUTE, lambda data: self._edit(environ, org_id, data)
        else:
            return self.app_wsgi(environ, start_response)
        if self.app.debug:  # the views answer in their debug layout (indented JSON)
            return self.app_wsgi(environ, start_response)
        started = time.perf_counter()
        try:
            (body, plain), status = handle(_json_body(environ, self.app))
        except Refused:
            return self.app_wsgi(environ, start_response)
        except Exception:  # noqa: BLE001 - answered by Flask's error handlers, as a view's would be
            return self._flask_answers_error(environ, start_response)
        # As jsonify writes it (the app's JSON provider, compact, a newline at the end), with the
        # headers a view's answer gets.
        payload = compact_json_line(self.app.json, body, holds_no_float=plain)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), *self.headers]
        labels = (method, route, str(status))
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = (metrics.REQUESTS.labels(*labels), metrics.LATENCY.labels(*labels))
        series[0].inc()
        series[1].observe(time.perf_counter() - started)
        start_response(_STATUS_LINES[status], headers)
        return [payload]

    def _flask_answers_error(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Flask's answer to the exception being handled, as if the view had raised it: its error
        handlers (a store out of reach is a 503) and its hooks. Not passed on: a write may have
        been made."""
        with self.app.request_context(environ):
            self.app.preprocess_request()  # the hooks that start the timer and read the body
            try:
                answer = self.app.handle_user_exception(sys.exc_info()[1])  # type: ignore[arg-type]
            except Exception as unhandled:  # noqa: BLE001 - no handler: Flask's 500, logged
                answer = self.app.handle_exception(unhandled)
            return self.app.finalize_request(answer)(environ, start_response)

    def _register(self, data: dict[str, Any]) -> tuple[tuple[Any, bool], int]:
        data = _valid(self.registration, self.quick_registration, data)
        if services.text_size_errors(data, self._settings().max_text_chars):
            raise Refused
        store = self._deps().store
        try:
            org, token = services.register_org(store, data)
        except services.UnknownCluster:
            raise Refused from None
        return self.registered(registered_answer(store, org, token)), 201

    def _edit(self, environ: dict[str, Any], org_id: str, data: dict[str, Any]) -> tuple[tuple[Any, bool], int]:
        data = _valid(self.edit, self.quick_edit, data)
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused
        settings, store = self._settings(), self._deps().store
        caller, stored = services.authenticate_for_change(
            store, token.strip(), settings.admin_token, settings.service_token, org_id
        )
        if caller is None or caller.role not in (domain.ADMIN, domain.ORGANISATION):
            raise Refused
        if not data or services.text_size_errors(data, settings.max_text_chars):
            raise Refused
        try:
            org = services.update_org(store, caller, org_id, data, stored)
        except (services.Forbidden, NotFound, services.UnknownCluster):
            raise Refused from None
        return self.edited(domain.private_view(org)), 200


def registered_answer(store: Any, org: dict[str, Any], token: str) -> dict[str, Any]:
    """What a registration answers (before RegisteredSchema dumps it): the profile, its token once."""
    return {"organisation": domain.private_view(org), "token": token, "expires_in": store.org_token_ttl_s}
