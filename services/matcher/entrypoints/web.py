"""The matcher's HTTP side: the review API, the coordinators' web page and the partnerships API for
the other services, in one Flask app.

Run by gunicorn as 'services.matcher.entrypoints.web:create_app()'.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from partnermatch import metrics
from partnermatch.httpedge import ExplainingApi, harden, health, json_bodies_only
from partnermatch.logs import configure_logging
from partnermatch.topics import PROFILES
from services.matcher.bootstrap import MatcherDeps, build_deps
from services.matcher.config import MatcherSettings
from services.matcher.engine.render import default_lexicon
from services.matcher.entrypoints.api import api
from services.matcher.entrypoints.pages import page_error, pages
from services.matcher.entrypoints.partnerships import partnerships

CSP = (
    "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_app(settings: MatcherSettings | None = None, deps: MatcherDeps | None = None) -> Flask:
    if settings is None:
        configure_logging(os.environ)
        settings = MatcherSettings.from_env()
    app = Flask("partnermatch.matcher", static_folder=None)
    app.config.update(
        PM_SETTINGS=settings,
        # Without a configured key, sessions live as long as this process (fine for one local run).
        SECRET_KEY=settings.secret_key or secrets.token_hex(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_NAME="pm_session",
        MAX_CONTENT_LENGTH=64 * 1024,
        API_TITLE="partnermatch matcher review",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    harden(app)
    json_bodies_only(app)  # the coordinators' page takes form posts; the review API takes JSON only
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    if deps is None:
        # the reasons' renderer and its lexicon load with the worker, not on a coordinator's first
        # request (seconds on a busy machine: the slow tail of bench/post_visible.py)
        default_lexicon()
    app.extensions["partnermatch.matcher"] = deps or build_deps(settings)

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    health(app, lambda: app.extensions["partnermatch.matcher"].state.r.ping())
    _expose_metrics(app, settings)

    smorest = ExplainingApi(app, page_error=page_error)
    smorest.register_blueprint(api)
    smorest.register_blueprint(partnerships)
    app.register_blueprint(pages)
    _limit_logins(app, settings)
    return app


def _expose_metrics(app: Flask, settings: MatcherSettings) -> None:
    """GET /metrics: requests, the matcher's outbox and its consumers' lag on `profiles` (this app
    reports for the consumer processes, which serve no HTTP)."""
    outbox = app.extensions["partnermatch.matcher"].state.outbox
    scrape = metrics.short_timeout_copy(outbox.r)
    metrics.expose(
        app,
        [
            metrics.OutboxDepthCollector({"matcher": lambda: scrape.xlen(outbox.stream)}),
            metrics.ConsumerLagCollector(
                settings.group_id, metrics.lag_reader(settings.kafka_bootstrap, settings.group_id, [PROFILES])
            ),
        ],
    )


def _limit_logins(app: Flask, settings: MatcherSettings) -> None:
    """Failed logins on the page, counted per client address in Redis (every worker shares them);
    past the limit even the right password waits. Profiles counts failures per account."""
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        key_prefix="matcher:rate",
        strategy="fixed-window",
        headers_enabled=True,
    )
    views: dict[str, Any] = app.view_functions
    views["pages.login"] = limiter.limit(
        settings.login_rate_limit,
        methods=["POST"],
        scope="page-login",
        deduct_when=lambda response: response.status_code == 401,
    )(views["pages.login"])
