"""HTTP schemas of the matcher's review API (marshmallow). No I/O."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from partnermatch.languages import PROFILE_LANGUAGES, READER_LANGUAGES
from services.matcher.review import ORG_STATES, QUERY_STATES, REJECTION_REASONS


class SuggestionQuerySchema(Schema):
    state = fields.String(
        load_default="pending",
        validate=validate.OneOf(QUERY_STATES),
        metadata={"description": "pending, approved, rejected, or decided (both)"},
    )
    sort = fields.String(load_default="score", validate=validate.OneOf(["score", "date"]))
    country = fields.String(validate=validate.Regexp(r"^[A-Z]{2}$", error="Use an ISO 3166-1 alpha-2 code."))
    language = fields.String(validate=validate.OneOf(PROFILE_LANGUAGES))
    min_score = fields.Float(validate=validate.Range(min=0, max=10))
    max_score = fields.Float(validate=validate.Range(min=0, max=10))
    sector = fields.String(
        validate=validate.Regexp(r"^[a-z_]{2,40}$", error="Not a sector id."),
        metadata={
            "description": "A sector id of the vocabulary; the partner states it among its sectors or offers, "
            "or the pair's reasons read it (or one of its activities) in what the partner offers or shares"
        },
    )
    q = fields.String(
        validate=validate.Length(max=100),
        metadata={"description": "Part of either organisation's name (any case, accents or not)"},
    )
    mine = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Only the pending pairs your cluster has not decided yet (leaving out those it "
            "approved, which wait for the other cluster)"
        },
    )
    lang = fields.String(
        load_default="en",
        validate=validate.OneOf(READER_LANGUAGES),
        metadata={"description": "Language the reasons are rendered in"},
    )


class LangQuerySchema(Schema):
    lang = fields.String(load_default="en", validate=validate.OneOf(READER_LANGUAGES))


class DecisionSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    reason_code = fields.String(validate=validate.OneOf(REJECTION_REASONS), allow_none=True)
    reason_text = fields.String(validate=validate.Length(max=1000), allow_none=True)

    @validates_schema
    def _reject_needs_a_reason(self, data, **kwargs):
        if data["decision"] == "reject" and not data.get("reason_code"):
            raise ValidationError("A rejection needs a reason code.", "reason_code")
        if data["decision"] == "approve" and data.get("reason_code"):
            raise ValidationError(
                "A reason code goes with a rejection only (a comment may go with either).", "reason_code"
            )


class ProfileSchema(Schema):
    org_id = fields.String()
    name = fields.String(allow_none=True)
    cluster_id = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    capabilities = fields.String(allow_none=True)
    goals = fields.String(allow_none=True)
    sectors = fields.List(fields.String(), allow_none=True)
    website = fields.String(allow_none=True)


class ReasonViewSchema(Schema):
    text = fields.String()
    side = fields.String(metadata={"description": "own_offers, partner_offers or shared"})
    concept = fields.String(allow_none=True)
    kind = fields.String(allow_none=True)
    weight = fields.Float(allow_none=True)
    own_terms = fields.List(fields.String())
    partner_terms = fields.List(fields.String())


class DecisionViewSchema(Schema):
    cluster_id = fields.String()
    coordinator = fields.String()
    decision = fields.String()
    reason_code = fields.String(allow_none=True)
    reason_text = fields.String(allow_none=True)
    decided_at = fields.String()


class SuggestionSchema(Schema):
    pair_id = fields.String()
    state = fields.String()
    score = fields.Float()
    created_ms = fields.Integer()
    decided_ms = fields.Integer(allow_none=True)
    own = fields.Nested(ProfileSchema)
    partner = fields.Nested(ProfileSchema)
    reasons = fields.List(fields.Nested(ReasonViewSchema))
    decisions = fields.List(fields.Nested(DecisionViewSchema))
    my_decision = fields.Nested(DecisionViewSchema, allow_none=True)


class PartnerSchema(Schema):
    org_id = fields.String()
    name = fields.String(allow_none=True, metadata={"description": "null once the partner has deleted its profile"})
    cluster_id = fields.String()
    country = fields.String(allow_none=True)


class PartnershipSchema(Schema):
    pair_id = fields.String()
    state = fields.String(
        metadata={
            "description": "As the organisation sees it: waiting (for coordinators), approved (by both), rejected",
            "enum": list(ORG_STATES),
        }
    )
    score = fields.Float()
    suggested_ms = fields.Integer(metadata={"description": "When the pair was suggested (ms since the epoch, UTC)"})
    decided_ms = fields.Integer(allow_none=True, metadata={"description": "When it was approved or rejected"})
    partner = fields.Nested(PartnerSchema)
    reason = fields.String(allow_none=True, metadata={"description": "The first reason, rendered in `lang`"})
