"""The profiles service's HTTP side: the JSON API (flask-smorest: validation + OpenAPI from one
source) under /v1, and the organisations' own pages (entrypoints/pages.py), in one Flask app.

Run by gunicorn as 'services.profiles.entrypoints.app:create_app()'.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, g, request
from flask.views import MethodView
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

from partnermatch import i18n, metrics, vocabulary
from partnermatch.httpedge import ApiBlueprint, ExplainingApi, abort, guard, harden, health, json_bodies_only
from partnermatch.logs import configure_logging
from services.profiles import domain, services
from services.profiles.adapters.redis_store import Conflict, NotFound
from services.profiles.bootstrap import ProfilesDeps, build_deps, signin_mailer
from services.profiles.config import ProfilesSettings
from services.profiles.entrypoints.pages import EMAIL_LIMIT_KEY, LIMITER, page_error, pages
from services.profiles.entrypoints.write_routes import WriteRoutes, registered_answer
from services.profiles.schemas import (
    ClusterCreateSchema,
    ClusterSchema,
    ContactsSchema,
    CoordinatorCreateSchema,
    CoordinatorSchema,
    LoginSchema,
    OrganisationCreateSchema,
    OrganisationPrivateSchema,
    OrganisationPublicSchema,
    OrganisationQuerySchema,
    OrganisationTokenSchema,
    OrganisationUpdateSchema,
    PrincipalSchema,
    RegisteredSchema,
    SessionSchema,
    VocabularyQuerySchema,
    VocabularySchema,
)
from services.profiles.signin import SigninLinks

logger = logging.getLogger(__name__)

clusters = ApiBlueprint("clusters", __name__, url_prefix="/v1/clusters", description="Clusters and their coordinators")
orgs = ApiBlueprint("organisations", __name__, url_prefix="/v1/organisations", description="Organisation profiles")
auth = ApiBlueprint("auth", __name__, url_prefix="/v1/auth", description="Logins and tokens")
coordinators = ApiBlueprint("coordinators", __name__, url_prefix="/v1/coordinators", description="Coordinators")
vocab = ApiBlueprint(
    "vocabulary",
    __name__,
    url_prefix="/v1/vocabulary",
    description="What structured needs are chosen from, labelled for forms",
)
# Request schemas are given as instances: given a class, webargs builds a schema (copying each of
# its fields) for every request, which cost a write more than validating it. The write routes'
# schemas are shared with write_routes.WriteRoutes, which answers those routes' valid requests.
REGISTRATION = OrganisationCreateSchema()
REGISTERED = RegisteredSchema()
EDIT = OrganisationUpdateSchema()
PRIVATE_PROFILE = OrganisationPrivateSchema()


def _deps() -> ProfilesDeps:
    from flask import current_app

    return current_app.extensions["partnermatch.profiles"]


def _settings() -> ProfilesSettings:
    from flask import current_app

    return current_app.config["PM_SETTINGS"]


def _caller() -> domain.Principal | None:
    if "principal" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        principal = None
        if scheme.lower() == "bearer" and token.strip():
            s = _settings()
            principal = services.authenticate(_deps().store, token.strip(), s.admin_token, s.service_token)
            if principal is None:
                abort(401, message="Unknown or expired token.")
        g.principal = principal
    return g.principal


def _require(*roles: str) -> domain.Principal:
    who = _caller()
    if who is None:
        abort(401, message="This needs a bearer token.")
    if who.role not in roles:
        abort(403, message="Not allowed for your role.")
    return who


UNAUTHORISED = "No bearer token, or an unknown or expired one"


def _only(blueprint: ApiBlueprint, *roles: str, forbidden: str | None = None) -> Callable[..., Any]:
    """Declared access (httpedge.guard): the view runs for a caller of one of `roles`, handed to it
    as `caller`; anyone else gets a 401 (no or an unknown token) or a 403, both documented."""
    return guard(
        blueprint,
        functools.partial(_require, *roles),
        {401: UNAUTHORISED, 403: forbidden or f"A token of another role (this is for: {', '.join(roles)})"},
    )


def _check_text_sizes(data: dict[str, Any]) -> None:
    too_long = services.text_size_errors(data, _settings().max_text_chars)
    if too_long:
        abort(422, errors={"json": too_long}, message="Validation failed.")


# ---- clusters ---------------------------------------------------------------------------------


@clusters.route("")
class Clusters(MethodView):
    @clusters.response(200, ClusterSchema(many=True))
    def get(self):
        """List clusters (public)."""
        return _deps().store.list_clusters()

    @clusters.arguments(ClusterCreateSchema())
    @clusters.response(201, ClusterSchema)
    @_only(clusters, domain.ADMIN)
    def post(self, data, caller):
        """Create a cluster (admin)."""
        try:
            return services.create_cluster(_deps().store, data)
        except Conflict:
            abort(409, message=f"Cluster {data['id']} exists.")


@clusters.route("/<cluster_id>")
class ClusterById(MethodView):
    @clusters.response(200, ClusterSchema)
    def get(self, cluster_id):
        """Read a cluster (public)."""
        cluster = _deps().store.get_cluster(cluster_id)
        if cluster is None:
            abort(404, message="No such cluster.")
        return cluster


@clusters.route("/<cluster_id>/coordinators")
class ClusterCoordinators(MethodView):
    @clusters.response(200, CoordinatorSchema(many=True))
    @clusters.alt_response(404, description="No such cluster")
    @_only(
        clusters,
        domain.ADMIN,
        domain.SERVICE,
        domain.COORDINATOR,
        forbidden="An organisation's token, or a coordinator of another cluster",
    )
    def get(self, cluster_id, caller):
        """List a cluster's coordinators with their address and language (admin, services, or a
        coordinator of that cluster). The notifier reads it to email each of them the cluster's
        digest and decision notices."""
        if caller.role == domain.COORDINATOR and caller.cluster_id != cluster_id:
            abort(403, message="Not your cluster.")
        if _deps().store.get_cluster(cluster_id) is None:
            abort(404, message="No such cluster.")
        return _deps().store.cluster_coordinators(cluster_id)

    @clusters.arguments(CoordinatorCreateSchema())
    @clusters.response(201, CoordinatorSchema)
    @clusters.alt_response(404, description="No such cluster")
    @clusters.alt_response(409, description="The username is taken")
    @_only(clusters, domain.ADMIN)
    def post(self, data, cluster_id, caller):
        """Issue a coordinator credential for a cluster (admin)."""
        try:
            return services.create_coordinator(_deps().store, cluster_id, data)
        except services.UnknownCluster:
            abort(404, message="No such cluster.")
        except Conflict:
            abort(409, message=f"Username {data['username']} is taken.")


@coordinators.route("/<username>")
class CoordinatorByName(MethodView):
    @coordinators.response(200, CoordinatorSchema)
    @coordinators.alt_response(404, description="No such coordinator")
    @_only(
        coordinators,
        domain.ADMIN,
        domain.SERVICE,
        domain.COORDINATOR,
        forbidden="An organisation's token, or another coordinator's",
    )
    def get(self, username, caller):
        """A coordinator's contact (admin, services, or the coordinator)."""
        if caller.role == domain.COORDINATOR and caller.username != username:
            abort(403, message="Not you.")
        found = _deps().store.get_coordinator(username)
        if found is None:
            abort(404, message="No such coordinator.")
        return found


# ---- auth -------------------------------------------------------------------------------------


@auth.route("/login")
class Login(MethodView):
    @auth.arguments(LoginSchema())
    @auth.response(200, SessionSchema)
    @auth.alt_response(401, description="Wrong username or password")
    @auth.alt_response(
        429,
        description="Too many failed logins for this account or from this address; "
        "see Retry-After (PROFILES_LOGIN_RATE_LIMIT)",
    )
    def post(self, data):
        """A coordinator logs in with username and password and gets a bearer token."""
        session = services.login(_deps().store, data["username"], data["password"], _settings().session_ttl_s)
        if session is None:
            abort(401, message="Wrong username or password.")
        return session


@auth.route("/logout")
class Logout(MethodView):
    @auth.response(204)
    @_only(auth, domain.COORDINATOR, domain.ADMIN, domain.SERVICE, domain.ORGANISATION)
    def post(self, caller):
        """A coordinator's login token is revoked at once (the coordinators' page calls this when
        they log out). Organisation and service tokens are not login tokens: 204, nothing revoked."""
        header = request.headers.get("Authorization", "")
        services.logout(_deps().store, header.partition(" ")[2].strip())


@auth.route("/whoami")
class WhoAmI(MethodView):
    @auth.response(200, PrincipalSchema)
    def get(self):
        """Who the bearer token belongs to (other services use it to check a coordinator's token)."""
        who = _caller()
        if who is None:
            abort(401, message="This needs a bearer token.")
        return who.to_dict()


# ---- organisations ----------------------------------------------------------------------------


@orgs.route("")
class Organisations(MethodView):
    @orgs.arguments(OrganisationQuerySchema(), location="query")
    @orgs.response(200, OrganisationPublicSchema(many=True))
    @orgs.paginate()
    def get(self, query, pagination_parameters):
        """List profiles, paged (public fields; contacts for the admin and services)."""
        who = _caller()
        store = _deps().store
        cluster_id = query.get("cluster_id")
        pagination_parameters.item_count = store.count_orgs(cluster_id)
        page = store.list_orgs(pagination_parameters.first_item, pagination_parameters.page_size, cluster_id)
        return [domain.private_view(o) if domain.can_read_private(who, o) else domain.public_view(o) for o in page]

    @orgs.arguments(REGISTRATION)
    @orgs.response(201, REGISTERED)
    def post(self, data):
        """Register an organisation; the answer carries its own token (shown once)."""
        _check_text_sizes(data)
        try:
            org, token = services.register_org(_deps().store, data)
        except services.UnknownCluster:
            abort(422, errors={"json": {"cluster_id": ["No such cluster."]}}, message="Validation failed.")
        return registered_answer(_deps().store, org, token)


@orgs.route("/<org_id>")
class OrganisationById(MethodView):
    @orgs.response(200, PRIVATE_PROFILE)
    def get(self, org_id):
        """Read a profile: public fields for anyone, contacts for the organisation itself."""
        org = _deps().store.get_org(org_id)
        if org is None:
            abort(404, message="No such organisation.")
        who = _caller()
        return domain.private_view(org) if domain.can_read_private(who, org) else domain.public_view(org)

    @orgs.arguments(EDIT)
    @orgs.response(200, PRIVATE_PROFILE)
    @orgs.alt_response(404, description="No such organisation")
    @_only(orgs, domain.ADMIN, domain.ORGANISATION, forbidden="Another organisation's token, or another role's")
    def patch(self, data, org_id, caller):
        """Edit a profile (the organisation itself or the admin); only the fields given change."""
        _check_text_sizes(data)
        if not data:
            abort(422, errors={"json": {"_schema": ["Nothing to change."]}}, message="Validation failed.")
        try:
            return domain.private_view(services.update_org(_deps().store, caller, org_id, data))
        except services.ClusterMoveForbidden:
            abort(403, message="Only the administrator moves an organisation to another cluster.")
        except services.Forbidden:
            abort(403, message="You may only edit your own organisation.")
        except NotFound:
            abort(404, message="No such organisation.")
        except services.UnknownCluster:
            abort(422, errors={"json": {"cluster_id": ["No such cluster."]}}, message="Validation failed.")

    @orgs.response(204)
    @orgs.alt_response(404, description="No such organisation")
    @_only(orgs, domain.ADMIN, domain.ORGANISATION, forbidden="Another organisation's token, or another role's")
    def delete(self, org_id, caller):
        """Delete a profile and everything personal in it (the organisation itself or the admin)."""
        try:
            services.delete_org(_deps().store, caller, org_id)
        except services.Forbidden:
            abort(403, message="You may only delete your own organisation.")
        except NotFound:
            abort(404, message="No such organisation.")


@orgs.route("/<org_id>/token")
class OrganisationToken(MethodView):
    @orgs.response(200, OrganisationTokenSchema)
    @orgs.alt_response(404, description="No such organisation")
    @_only(orgs, domain.ADMIN, domain.ORGANISATION, forbidden="Another organisation's token")
    def post(self, org_id, caller):
        """Issue a new API token (the organisation itself or the admin); the old one stops working at
        once. Shown this once."""
        try:
            return services.rotate_org_token(_deps().store, caller, org_id)
        except services.Forbidden:
            abort(403, message="You may only rotate your own organisation's token.")
        except NotFound:
            abort(404, message="No such organisation.")

    @orgs.response(204)
    @orgs.alt_response(404, description="No such organisation")
    @_only(orgs, domain.ADMIN, domain.ORGANISATION, forbidden="Another organisation's token")
    def delete(self, org_id, caller):
        """Revoke the organisation's API token with no new one (the admin, e.g. after a leak, or the
        organisation itself). Its pages still sign in by emailed link."""
        try:
            services.revoke_org_token(_deps().store, caller, org_id)
        except services.Forbidden:
            abort(403, message="You may only revoke your own organisation's token.")
        except NotFound:
            abort(404, message="No such organisation.")


@orgs.route("/<org_id>/contacts")
class OrganisationContacts(MethodView):
    @orgs.response(200, ContactsSchema)
    @orgs.alt_response(404, description="No such organisation")
    @_only(
        orgs,
        domain.ADMIN,
        domain.SERVICE,
        domain.ORGANISATION,
        forbidden="Another organisation's token, or a coordinator's",
    )
    def get(self, org_id, caller):
        """Contact persons (the organisation itself, the admin, services such as the notifier)."""
        org = _deps().store.get_org(org_id)
        if org is None:
            if caller.role == domain.ORGANISATION and caller.org_id != org_id:
                abort(403, message="Not your organisation.")
            abort(404, message="No such organisation.")
        if not domain.can_read_private(caller, org):
            abort(403, message="Not your organisation.")
        return {"org_id": org_id, "name": org["name"], "contacts": org.get("contacts", [])}


# ---- vocabulary -------------------------------------------------------------------------------


@vocab.route("")
class Vocabulary(MethodView):
    @vocab.arguments(VocabularyQuerySchema(), location="query")
    @vocab.response(200, VocabularySchema)
    def get(self, query):
        """What structured needs are chosen from, labelled in `lang` (public).

        The ids of `sectors` and `activities` are what `offers` and `seeks` take; the codes of
        `countries` are what `seeks_countries` takes."""
        # The same for everyone until the next deployment: browsers and proxies may keep it.
        return (
            vocabulary.vocabulary(query["lang"], fallback_countries=domain.COUNTRIES),
            200,
            {"Cache-Control": "public, max-age=3600"},
        )


# ---- the app ----------------------------------------------------------------------------------


# Pages: no script at all, styles from our own file, forms only to ourselves, never in a frame.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Every answer carries these, unless it set its own.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)


def create_app(settings: ProfilesSettings | None = None, deps: ProfilesDeps | None = None) -> Flask:
    if settings is None:
        configure_logging(os.environ)
        settings = ProfilesSettings.from_env()
    if not settings.secret_key:
        logger.warning("PROFILES_SECRET_KEY is not set: page sessions and sign-in links work in this process only")
    app = Flask("partnermatch.profiles", static_folder=None)
    app.config.update(
        PM_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SECRET_KEY=settings.secret_key or secrets.token_hex(32),
        SESSION_COOKIE_NAME="pm_org_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        # Checked by the pages only (pages.py): the JSON API takes bearer tokens, not cookies.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=settings.page_session_ttl_s,
        API_TITLE="partnermatch profiles",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}, {}],
        },
    )
    harden(app)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    deps = deps or build_deps(settings)
    if deps.signin_mailer is None:
        deps.signin_mailer = signin_mailer(settings)
    app.extensions["partnermatch.profiles"] = deps
    app.extensions["partnermatch.profiles.signin"] = SigninLinks(app.config["SECRET_KEY"], settings.signin_link_ttl_s)
    vocabulary.get_vocabulary()  # read once now, not in the first request that names a need
    i18n.install(app.jinja_env, "organisations", lambda: g.get("lang", i18n.DEFAULT))
    CSRFProtect(app)

    json_bodies_only(app)  # the pages take form posts; the API takes JSON only
    app.after_request(_security_headers)

    health(app, lambda: app.extensions["partnermatch.profiles"].store.r.ping())
    outbox = deps.store.outbox
    scrape = metrics.short_timeout_copy(outbox.r)
    metrics.expose(app, [metrics.OutboxDepthCollector({"profiles": lambda: scrape.xlen(outbox.stream)})])

    api = ExplainingApi(app, page_error=page_error)
    api.register_blueprint(clusters)
    api.register_blueprint(orgs)
    api.register_blueprint(auth)
    api.register_blueprint(coordinators)
    api.register_blueprint(vocab)
    app.register_blueprint(pages)
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        key_prefix="profiles:rate",
        strategy="fixed-window",
        headers_enabled=True,
    )
    app.extensions[LIMITER] = limiter  # the pages' 429 answer says when the breached limit lets go
    _limit_pages(app, settings, limiter)
    _limit_logins(app, settings, limiter)

    app.wsgi_app = WriteRoutes(  # type: ignore[method-assign]
        app, app.wsgi_app, REGISTRATION, REGISTERED, EDIT, PRIVATE_PROFILE, SECURITY_HEADERS
    )
    return app


def _security_headers(response: Any) -> Any:
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name, value)
    return response


def _limit_pages(app: Flask, settings: ProfilesSettings, limiter: Limiter) -> None:
    """Rate limits of the forms that cost us (a profile, an email), counted in Redis so every worker
    shares them: registrations per client address; sign-in requests per client address and per
    email address asked for (nobody's mailbox gets flooded, and a 429 says nothing about whether
    the address is known)."""

    def email_asked() -> str:
        # every spelling of one address (its domain in its script or as IDNA) counts as that address
        email = domain.canonical_address((request.form.get("email") or "")[:254]).lower()
        return EMAIL_LIMIT_KEY + hashlib.sha256(email.encode("utf-8")).hexdigest()

    views: dict[str, Any] = app.view_functions  # each view wrapped by its rate limit
    # Only a registration made counts (the page redirects to the new profile): a form sent back with
    # its errors, or with another contact row, costs nothing, and a person fixing typos, or an
    # office behind one address, must not be locked out for the hour by them. A form sent again
    # (a double click) opens the organisation it made, and counts once.
    views["pages.register"] = limiter.limit(
        settings.register_rate_limit, methods=["POST"], deduct_when=lambda response: bool(g.get("registered"))
    )(views["pages.register"])
    signin_view = limiter.limit(settings.signin_rate_limit, methods=["POST"])(views["pages.signin"])
    views["pages.signin"] = limiter.limit(
        settings.signin_rate_limit, methods=["POST"], key_func=email_asked, scope="signin-email"
    )(signin_view)


def _limit_logins(app: Flask, settings: ProfilesSettings, limiter: Limiter) -> None:
    """Coordinator logins: failures are counted per account and per client address, and past the
    limit every attempt waits, the right password too, so guessing costs an attacker time and
    ties up no worker in password hashing. The coordinators' page calls with the service token:
    it counts its visitors' addresses itself (one address here would be all of them)."""

    def account() -> str:
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
        return "account:" + hashlib.sha256(str(name or "").strip().lower().encode("utf-8")).hexdigest()

    def from_the_page() -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and domain.same_secret(token.strip(), settings.service_token)

    def failed(response: Any) -> bool:
        return response.status_code == 401

    views: dict[str, Any] = app.view_functions  # each view wrapped by its rate limit
    per_address = limiter.limit(
        settings.login_rate_limit,
        methods=["POST"],
        scope="login-address",
        deduct_when=failed,
        exempt_when=from_the_page,
    )(views["auth.Login"])
    views["auth.Login"] = limiter.limit(
        settings.login_rate_limit, methods=["POST"], key_func=account, scope="login-account", deduct_when=failed
    )(per_address)
