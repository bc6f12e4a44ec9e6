"""The matcher's API for other services (flask-smorest): an organisation's partnerships, as the
organisation sees them, for the profiles service to show on the organisation's own pages.

Only the service token gets in; coordinators and organisations are refused. No decision,
coordinator or rejection reason leaves through here.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import current_app, request
from flask.views import MethodView

from partnermatch.httpedge import ApiBlueprint, abort, guard
from services.matcher.entrypoints.api import caller_from_token, deps
from services.matcher.schemas import LangQuerySchema, PartnershipSchema

logger = logging.getLogger(__name__)

partnerships = ApiBlueprint(
    "partnerships",
    __name__,
    url_prefix="/v1/organisations",
    description="An organisation's partnerships, for the other partnermatch services",
)


def require_service() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        abort(401, message="This needs the service token as a bearer token.")
    expected = current_app.config["PM_SETTINGS"].service_token
    if expected and hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
        return "service"
    caller = caller_from_token(token)
    if caller is None:
        abort(401, message="Unknown or expired token.")
    if caller.role == "service":
        # Profiles knows this token as the service token, the matcher does not: a deployment fault.
        logger.error("a service token the matcher does not know; check PARTNERMATCH_SERVICE_TOKEN of the matcher")
        abort(503, message="The matcher is not set up to serve other services right now.")
    abort(403, message="Only the partnermatch services read an organisation's partnerships.")


services_only = guard(
    partnerships,
    require_service,
    {
        401: "No bearer token, or one nobody knows",
        403: "A token, but not the service token",
        503: "The token cannot be checked right now (profiles unreachable), or the matcher has another service "
        "token than profiles",
    },
)


@partnerships.route("/<org_id>/partnerships")
class OrganisationPartnerships(MethodView):
    @partnerships.arguments(LangQuerySchema(), location="query")
    @partnerships.response(200, PartnershipSchema(many=True))
    @services_only
    def get(self, query: dict[str, Any], org_id: str, caller: str):
        """An organisation's partnerships, as it sees them (service token only).

        Every pair involving the organisation: approved ones first (latest first), then waiting
        ones (best score first), then rejected ones (latest first), each with its partner and its first reason
        rendered in `lang`. An organisation the matcher does not know has none."""
        return deps().review.partnerships_of_org(org_id, query["lang"])
