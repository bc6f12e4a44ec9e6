"""The coordinators' review API (flask-smorest): list, read and decide suggestions of one's cluster.

Every call needs a coordinator's bearer token (from the profiles service's login); a pair that
does not involve the coordinator's cluster is answered as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest.error_handler import ErrorSchema

from partnermatch.httpedge import ApiBlueprint, abort, guard
from services.matcher.adapters.profiles_client import Caller, ProfilesUnavailable
from services.matcher.bootstrap import MatcherDeps
from services.matcher.review import DecisionRefused
from services.matcher.schemas import DecisionSchema, LangQuerySchema, SuggestionQuerySchema, SuggestionSchema

api = ApiBlueprint(
    "suggestions",
    __name__,
    url_prefix="/v1/suggestions",
    description="Suggested partnerships, reviewed by the coordinators of both clusters",
)


def deps() -> MatcherDeps:
    return current_app.extensions["partnermatch.matcher"]


def caller_from_token(token: str) -> Caller | None:
    try:
        return deps().auth.whoami(token)
    except ProfilesUnavailable:
        abort(503, message="Cannot check your login right now; try again shortly.")


@dataclass(frozen=True)
class Coordinator:
    """A caller checked to be a coordinator: of one cluster, with a name."""

    cluster_id: str
    username: str


def require_coordinator() -> Coordinator:
    if "caller" not in g:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            abort(401, message="This needs a coordinator's bearer token (POST /v1/auth/login on profiles).")
        g.caller = caller_from_token(token.strip())
    caller = g.caller
    if caller is None:
        abort(401, message="Unknown or expired token.")
    if caller.role != "coordinator" or not caller.cluster_id:
        abort(403, message="Only cluster coordinators review suggestions.")
    return Coordinator(caller.cluster_id, caller.username or "?")


coordinators_only = guard(
    api,
    require_coordinator,
    {
        401: "No bearer token, or an unknown or expired one",
        403: "A token, but not a cluster coordinator's",
        503: "The token cannot be checked right now (profiles unreachable)",
    },
)
NOT_FOUND = "No such suggestion for your cluster."


def _refuse(refused: DecisionRefused, conflicts: dict[str, str]) -> NoReturn:
    """A refused decision or withdrawal as HTTP: a pair that is gone is not found; the rest conflict."""
    if refused.reason == "not_found" or (refused.pair or {}).get("state") == "withdrawn":
        abort(404, message=NOT_FOUND)
    abort(409, message=conflicts[refused.reason])


@api.route("")
class Suggestions(MethodView):
    @api.arguments(SuggestionQuerySchema(), location="query")
    @api.response(200, SuggestionSchema(many=True))
    @api.paginate()
    @coordinators_only
    def get(self, query: dict[str, Any], pagination_parameters, caller: Coordinator):
        """Suggestions involving your cluster: pending by default; sort by score or date; filter by
        the partner's country, language or sector, a score range, part of a name (`q`), or only
        those still waiting for your cluster's decision (`mine`)."""
        items, total = deps().review.list_for_cluster(
            caller.cluster_id,
            state=query["state"],
            sort=query["sort"],
            country=query.get("country"),
            language=query.get("language"),
            min_score=query.get("min_score"),
            max_score=query.get("max_score"),
            q=query.get("q"),
            sector=query.get("sector"),
            mine=query["mine"],
            lang=query["lang"],
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = total
        return items


@api.route("/<pair_id>")
class SuggestionById(MethodView):
    @api.arguments(LangQuerySchema(), location="query")
    @api.response(200, SuggestionSchema)
    @api.alt_response(404, schema=ErrorSchema, description="No such suggestion for your cluster")
    @coordinators_only
    def get(self, query: dict[str, Any], pair_id: str, caller: Coordinator):
        """One suggestion with both profiles and the reasons rendered in `lang`."""
        view = deps().review.read(caller.cluster_id, pair_id, query["lang"])
        if view is None:
            abort(404, message=NOT_FOUND)
        return view


@api.route("/<pair_id>/decision")
class Decision(MethodView):
    @api.arguments(DecisionSchema())
    @api.response(200, SuggestionSchema)
    @api.alt_response(404, schema=ErrorSchema, description="No such suggestion for your cluster")
    @api.alt_response(
        409, schema=ErrorSchema, description="Already decided, or your cluster has already decided otherwise"
    )
    @coordinators_only
    def post(self, data: dict[str, Any], pair_id: str, caller: Coordinator):
        """Approve or reject for your cluster; both clusters approving approves the partnership,
        either rejecting rejects it."""
        try:
            pair = deps().review.decide(
                caller.cluster_id,
                caller.username,
                pair_id,
                data["decision"],
                data.get("reason_code"),
                data.get("reason_text"),
            )
        except DecisionRefused as refused:
            _refuse(
                refused,
                {
                    "not_pending": "This suggestion is already decided.",
                    "already_decided": "Your cluster has already decided otherwise.",
                },
            )
        # Answered from the pair the decision returned: once saved, only reading the two
        # profiles is left, and a store that fails there is a 503 the client may retry safely.
        return deps().review.view(caller.cluster_id, pair)

    @api.response(200, SuggestionSchema)
    @api.alt_response(404, schema=ErrorSchema, description="No such suggestion for your cluster")
    @api.alt_response(
        409,
        schema=ErrorSchema,
        description="Nothing to withdraw: your cluster has not approved, or the other has decided",
    )
    @coordinators_only
    def delete(self, pair_id: str, caller: Coordinator):
        """Withdraw your cluster's approval while the other cluster has not decided yet."""
        try:
            pair = deps().review.withdraw_approval(caller.cluster_id, caller.username, pair_id)
        except DecisionRefused as refused:
            _refuse(
                refused,
                {
                    "not_pending": "This suggestion is already decided.",
                    "nothing_to_withdraw": "Your cluster has not approved this suggestion.",
                },
            )
        return deps().review.view(caller.cluster_id, pair)
