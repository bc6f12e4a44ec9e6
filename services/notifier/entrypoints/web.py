"""The notifier's web app: RFC 8058 one-click unsubscribe (contacts from partnership emails,
coordinators from their digest, their decision notices or both), and a health probe.

POST /unsubscribe/<token> unsubscribes without a login (mail clients send it by themselves);
GET shows a page with a button that POSTs and changes nothing, so link scanners that follow
links cannot unsubscribe anyone. The page saying an address is unsubscribed has a button that
POSTs to /resubscribe/<token>, which undoes it. A page about a signed link is in the language of
its email.
Run by gunicorn as 'services.notifier.entrypoints.web:create_app()'.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request

from partnermatch import i18n, metrics
from partnermatch.httpedge import harden, health
from partnermatch.logs import configure_logging
from partnermatch.topics import MATCH_DECISIONS, MATCHES
from services.notifier.adapters.redis_ledger import RedisDeliveryLedger
from services.notifier.config import NotifierSettings
from services.notifier.domain import COORDINATOR_KINDS, PARTNERSHIP
from services.notifier.render import ALL_COORDINATOR_NOTICES, PAGE_STYLE, render_page

logger = logging.getLogger(__name__)

_STYLE_HASH = base64.b64encode(hashlib.sha256(PAGE_STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_app(settings: NotifierSettings | None = None, deps: Any = None) -> Flask:
    if settings is None:
        configure_logging(os.environ)
        settings = NotifierSettings.from_env()
    if deps is None:
        from services.notifier.bootstrap import build_deps

        deps = build_deps(settings)
    app = Flask("partnermatch.notifier", static_folder=None)
    # The one-click body is 26 bytes.
    app.config.update(PM_SETTINGS=settings, MAX_CONTENT_LENGTH=16 * 1024)
    harden(app)
    ledger, tokens = deps.ledger, deps.tokens

    def page(kind: str, language: str | None, status: int, email: str = "", topic: str = PARTNERSHIP) -> Response:
        body = render_page(kind, language, email=email, action=request.path, topic=topic)
        return Response(body, status=status, mimetype="text/html")

    def reader_language() -> str:
        """For a page without a signed link to say whose it is: the shared negotiation (`?lang=`,
        the remembered choice, the browser's languages)."""
        return i18n.page_language(request)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # The token in the URL must not leak to other sites through the Referer header.
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/unsubscribe/<token>")
    def confirm(token: str) -> Response:
        found = tokens.verify(token)
        if found is None:
            return page("invalid", reader_language(), 400)
        if ledger.is_suppressed(found.email, found.kind):
            # Opened again after unsubscribing (a one-click mail client did it already): say so,
            # rather than ask again. A coordinator who left every kind is told that.
            every = found.kind in COORDINATOR_KINDS and all(
                ledger.is_suppressed(found.email, k) for k in COORDINATOR_KINDS
            )
            return page("done", found.language, 200, found.email, ALL_COORDINATOR_NOTICES if every else found.kind)
        return page("confirm", found.language, 200, found.email, found.kind)

    @app.post("/unsubscribe/<token>")
    def unsubscribe(token: str) -> Response:
        # RFC 8058: the body is "List-Unsubscribe=One-Click"; the signed token alone decides.
        found = tokens.verify(token)
        if found is None:
            return page("invalid", reader_language(), 400)
        # A coordinator's link unsubscribes from its kind of notice, or (the page's second button)
        # from every kind of coordinators' email.
        every = found.kind in COORDINATOR_KINDS and request.args.get("scope") == "all"
        kinds = COORDINATOR_KINDS if every else (found.kind,)
        if ledger.suppress(found.email, found.org_id, datetime.now(UTC).isoformat(), kinds):
            logger.info("unsubscribed", extra={"org": found.org_id, "kinds": ",".join(kinds)})
        return page("done", found.language, 200, found.email, ALL_COORDINATOR_NOTICES if every else found.kind)

    @app.get("/resubscribe/<token>")
    def resubscribe_opened(token: str) -> Response:
        """The address the button posts to, opened in a browser (from the address bar, a reload):
        the page of the link, which says where the address stands; a GET changes nothing."""
        return Response(status=303, headers={"Location": f"/unsubscribe/{token}"})

    @app.post("/resubscribe/<token>")
    def resubscribe(token: str) -> Response:
        """The "Subscribe again" button of the page that says the address is unsubscribed: the same
        signed link undoes it (an unsubscribe by mistake, or a mail client's one-click)."""
        found = tokens.verify(token)
        if found is None:
            return page("invalid", reader_language(), 400)
        every = found.kind in COORDINATOR_KINDS and request.args.get("scope") == "all"
        kinds = COORDINATOR_KINDS if every else (found.kind,)
        if ledger.unsuppress(found.email, kinds):
            logger.info("subscribed again", extra={"org": found.org_id, "kinds": ",".join(kinds)})
        return page("again", found.language, 200, found.email, ALL_COORDINATOR_NOTICES if every else found.kind)

    health(app, lambda: ledger.ping())
    # The consumer processes serve no HTTP: this app reports their lag and the ledger they keep.
    scrape = (
        RedisDeliveryLedger(metrics.short_timeout_copy(ledger.r), ledger.prefix, ledger.keep_s)
        if isinstance(ledger, RedisDeliveryLedger)
        else ledger
    )
    metrics.expose(
        app,
        [
            metrics.DeliveryStatesCollector(scrape.counts),
            metrics.ConsumerLagCollector(
                settings.group_id,
                metrics.lag_reader(settings.kafka_bootstrap, settings.group_id, [MATCH_DECISIONS, MATCHES]),
            ),
        ],
    )

    @app.errorhandler(404)
    def not_found(_exc: Exception) -> Response:
        return page("invalid", reader_language(), 404)

    @app.errorhandler(405)
    def not_allowed(_exc: Exception) -> Response:
        return page("invalid", reader_language(), 405)

    return app
