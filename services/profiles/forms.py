"""The organisation form of the pages, as typed and as the API takes it: a posted form becomes the
body the API's schemas validate (so the page and the API follow one set of rules), and a stored
organisation or a refused post becomes the form again, with nothing typed lost. Pure, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from partnermatch.mail import readable_address

MAX_CONTACT_ROWS = 20  # what ContactSchema's list allows
_CONTACT_KEY = re.compile(r"^contacts-(\d{1,2})-(name|email|language|consent|share_contact|remove|id)$")
LIST_FIELDS = ("sectors", "offers", "seeks", "seeks_countries")


class FormData(Protocol):
    """What werkzeug's request.form offers (a MultiDict of str)."""

    def get(self, key: str) -> str | None: ...

    def getlist(self, key: str) -> list[str]: ...

    def keys(self) -> Any: ...


@dataclass
class ContactRow:
    name: str = ""
    email: str = ""
    language: str = ""
    consent: bool = False
    share_contact: bool = False
    remove: bool = False
    id: str = ""  # a stored contact's id: the page shows when it answered, and to which wording
    stored: Mapping[str, Any] = field(default_factory=dict)

    def blank(self) -> bool:
        return not self.name.strip() and not self.email.strip()


@dataclass
class OrgForm:
    name: str = ""
    cluster_id: str = ""
    country: str = ""
    language: str = ""  # "" = detected from the texts
    capabilities: str = ""
    goals: str = ""
    website: str = ""
    sectors: list[str] = field(default_factory=list)
    offers: list[str] = field(default_factory=list)
    seeks: list[str] = field(default_factory=list)
    seeks_countries: list[str] = field(default_factory=list)
    contacts: list[ContactRow] = field(default_factory=list)

    @classmethod
    def blank(cls, contact_language: str) -> OrgForm:
        return cls(contacts=[ContactRow(language=contact_language)])

    @classmethod
    def from_org(cls, org: Mapping[str, Any]) -> OrgForm:
        contacts = [
            ContactRow(
                name=c.get("name", ""),
                email=readable_address(c.get("email", "")),  # as typed, where its domain is in another script
                language=c.get("language", ""),
                consent=bool(c.get("consent")),
                share_contact=bool(c.get("share_contact")),
                id=c.get("id", ""),
                stored=c,
            )
            for c in org.get("contacts") or []
        ]
        return cls(
            name=org.get("name") or "",
            cluster_id=org.get("cluster_id") or "",
            country=org.get("country") or "",
            language="" if org.get("language_detected") else org.get("language") or "",
            capabilities=org.get("capabilities") or "",
            goals=org.get("goals") or "",
            website=org.get("website") or "",
            **{name: list(org.get(name) or []) for name in LIST_FIELDS},
            contacts=contacts,
        )

    @classmethod
    def from_form(cls, form: FormData, stored: Sequence[Mapping[str, Any]] = ()) -> OrgForm:
        """The form as posted. `stored`: the organisation's contacts, so rows keep showing their answers."""
        by_id = {c.get("id"): c for c in stored}
        rows: dict[int, dict[str, str]] = {}
        for key in form.keys():
            found = _CONTACT_KEY.match(key)
            if found and int(found[1]) < MAX_CONTACT_ROWS:
                rows.setdefault(int(found[1]), {})[found[2]] = str(form.get(key) or "")
        contacts = []
        for index in sorted(rows):
            row = rows[index]
            contacts.append(
                ContactRow(
                    name=row.get("name", ""),
                    email=row.get("email", ""),
                    language=row.get("language", ""),
                    consent="consent" in row,
                    share_contact="share_contact" in row,
                    remove="remove" in row,
                    id=row.get("id", "") if row.get("id") in by_id else "",
                    stored=by_id.get(row.get("id"), {}),
                )
            )
        fields: dict[str, Any] = {
            name: str(form.get(name) or "")
            for name in ("name", "cluster_id", "country", "language", "capabilities", "goals", "website")
        }
        fields |= {name: [str(v) for v in form.getlist(name)][:100] for name in LIST_FIELDS}
        return cls(**fields, contacts=contacts)

    def with_another_contact(self, language: str) -> OrgForm:
        if len(self.contacts) >= MAX_CONTACT_ROWS:
            return self
        return replace(self, contacts=[*self.contacts, ContactRow(language=language)])

    def to_api(self, editing: bool) -> tuple[dict[str, Any], list[int]]:
        """The body for the API's schema (OrganisationCreateSchema, or OrganisationUpdateSchema when
        `editing`), and for each contact sent, its row in the form (to put errors back in place).

        Blank fields are left out, so a required one is "missing" rather than "too short"; when
        editing, a blank one is sent as null, which the schema refuses as it refuses a missing one
        (left out, the edit would keep the old text and say it was saved), and the lists and the
        website are always sent, so clearing them clears them."""
        data: dict[str, Any] = {}
        for name in ("name", "country", "capabilities", "goals") + (() if editing else ("cluster_id",)):
            value = getattr(self, name)
            if value.strip():
                data[name] = value.strip() if name in ("name", "country", "cluster_id") else value
            elif editing:
                data[name] = None
        if self.language:
            data["language"] = self.language
        if self.website.strip():
            data["website"] = self.website.strip()
        elif editing:
            data["website"] = None
        for name in LIST_FIELDS:
            if editing or getattr(self, name):
                data[name] = list(getattr(self, name))
        contacts, rows = [], []
        for row_index, row in enumerate(self.contacts):
            if row.remove or row.blank():
                continue
            contact: dict[str, Any] = {"consent": row.consent, "share_contact": row.share_contact}
            for name in ("name", "email", "language"):
                value = getattr(row, name).strip()
                if value:
                    contact[name] = value
            contacts.append(contact)
            rows.append(row_index)
        data["contacts"] = contacts
        return data, rows
