"""HTTP schemas of the profiles API (marshmallow): they validate requests and document the API.

Event schemas live in `partnermatch.events`; these change for different reasons. No I/O.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from partnermatch import vocabulary
from partnermatch.display import has_visible_text, neutralise
from partnermatch.languages import PROFILE_LANGUAGES, READER_LANGUAGES
from partnermatch.mail import LocalPartNotAscii, mail_address
from services.profiles.domain import CLUSTER_ID, COUNTRIES, MAX_NEEDS, SECTORS, USERNAME

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029\x85]")


def _valid_unicode(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Text contains invalid Unicode (unpaired surrogate).") from None


def text_check(value: str) -> None:
    """Free text: any script, newlines allowed, no control characters, not blank."""
    _valid_unicode(value)
    if _CONTROL.search(value):
        raise ValidationError("Text contains control characters.")
    if not has_visible_text(value):  # blank, or only characters that draw nothing (joiners, fillers)
        raise ValidationError("Text must not be empty.")


LOCAL_PART_NOT_ASCII = "Mail cannot be sent yet to an address with non-Latin letters before the @."


class MailAddress(fields.Email):
    """An email address, kept as mail reaches it (partnermatch.mail.mail_address): a domain in another script
    in its ASCII (IDNA) form; one with other letters than ASCII before the @ is refused."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return mail_address(text)
        except LocalPartNotAscii:
            raise ValidationError(LOCAL_PART_NOT_ASCII) from None
        except ValueError:
            raise ValidationError("Not a valid email address.") from None


def line_check(value: str) -> None:
    """A single line (names): also no line breaks, so it is safe in an email header."""
    text_check(value)
    if _LINE_BREAK.search(value):
        raise ValidationError("Must be a single line.")


class ShownTextSchema(Schema):
    """A schema whose text is shown to people (names, descriptions, what organisations offer and
    seek): bidirectional controls and invisible characters are removed before validation, so no
    page or email ever shows text laid out differently from what it says. Secrets are never shown
    and are kept as typed."""

    @pre_load
    def _neutralise(self, data: Any, **_kwargs: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {
            key: neutralise(value) if isinstance(value, str) and key != "password" else value
            for key, value in data.items()
        }


def country_check(value: str) -> None:
    if value not in COUNTRIES:
        raise ValidationError("Unknown country: use an ISO 3166-1 alpha-2 code such as PL, RS, AL.")


def need_check(value: str) -> None:
    if value not in vocabulary.need_ids():
        raise ValidationError(f"Unknown sector or activity: {value!r}. The ids are listed by GET /v1/vocabulary.")


def sought_country_check(value: str) -> None:
    if value not in COUNTRIES and value not in vocabulary.country_codes():
        raise ValidationError(f"Unknown country: {value!r}. Use an ISO 3166-1 alpha-2 code such as PL, RS, AL.")


class UniqueList(fields.List):
    """A list whose repeated items count once (first one kept), before its length is checked."""

    def _deserialize(self, value, attr, data, **kwargs):
        return list(dict.fromkeys(super()._deserialize(value, attr, data, **kwargs)))


def _needs(description: str, example: list[str]) -> UniqueList:
    return UniqueList(
        fields.String(validate=need_check),
        validate=validate.Length(max=MAX_NEEDS),
        metadata={"description": description, "example": example},
    )


def _sought_countries() -> UniqueList:
    return UniqueList(
        fields.String(validate=sought_country_check),
        validate=validate.Length(max=MAX_NEEDS),
        metadata={
            "description": "Countries it wants partners from (ISO 3166-1 alpha-2; at most 10, repeats count once)",
            "example": ["PL", "DE"],
        },
    )


class ContactSchema(ShownTextSchema):
    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), line_check])
    email = MailAddress(required=True, validate=validate.Length(max=254))
    language = fields.String(
        required=True,
        validate=validate.OneOf(READER_LANGUAGES, error="Unknown language: use one of {choices}."),
    )
    consent = fields.Boolean(
        required=True,
        metadata={
            "description": "Agrees to receive emails about partnerships suggested to and approved for the organisation"
        },
    )
    share_contact = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Agrees that the organisation's approved partners see this person's name, email and "
            "language (default false; a contact list sent without it withdraws that agreement)"
        },
    )
    consent_at = fields.String(
        dump_only=True,
        metadata={"description": "When the current `consent` answer was given (UTC ISO 8601; set by the server)"},
    )
    consent_wording = fields.String(
        dump_only=True,
        metadata={
            "description": "Version of the wording the `consent` answer was given to (set by the server)",
            "example": "2026-12-v1",
        },
    )
    share_contact_at = fields.String(
        dump_only=True,
        metadata={"description": "When the current `share_contact` answer was given (UTC ISO 8601; set by the server)"},
    )
    share_contact_wording = fields.String(
        dump_only=True,
        metadata={
            "description": "Version of the wording the `share_contact` answer was given to (set by the server)",
            "example": "2026-12-v1",
        },
    )


class OrganisationBase(ShownTextSchema):
    name = fields.String(validate=[validate.Length(min=1, max=200), line_check])
    country = fields.String(validate=country_check, metadata={"example": "RS"})
    language = fields.String(
        validate=validate.OneOf(PROFILE_LANGUAGES, error="Unknown language: use one of {choices}."),
        metadata={"description": "Language of the texts; detected when left out"},
    )
    capabilities = fields.String(validate=text_check, metadata={"description": "What the organisation has and offers"})
    goals = fields.String(validate=text_check, metadata={"description": "What the organisation seeks"})
    sectors = fields.List(
        fields.String(validate=validate.OneOf(SECTORS, error="Unknown sector: use one of {choices}.")),
        validate=validate.Length(max=5),
    )
    offers = _needs(
        "Sectors or activities it offers: ids of GET /v1/vocabulary (at most 10, repeats count once)",
        ["ict.software", "ict"],
    )
    seeks = _needs(
        "Sectors or activities it seeks: ids of GET /v1/vocabulary (at most 10, repeats count once)",
        ["agrifood", "logistics.cold_chain"],
    )
    seeks_countries = _sought_countries()
    website = fields.URL(schemes={"http", "https"}, allow_none=True, validate=validate.Length(max=500))
    contacts = fields.List(fields.Nested(ContactSchema), validate=validate.Length(max=20))

    @validates_schema
    def _unique_contact_emails(self, data, **kwargs):
        emails = [c["email"].lower() for c in data.get("contacts") or []]
        if len(emails) != len(set(emails)):
            raise ValidationError("Each contact needs its own email address.", "contacts")


class OrganisationCreateSchema(OrganisationBase):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), line_check])
    cluster_id = fields.String(required=True, validate=validate.Regexp(CLUSTER_ID, error="Not a cluster id."))
    country = fields.String(required=True, validate=country_check)
    capabilities = fields.String(required=True, validate=text_check)
    goals = fields.String(required=True, validate=text_check)


class OrganisationUpdateSchema(OrganisationBase):
    cluster_id = fields.String(
        validate=validate.Regexp(CLUSTER_ID, error="Not a cluster id."),
        metadata={"description": "Only an admin may move an organisation to another cluster"},
    )


class OrganisationPublicSchema(Schema):
    id = fields.String()
    name = fields.String()
    cluster_id = fields.String()
    country = fields.String()
    language = fields.String()
    language_detected = fields.Boolean()
    capabilities = fields.String()
    goals = fields.String()
    sectors = fields.List(fields.String())
    offers = fields.List(fields.String())
    seeks = fields.List(fields.String())
    seeks_countries = fields.List(fields.String())
    website = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    revision = fields.Integer()


class OrganisationPrivateSchema(OrganisationPublicSchema):
    contacts = fields.List(fields.Nested(ContactSchema))


class RegisteredSchema(Schema):
    organisation = fields.Nested(OrganisationPrivateSchema)
    token = fields.String(metadata={"description": "The organisation's bearer token; shown only once"})
    expires_in = fields.Integer(metadata={"description": "Seconds the token works (PROFILES_ORG_TOKEN_TTL_S)"})


class OrganisationTokenSchema(Schema):
    token = fields.String(metadata={"description": "The organisation's new bearer token; shown only once"})
    expires_in = fields.Integer(metadata={"description": "Seconds it works, unless rotated or revoked sooner"})


class VocabularyQuerySchema(Schema):
    lang = fields.String(
        load_default="en",
        validate=validate.OneOf(READER_LANGUAGES, error="Unknown language: use one of {choices}."),
        metadata={"description": "Language of the labels"},
    )


class NeedTermSchema(Schema):
    id = fields.String(metadata={"example": "logistics.cold_chain"})
    label = fields.String(metadata={"example": "cold chain and refrigerated logistics"})
    sector = fields.String(
        metadata={"description": "Activities only: the sector they belong to", "example": "logistics"}
    )


class CountryTermSchema(Schema):
    code = fields.String(metadata={"description": "ISO 3166-1 alpha-2", "example": "RS"})
    label = fields.String()


class VocabularySchema(Schema):
    sectors = fields.List(fields.Nested(NeedTermSchema), metadata={"description": "Sorted by label"})
    activities = fields.List(fields.Nested(NeedTermSchema), metadata={"description": "Sorted by label"})
    countries = fields.List(fields.Nested(CountryTermSchema), metadata={"description": "Sorted by label"})


class OrganisationQuerySchema(Schema):
    cluster_id = fields.String(validate=validate.Regexp(CLUSTER_ID, error="Not a cluster id."))


class ContactsSchema(Schema):
    org_id = fields.String()
    name = fields.String()
    contacts = fields.List(fields.Nested(ContactSchema))


class ClusterCreateSchema(ShownTextSchema):
    id = fields.String(required=True, validate=validate.Regexp(CLUSTER_ID, error="Use 3-64 of a-z, 0-9 and -."))
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), line_check])
    country = fields.String(required=True, validate=country_check)
    description = fields.String(load_default="", validate=validate.Length(max=5000))


class ClusterSchema(Schema):
    id = fields.String()
    name = fields.String()
    country = fields.String()
    description = fields.String()
    created_at = fields.String()


class CoordinatorCreateSchema(ShownTextSchema):
    username = fields.String(
        required=True, validate=validate.Regexp(USERNAME, error="Use 3-63 of a-z, 0-9, '.', '_' and '-'.")
    )
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=10, max=200))
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), line_check])
    email = MailAddress(required=True)
    language = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(READER_LANGUAGES, error="Unknown language: use one of {choices}."),
        metadata={"description": "The coordinator's preferred language; without it their pages follow the browser"},
    )


class CoordinatorSchema(Schema):
    username = fields.String()
    cluster_id = fields.String()
    name = fields.String()
    email = fields.String()
    language = fields.String()


class LoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=100))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=200))


class SessionSchema(Schema):
    token = fields.String()
    role = fields.String()
    cluster_id = fields.String()
    username = fields.String()
    expires_in = fields.Integer()
    language = fields.String(
        allow_none=True, metadata={"description": "The coordinator's preferred language (their pages open in it)"}
    )


class PrincipalSchema(Schema):
    role = fields.String()
    org_id = fields.String(allow_none=True)
    cluster_id = fields.String(allow_none=True)
    username = fields.String(allow_none=True)
