"""What the profiles service knows: roles, access rules, sectors, countries, ids. Pure, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

import idna

from partnermatch.mail import mail_address
from partnermatch.vocabulary import COUNTRY_CODES

SECTORS: tuple[str, ...] = (
    "ict",
    "education",
    "creative",
    "agrifood",
    "metal",
    "wood",
    "energy",
    "health",
    "tourism",
    "chemistry",
    "textiles",
    "logistics",
    "construction",
)

# Where an organisation may be: ISO 3166-1 alpha-2 codes, plus XK (partnermatch.vocabulary).
COUNTRIES: frozenset[str] = COUNTRY_CODES

CLUSTER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,62}$")

ADMIN = "admin"
SERVICE = "service"
COORDINATOR = "coordinator"
ORGANISATION = "organisation"

ORG_TOKEN_PREFIX = "pmo_"
SESSION_TOKEN_PREFIX = "pms_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an admin, another service, a cluster's coordinator or an organisation."""

    role: str
    org_id: str | None = None
    cluster_id: str | None = None
    username: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "org_id": self.org_id, "cluster_id": self.cluster_id, "username": self.username}


def can_edit_org(who: Principal | None, org_id: str) -> bool:
    if who is None:
        return False
    return who.role == ADMIN or (who.role == ORGANISATION and who.org_id == org_id)


def can_read_private(who: Principal | None, org: dict[str, Any]) -> bool:
    """Contacts and other private fields: the organisation itself, the admin, other services."""
    if who is None:
        return False
    if who.role in (ADMIN, SERVICE):
        return True
    return who.role == ORGANISATION and who.org_id == org["id"]


def new_org_id() -> str:
    return "org_" + secrets.token_hex(8)


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens are long random strings, so a plain SHA-256 is a safe way to store them."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_secret(given: str, expected: str | None) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))  # type: ignore[union-attr]


def canonical_address(address: str) -> str:
    """One form for every way of writing one address: as mail_address writes it, else as typed
    (stripped); what a sign-in's limit per address counts, and looks up first."""
    typed = address.strip()
    try:
        return mail_address(typed)
    except ValueError:
        return typed


def address_forms(address: str) -> list[str]:
    """The ways one address may be stored: as typed, as mail_address writes it, and with an IDNA
    domain in its own script (how addresses were kept before mail_address, and as people type
    them), so a sign-in finds a contact whichever way either side wrote the domain."""
    canonical = canonical_address(address)
    forms = [address.strip(), canonical]
    local, at, domain = canonical.rpartition("@")
    if at and "xn--" in domain.lower():
        try:
            forms.append(f"{local}@{idna.decode(domain)}")
        except (idna.IDNAError, UnicodeError):
            pass
    return list(dict.fromkeys(forms))


def contact_id(org_id: str, email: str) -> str:
    return hashlib.sha256(f"{org_id}\n{email.strip().lower()}".encode()).hexdigest()[:16]


# A contact person answers two questions: partnership emails (`consent`) and sharing their contact
# with approved partners (`share_contact`). Each answer is kept with its time and the version of
# the wording it answered. A new version whenever a text changes: the sentences of the pages
# (organisations.pot: "I agree to receive…", "I agree that approved partners…") and the API's
# field descriptions (schemas.ContactSchema).
CONSENT_WORDING = "2026-12-v1"
SHARE_CONTACT_WORDING = "2026-12-v1"
_CONSENTS = (("consent", CONSENT_WORDING), ("share_contact", SHARE_CONTACT_WORDING))


def stamp_consents(contacts: list[dict[str, Any]], previous: list[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    """`contacts` (with ids) with `<answer>_at` and `<answer>_wording` for both answers: those of
    the same person in `previous` while the answer is unchanged, else `now` and today's wording."""
    before = {c.get("id"): c for c in previous}
    stamped = []
    for contact in contacts:
        contact = {**contact, "share_contact": bool(contact.get("share_contact", False))}
        old = before.get(contact["id"]) or {}
        for answer, wording in _CONSENTS:
            if old.get(f"{answer}_at") and bool(old.get(answer, False)) == contact[answer]:
                contact[f"{answer}_at"], contact[f"{answer}_wording"] = old[f"{answer}_at"], old[f"{answer}_wording"]
            else:
                contact[f"{answer}_at"], contact[f"{answer}_wording"] = now, wording
        stamped.append(contact)
    return stamped


# Structured needs: lexicon ids it offers and seeks, and countries it wants partners from. Public,
# like the texts they summarise; profiles stored before they existed have none.
NEED_FIELDS = ("offers", "seeks", "seeks_countries")
MAX_NEEDS = 10

PUBLIC_FIELDS = (
    "id",
    "name",
    "cluster_id",
    "country",
    "language",
    "language_detected",
    "capabilities",
    "goals",
    "sectors",
    *NEED_FIELDS,
    "website",
    "created_at",
    "updated_at",
    "revision",
)


def public_view(org: dict[str, Any]) -> dict[str, Any]:
    return {k: list(org.get(k) or []) if k in NEED_FIELDS else org.get(k) for k in PUBLIC_FIELDS}


def private_view(org: dict[str, Any]) -> dict[str, Any]:
    view = public_view(org)
    # Contacts stored before `share_contact` existed never agreed to share.
    view["contacts"] = [{"share_contact": False, **c} for c in org.get("contacts", [])]
    return view


def event_payload(org: dict[str, Any]) -> dict[str, Any]:
    """What `profile.upserted` carries: the public profile, never contact persons."""
    return {
        "org_id": org["id"],
        "revision": org["revision"],
        "cluster_id": org["cluster_id"],
        "name": org["name"],
        "country": org["country"],
        "language": org["language"],
        "language_detected": org.get("language_detected", False),
        "capabilities": org["capabilities"],
        "goals": org["goals"],
        "sectors": list(org.get("sectors", [])),
        **{name: list(org.get(name) or []) for name in NEED_FIELDS},
        "website": org.get("website"),
        "updated_at": org["updated_at"],
    }
