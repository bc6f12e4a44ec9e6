"""The profiles HTTP API: a Flask app factory with flask-smorest (validation + OpenAPI from one source).

Run by gunicorn as 'services.profiles.entrypoints.app:create_app()'.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, g, jsonify, request
from flask.views import MethodView
from flask_smorest import Api, Blueprint, abort

from partnermatch import vocabulary
from partnermatch.httpedge import harden
from partnermatch.logs import configure_logging
from services.profiles import domain, services
from services.profiles.adapters.redis_store import Conflict, NotFound
from services.profiles.bootstrap import ProfilesDeps, build_deps
from services.profiles.config import ProfilesSettings
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
    OrganisationUpdateSchema,
    PrincipalSchema,
    RegisteredSchema,
    SessionSchema,
    VocabularyQuerySchema,
    VocabularySchema,
)

logger = logging.getLogger(__name__)

clusters = Blueprint("clusters", __name__, url_prefix="/v1/clusters", description="Clusters and their coordinators")
orgs = Blueprint("organisations", __name__, url_prefix="/v1/organisations", description="Organisation profiles")
auth = Blueprint("auth", __name__, url_prefix="/v1/auth", description="Logins and tokens")
coordinators = Blueprint("coordinators", __name__, url_prefix="/v1/coordinators", description="Coordinators")
vocab = Blueprint("vocabulary", __name__, url_prefix="/v1/vocabulary",
                  description="What structured needs are chosen from, labelled for forms")


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


def _check_text_sizes(data: dict[str, Any]) -> None:
    limit = _settings().max_text_chars
    too_long = {k: [f"Longer than {limit} characters."] for k in ("capabilities", "goals")
                if len(data.get(k) or "") > limit}
    if too_long:
        abort(422, errors={"json": too_long}, message="Validation failed.")


# ---- clusters ---------------------------------------------------------------------------------


@clusters.route("")
class Clusters(MethodView):
    @clusters.response(200, ClusterSchema(many=True))
    def get(self):
        """List clusters (public)."""
        return _deps().store.list_clusters()

    @clusters.arguments(ClusterCreateSchema)
    @clusters.response(201, ClusterSchema)
    def post(self, data):
        """Create a cluster (admin)."""
        _require(domain.ADMIN)
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
    def get(self, cluster_id):
        """List a cluster's coordinators (admin, services, or a coordinator of that cluster)."""
        who = _require(domain.ADMIN, domain.SERVICE, domain.COORDINATOR)
        if who.role == domain.COORDINATOR and who.cluster_id != cluster_id:
            abort(403, message="Not your cluster.")
        if _deps().store.get_cluster(cluster_id) is None:
            abort(404, message="No such cluster.")
        return _deps().store.cluster_coordinators(cluster_id)

    @clusters.arguments(CoordinatorCreateSchema)
    @clusters.response(201, CoordinatorSchema)
    def post(self, data, cluster_id):
        """Issue a coordinator credential for a cluster (admin)."""
        _require(domain.ADMIN)
        try:
            return services.create_coordinator(_deps().store, cluster_id, data)
        except services.UnknownCluster:
            abort(404, message="No such cluster.")
        except Conflict:
            abort(409, message=f"Username {data['username']} is taken.")


@coordinators.route("/<username>")
class CoordinatorByName(MethodView):
    @coordinators.response(200, CoordinatorSchema)
    def get(self, username):
        """A coordinator's contact (admin, services, or the coordinator)."""
        who = _require(domain.ADMIN, domain.SERVICE, domain.COORDINATOR)
        if who.role == domain.COORDINATOR and who.username != username:
            abort(403, message="Not you.")
        found = _deps().store.get_coordinator(username)
        if found is None:
            abort(404, message="No such coordinator.")
        return found


# ---- auth -------------------------------------------------------------------------------------


@auth.route("/login")
class Login(MethodView):
    @auth.arguments(LoginSchema)
    @auth.response(200, SessionSchema)
    def post(self, data):
        """A coordinator logs in with username and password and gets a bearer token."""
        session = services.login(_deps().store, data["username"], data["password"], _settings().session_ttl_s)
        if session is None:
            abort(401, message="Wrong username or password.")
        return session


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
    @orgs.arguments(OrganisationQuerySchema, location="query")
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

    @orgs.arguments(OrganisationCreateSchema)
    @orgs.response(201, RegisteredSchema)
    def post(self, data):
        """Register an organisation; the answer carries its own token (shown once)."""
        _check_text_sizes(data)
        try:
            org, token = services.register_org(_deps().store, data)
        except services.UnknownCluster:
            abort(422, errors={"json": {"cluster_id": ["No such cluster."]}}, message="Validation failed.")
        return {"organisation": domain.private_view(org), "token": token}


@orgs.route("/<org_id>")
class OrganisationById(MethodView):
    @orgs.response(200, OrganisationPrivateSchema)
    def get(self, org_id):
        """Read a profile: public fields for anyone, contacts for the organisation itself."""
        org = _deps().store.get_org(org_id)
        if org is None:
            abort(404, message="No such organisation.")
        who = _caller()
        return domain.private_view(org) if domain.can_read_private(who, org) else domain.public_view(org)

    @orgs.arguments(OrganisationUpdateSchema)
    @orgs.response(200, OrganisationPrivateSchema)
    def patch(self, data, org_id):
        """Edit a profile (the organisation itself or the admin); only the fields given change."""
        who = _require(domain.ADMIN, domain.ORGANISATION)
        _check_text_sizes(data)
        if not data:
            abort(422, errors={"json": {"_schema": ["Nothing to change."]}}, message="Validation failed.")
        try:
            return domain.private_view(services.update_org(_deps().store, who, org_id, data))
        except services.Forbidden:
            abort(403, message="You may only edit your own organisation.")
        except NotFound:
            abort(404, message="No such organisation.")
        except services.UnknownCluster:
            abort(422, errors={"json": {"cluster_id": ["No such cluster."]}}, message="Validation failed.")

    @orgs.response(204)
    def delete(self, org_id):
        """Delete a profile and everything personal in it (the organisation itself or the admin)."""
        who = _require(domain.ADMIN, domain.ORGANISATION)
        try:
            services.delete_org(_deps().store, who, org_id)
        except services.Forbidden:
            abort(403, message="You may only delete your own organisation.")
        except NotFound:
            abort(404, message="No such organisation.")


@orgs.route("/<org_id>/contacts")
class OrganisationContacts(MethodView):
    @orgs.response(200, ContactsSchema)
    def get(self, org_id):
        """Contact persons (the organisation itself, the admin, services such as the notifier)."""
        who = _require(domain.ADMIN, domain.SERVICE, domain.ORGANISATION)
        org = _deps().store.get_org(org_id)
        if org is None:
            if who.role == domain.ORGANISATION and who.org_id != org_id:
                abort(403, message="Not your organisation.")
            abort(404, message="No such organisation.")
        if not domain.can_read_private(who, org):
            abort(403, message="Not your organisation.")
        return {"org_id": org_id, "name": org["name"], "contacts": org.get("contacts", [])}


# ---- vocabulary -------------------------------------------------------------------------------


@vocab.route("")
class Vocabulary(MethodView):
    @vocab.arguments(VocabularyQuerySchema, location="query")
    @vocab.response(200, VocabularySchema)
    def get(self, query):
        """What structured needs are chosen from, labelled in `lang` (public).

        The ids of `sectors` and `activities` are what `offers` and `seeks` take; the codes of
        `countries` are what `seeks_countries` takes."""
        # The same for everyone until the next deployment: browsers and proxies may keep it.
        return (vocabulary.vocabulary(query["lang"], fallback_countries=domain.COUNTRIES), 200,
                {"Cache-Control": "public, max-age=3600"})


# ---- the app ----------------------------------------------------------------------------------


def create_app(settings: ProfilesSettings | None = None, deps: ProfilesDeps | None = None) -> Flask:
    if settings is None:
        configure_logging(os.environ)
        settings = ProfilesSettings.from_env()
    app = Flask("partnermatch.profiles", static_folder=None)
    app.config.update(
        PM_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
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
    app.extensions["partnermatch.profiles"] = deps or build_deps(settings)
    vocabulary.get_vocabulary()  # read once now, not in the first request that names a need

    @app.before_request
    def _check_body():  # type: ignore[no-untyped-def]
        # After harden()'s check: the body is within MAX_CONTENT_LENGTH and already read.
        if request.method in ("POST", "PUT", "PATCH"):
            body = request.get_data(cache=True)
            if body and not request.is_json:
                abort(415, message="Send JSON with Content-Type: application/json.")
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                abort(400, message=f"Body is not valid UTF-8 (byte {exc.start}).")

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/health")
    def health():  # type: ignore[no-untyped-def]
        try:
            app.extensions["partnermatch.profiles"].store.r.ping()
        except Exception as exc:  # noqa: BLE001 - report, don't crash the probe
            return jsonify(status="unavailable", error=str(exc)), 503
        return jsonify(status="ok")

    api = Api(app)
    api.register_blueprint(clusters)
    api.register_blueprint(orgs)
    api.register_blueprint(auth)
    api.register_blueprint(coordinators)
    api.register_blueprint(vocab)

    return app
