"""The write routes' plain dump gives what the schema's dump gives, for plain documents and odd ones."""

from __future__ import annotations

import copy

import pytest
from marshmallow import Schema, fields, post_dump

from services.profiles import domain
from services.profiles.entrypoints import write_routes
from services.profiles.schemas import OrganisationPrivateSchema, RegisteredSchema

ORG = {
    "id": "org_00aa11bb22cc33dd",
    "name": "Кластер ИКТ",
    "cluster_id": "rs-vojvodina-ict",
    "country": "RS",
    "language": "sr",
    "language_detected": True,
    "capabilities": "Развој софтвера.",
    "goals": "Partneri.",
    "sectors": ["ict"],
    "offers": [],
    "seeks": ["agrifood"],
    "seeks_countries": ["PL"],
    "website": None,
    "created_at": "2026-11-23T09:30:00+00:00",
    "updated_at": "2026-11-23T09:30:00+00:00",
    "revision": 3,
    "token_digest": "ab" * 32,
    "contacts": [
        {
            "id": "0123456789abcdef",
            "name": "Јелена",
            "email": "jelena@example.rs",
            "language": "sr-Cyrl",
            "consent": True,
            "share_contact": False,
            "consent_at": "2026-11-23T09:30:00+00:00",
            "consent_wording": "2026-12-v1",
            "share_contact_at": "2026-11-23T09:30:00+00:00",
            "share_contact_wording": "2026-12-v1",
        }
    ],
}


def _odd(path: list, value):
    org = domain.private_view(copy.deepcopy(ORG))
    target = org
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return org


@pytest.mark.parametrize(
    "org",
    [
        domain.private_view(ORG),
        _odd(["website"], "https://example.org"),
        _odd(["contacts"], []),
        _odd(["contacts"], None),
        _odd(["revision"], True),  # a bool where an int is dumped
        _odd(["revision"], "3"),
        _odd(["language_detected"], 1),
        _odd(["name"], 7),
        _odd(["sectors"], ("ict", "wood")),  # a tuple: marshmallow writes a list
        _odd(["sectors"], [1, None]),
        _odd(["contacts", 0, "share_contact"], KeyError),  # marshmallow leaves a missing field out
        _odd(["contacts", 0, "consent"], "yes"),
        _odd(["updated_at"], KeyError),
        _odd(["copy"], "an attribute of dict"),
    ],
)
def test_the_plain_dump_of_a_profile_equals_the_schemas(org):
    schema = OrganisationPrivateSchema()
    assert write_routes.plain_dump(schema)(org) == schema.dump(org)
    registered = {"organisation": org, "token": "pmo_x", "expires_in": 3600}
    assert write_routes.plain_dump(RegisteredSchema())(registered) == RegisteredSchema().dump(registered)


def test_a_plain_profile_is_copied_without_the_schema(monkeypatch):
    schema = OrganisationPrivateSchema()
    dump = write_routes.plain_dump(schema)
    monkeypatch.setattr(schema, "dump", lambda obj: pytest.fail("the schema dumped a plain profile"))
    assert dump(domain.private_view(ORG))["contacts"][0]["name"] == "Јелена"


def test_a_schema_with_hooks_or_other_fields_has_no_plain_dump():
    class Hooked(Schema):
        name = fields.String()

        @post_dump
        def _shout(self, data, **kwargs):
            return {k: v.upper() for k, v in data.items()}

    class Dated(Schema):
        when = fields.DateTime()

    for schema in (Hooked(), Dated()):
        with pytest.raises(TypeError):
            write_routes.plain_dump(schema)
