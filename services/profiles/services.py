"""Use cases of the profiles service: register, edit, delete, authenticate, show an organisation its
partnerships. Pure logic over a store (and, for partnerships, the matcher's client)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from partnermatch import events
from partnermatch.languages import detect_language, same_detection
from services.profiles import domain
from services.profiles.adapters.matcher_client import MatcherUnavailable
from services.profiles.adapters.redis_store import Conflict, MissingCluster, NotFound, RedisProfileStore
from services.profiles.signin import SigninLinks, new_session_id

logger = logging.getLogger(__name__)
PRODUCER = "profiles"
_hasher = PasswordHasher()
# Verifying against a dummy hash when a user is unknown keeps login time the same either way.
_DUMMY_HASH = _hasher.hash("partnermatch-dummy-password")


class Forbidden(Exception):
    pass


class ClusterMoveForbidden(Forbidden):
    """Only the admin moves an organisation to another cluster."""


class UnknownCluster(Exception):
    pass


def _now() -> str:
    return datetime.now(UTC).isoformat()


# ---- clusters and coordinators ---------------------------------------------------------------


def create_cluster(store: RedisProfileStore, data: dict[str, Any]) -> dict[str, Any]:
    cluster = {**data, "created_at": _now()}
    store.create_cluster(cluster)
    logger.info("cluster created", extra={"cluster_id": cluster["id"]})
    return cluster


def create_coordinator(store: RedisProfileStore, cluster_id: str, data: dict[str, Any]) -> dict[str, Any]:
    if store.get_cluster(cluster_id) is None:
        raise UnknownCluster(cluster_id)
    coordinator = {
        "username": data["username"],
        "cluster_id": cluster_id,
        "name": data["name"],
        "email": data["email"],
        "language": data.get("language"),  # None: no stated preference
        "password_hash": _hasher.hash(data["password"]),
    }
    store.create_coordinator(coordinator)
    logger.info("coordinator created", extra={"cluster_id": cluster_id, "username": data["username"]})
    return coordinator


def login(store: RedisProfileStore, username: str, password: str, ttl_s: int) -> dict[str, Any] | None:
    coordinator = store.get_coordinator(username)
    try:
        _hasher.verify(coordinator["password_hash"] if coordinator else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if coordinator is None:
        return None
    token = domain.new_secret(domain.SESSION_TOKEN_PREFIX)
    principal = domain.Principal(domain.COORDINATOR, cluster_id=coordinator["cluster_id"], username=username)
    store.save_token(domain.token_digest(token), principal.to_dict(), ttl_s=ttl_s)
    return {
        "token": token,
        "role": domain.COORDINATOR,
        "cluster_id": coordinator["cluster_id"],
        "username": username,
        "expires_in": ttl_s,
        "language": coordinator.get("language"),
    }


def logout(store: RedisProfileStore, token: str) -> bool:
    """Revoke a coordinator's login token at once (it would otherwise work until it expires).
    False when it is not a login token or was not live."""
    if not token.startswith(domain.SESSION_TOKEN_PREFIX):
        return False
    revoked = store.delete_token(domain.token_digest(token))
    if revoked:
        logger.info("coordinator logged out")
    return revoked


def authenticate(
    store: RedisProfileStore, token: str, admin_token: str | None, service_token: str | None
) -> domain.Principal | None:
    return _authenticated(store, token, admin_token, service_token, None)[0]


def authenticate_for_change(
    store: RedisProfileStore, token: str, admin_token: str | None, service_token: str | None, org_id: str
) -> tuple[domain.Principal | None, bytes | None]:
    """authenticate(), and for an organisation's token the record of `org_id` as stored, read in
    the same round trip (update_org's `stored`; None: not read)."""
    return _authenticated(store, token, admin_token, service_token, org_id)


def _authenticated(
    store: RedisProfileStore, token: str, admin_token: str | None, service_token: str | None, org_id: str | None
) -> tuple[domain.Principal | None, bytes | None]:
    if domain.same_secret(token, admin_token):
        return domain.Principal(domain.ADMIN), None
    if domain.same_secret(token, service_token):
        return domain.Principal(domain.SERVICE), None
    if not token.startswith((domain.ORG_TOKEN_PREFIX, domain.SESSION_TOKEN_PREFIX)):
        return None, None
    digest = domain.token_digest(token)
    if org_id is None:
        found, stored = store.principal_for(digest), None
    else:
        found, stored = store.principal_and_org(digest, org_id)
    return (domain.Principal(**found) if found is not None else None), stored


# ---- organisations ---------------------------------------------------------------------------


def _contacts(
    org_id: str, contacts: list[dict[str, Any]], previous: list[dict[str, Any]], now: str
) -> list[dict[str, Any]]:
    """Contacts as stored: with their ids, and each consent with its time and wording version."""
    with_ids = [{**c, "id": domain.contact_id(org_id, c["email"])} for c in contacts]
    return domain.stamp_consents(with_ids, previous, now)


def _detected_from(org: dict[str, Any]) -> str:
    return org["capabilities"] + "\n" + org["goals"]


def _language(data: dict[str, Any], old: dict[str, Any] | None) -> tuple[str, bool]:
    if data.get("language"):
        return data["language"], False
    if old is not None and not old.get("language_detected") and not ({"capabilities", "goals"} & data.keys()):
        return old["language"], False
    text = _detected_from({**(old or {}), **data})
    country = {**(old or {}), **data}.get("country")
    if (
        old is not None
        and old.get("language_detected")
        and same_detection(text, _detected_from(old))
        and old.get("country") == country  # the country settles Serbian, Croatian or Bosnian
    ):
        # Detected from the same text, as far as detection reads: it would give the same again. So
        # it is when the texts are unchanged (a page's edit sends them all), or only changed beyond
        # what detection reads (the goals, after long capabilities).
        return old["language"], True
    return detect_language(text, country=country), True


def register_org(
    store: RedisProfileStore, data: dict[str, Any], org_id: str | None = None
) -> tuple[dict[str, Any], str]:
    """A new organisation and its token. `org_id`: the id it is to have (the page's, drawn from its
    form: the same form sent twice names one organisation), Conflict if one has it already; a new
    one when None."""
    org_id = org_id or domain.new_org_id()
    token = domain.new_secret(domain.ORG_TOKEN_PREFIX)
    digest = domain.token_digest(token)
    language, detected = _language(data, None)
    now = _now()
    org = {
        "id": org_id,
        "name": data["name"],
        "cluster_id": data["cluster_id"],
        "country": data["country"],
        "language": language,
        "language_detected": detected,
        "capabilities": data["capabilities"],
        "goals": data["goals"],
        "sectors": list(data.get("sectors") or []),
        **{name: list(data.get(name) or []) for name in domain.NEED_FIELDS},
        "website": data.get("website"),
        "contacts": _contacts(org_id, data.get("contacts") or [], [], now),
        "created_at": now,
        "updated_at": now,
        "created_ms": int(time.time() * 1000),
        "revision": 1,
        "token_digest": digest,
    }
    envelope = events.new_event(events.PROFILE_UPSERTED, domain.event_payload(org), PRODUCER)
    principal = domain.Principal(domain.ORGANISATION, org_id=org_id, cluster_id=org["cluster_id"])
    try:
        store.create_org(org, digest, principal.to_dict(), envelope)
    except MissingCluster:
        raise UnknownCluster(data["cluster_id"]) from None
    logger.info(
        "organisation registered",
        extra={"org_id": org_id, "cluster_id": org["cluster_id"], "language": language, "event_id": envelope.event_id},
    )
    return org, token


def update_org(
    store: RedisProfileStore, who: domain.Principal, org_id: str, data: dict[str, Any], stored: bytes | None = None
) -> dict[str, Any]:
    """`stored`: the organisation's record as just read (authenticate_for_change), if it was."""
    if not domain.can_edit_org(who, org_id):
        raise Forbidden(org_id)
    moving = "cluster_id" in data and who.role != domain.ADMIN  # allowed only if it names the one it is in
    if "cluster_id" in data and not moving and store.get_cluster(data["cluster_id"]) is None:
        raise UnknownCluster(data["cluster_id"])

    def change(old: dict[str, Any]) -> tuple[dict[str, Any], events.Envelope]:
        if moving and data["cluster_id"] != old["cluster_id"]:
            raise ClusterMoveForbidden(org_id)
        now = _now()
        new = {**old, **{k: v for k, v in data.items() if k != "contacts"}}
        if "contacts" in data:
            new["contacts"] = _contacts(org_id, data["contacts"], old.get("contacts") or [], now)
        new["language"], new["language_detected"] = _language(data, old)
        new["sectors"] = list(new.get("sectors") or [])
        for name in domain.NEED_FIELDS:
            new[name] = list(new.get(name) or [])
        new["revision"] = old["revision"] + 1
        new["updated_at"] = now
        return new, events.new_event(events.PROFILE_UPSERTED, domain.event_payload(new), PRODUCER)

    org = store.change_org(org_id, change, stored)
    assert org is not None
    logger.info("organisation updated", extra={"org_id": org_id, "revision": org["revision"]})
    return org


def delete_org(store: RedisProfileStore, who: domain.Principal, org_id: str) -> None:
    if not domain.can_edit_org(who, org_id):
        raise Forbidden(org_id)

    def change(old: dict[str, Any]) -> tuple[None, events.Envelope]:
        payload = {"org_id": org_id, "revision": old["revision"] + 1, "cluster_id": old["cluster_id"]}
        return None, events.new_event(events.PROFILE_DELETED, payload, PRODUCER)

    store.change_org(org_id, change)
    logger.info("organisation deleted", extra={"org_id": org_id})


def rotate_org_token(store: RedisProfileStore, who: domain.Principal, org_id: str) -> dict[str, Any]:
    """A new API token for the organisation (the organisation itself or the admin asks); the old one
    stops working at once. The new token is shown this once."""
    if not domain.can_edit_org(who, org_id):
        raise Forbidden(org_id)
    token = domain.new_secret(domain.ORG_TOKEN_PREFIX)
    store.replace_org_token(org_id, domain.token_digest(token))
    logger.info("organisation token rotated", extra={"org_id": org_id, "by": who.role})
    return {"token": token, "expires_in": store.org_token_ttl_s}


def revoke_org_token(store: RedisProfileStore, who: domain.Principal, org_id: str) -> None:
    """The organisation's API token stops working, with no new one (its pages still sign in by
    emailed link; the organisation or the admin can issue a new token)."""
    if not domain.can_edit_org(who, org_id):
        raise Forbidden(org_id)
    store.replace_org_token(org_id, None)
    logger.info("organisation token revoked", extra={"org_id": org_id, "by": who.role})


def resync(store: RedisProfileStore) -> int:
    """Queue a fresh `profile.upserted` of every current profile and a `profile.deleted` of every
    deleted one (same revisions: consumers skip what they have), so an emptied broker is refilled
    from Redis, the source of truth. Returns the number of current profiles queued. Also puts
    the contacts of profiles stored before sign-in links existed in the index they are found by."""
    count = 0
    for org_id in store.iter_org_ids():
        org = store.get_org(org_id)
        if org is None:  # deleted meanwhile
            continue
        store.enqueue(events.new_event(events.PROFILE_UPSERTED, domain.event_payload(org), PRODUCER), org_id)
        store.index_contacts([org])  # profiles stored before sign-in links existed
        count += 1
        if count % 1000 == 0:
            logger.info("resync progress", extra={"queued": count})
    deleted = 0
    for payload in store.iter_deletions():  # a deletion the lost broker held must still arrive
        store.enqueue(events.new_event(events.PROFILE_DELETED, payload, PRODUCER), payload["org_id"])
        deleted += 1
    logger.info("resync queued", extra={"queued": count, "deletions": deleted})
    return count


def settle_detected_languages(store: RedisProfileStore) -> int:
    """Once per store: detect again the language of every profile whose detection said Serbian,
    Croatian or Bosnian, now with its country (which settles them since 959c032: a Serbian firm
    stored as Bosnian was missing from its coordinator's Serbian queue). A profile whose language
    changes is stored with its event, as an edit is (the matcher reads it again); a language the
    organisation chose stays. Returns how many changed; later calls do nothing, nor do calls while
    another process settles them."""
    if store.languages_settled():
        return 0
    if not store.claim_language_settling():
        logger.info("languages being settled by another process")
        return 0
    try:
        return _settle_languages(store)
    finally:
        store.end_language_settling()


def _settle_languages(store: RedisProfileStore) -> int:
    seen = changed = left = 0
    for org_id in store.iter_org_ids():
        seen += 1
        if seen % 1000 == 0:
            logger.info("languages settling", extra={"read": seen, "changed": changed})
        org = store.get_org(org_id)
        if org is None or _settled_language(org) == org["language"]:
            continue
        try:
            store.change_org(org_id, _language_settled)
        except (_Unchanged, NotFound):  # edited or deleted meanwhile
            continue
        except Conflict:  # edited again and again meanwhile: the next start tries once more
            left += 1
            continue
        changed += 1
    if not left:
        store.mark_languages_settled()
    logger.info("languages settled", extra={"read": seen, "changed": changed, "left": left})
    return changed


def _language_settled(old: dict[str, Any]) -> tuple[dict[str, Any], events.Envelope]:
    """change_org's change: the profile with its settled language, and its event."""
    language = _settled_language(old)
    if language == old["language"]:  # edited meanwhile: the edit detected it
        raise _Unchanged
    new = {**old, "language": language, "revision": old["revision"] + 1, "updated_at": _now()}
    return new, events.new_event(events.PROFILE_UPSERTED, domain.event_payload(new), PRODUCER)


class _Unchanged(Exception):
    pass


def _settled_language(org: dict[str, Any]) -> str:
    """The language as detection with the country gives it, for a detected Serbian, Croatian or
    Bosnian; else the one stored."""
    if not org.get("language_detected") or org.get("language") not in ("sr", "hr", "bs"):
        return org["language"]
    return detect_language(_detected_from(org), country=org.get("country"))


# ---- partnerships ----------------------------------------------------------------------------


class PartnershipSource(Protocol):
    """Where an organisation's pairs come from: the matcher (adapters.matcher_client), or a fake."""

    def partnerships(self, org_id: str, lang: str = "en") -> list[dict[str, Any]]: ...


SHARED_CONTACT_FIELDS = ("name", "email", "language")


def _when(ms: Any) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if isinstance(ms, int | float) and ms > 0 else None


def _shared_contacts(org: dict[str, Any]) -> list[dict[str, Any]]:
    """The contact persons who agreed to be shown to approved partners, and only what they agreed to."""
    return [
        {k: c.get(k) for k in SHARED_CONTACT_FIELDS}
        for c in org.get("contacts") or []
        if c.get("share_contact") is True
    ]


def my_partnerships(
    store: RedisProfileStore, matcher_client: PartnershipSource, org_id: str, lang: str = "en"
) -> list[dict[str, Any]]:
    """The organisation's partnerships for its own pages: the matcher's pairs (waiting, approved,
    rejected; reasons in `lang`) with the partner as profiles knows it now. Only a partnership both
    clusters approved shows the partner's website and the contacts who agreed to share theirs.

    Raises MatcherUnavailable when the matcher cannot answer, NotFound when the organisation no
    longer exists (a session outliving its organisation sees no partner's contacts)."""
    if store.get_org(org_id) is None:
        raise NotFound(org_id)
    items = []
    clusters: dict[str, dict[str, Any] | None] = {}
    for raw in matcher_client.partnerships(org_id, lang):
        try:
            partner_id, state = str(raw["partner"]["org_id"]), raw["state"]
            pair_id = str(raw["pair_id"])
        except (KeyError, TypeError) as exc:
            raise MatcherUnavailable(f"an item without {exc}") from None
        if sorted(pair_id.split("~")) != sorted((org_id, partner_id)) or partner_id == org_id:
            logger.warning(
                "the matcher listed a pair of someone else; skipped", extra={"org_id": org_id, "pair_id": pair_id}
            )
            continue
        partner = store.get_org(partner_id)
        cluster_id = (partner or {}).get("cluster_id") or raw["partner"].get("cluster_id")
        if cluster_id not in clusters:
            clusters[cluster_id] = store.get_cluster(cluster_id) if cluster_id else None
        approved = state == "approved" and partner is not None
        items.append(
            {
                "pair_id": pair_id,
                "state": state,
                "score": raw.get("score"),
                "suggested_at": _when(raw.get("suggested_ms")),
                "decided_at": _when(raw.get("decided_ms")),
                "reason": raw.get("reason"),
                "partner": {
                    "org_id": partner_id,
                    "deleted": partner is None,
                    "name": partner["name"] if partner else None,
                    "country": partner.get("country") if partner else None,
                    "cluster_id": cluster_id,
                    "cluster_name": (clusters[cluster_id] or {}).get("name"),
                    "website": partner.get("website") if approved and partner is not None else None,
                    "contacts": _shared_contacts(partner) if approved and partner is not None else [],
                },
            }
        )
    return items


# ---- the organisations' own pages: sign-in links, page sessions, their data ------------------


class SigninMailer(Protocol):
    """Sends a contact person the sign-in links asked for (adapters.signin_mailer, or a fake)."""

    def send_signin(self, contact: dict[str, Any], links: list[tuple[str, str]]) -> None: ...


def text_size_errors(data: dict[str, Any], limit: int) -> dict[str, list[str]]:
    """Capabilities or goals longer than `limit` characters, by field (the API and the pages)."""
    return {
        k: [f"Longer than {limit} characters."] for k in ("capabilities", "goals") if len(data.get(k) or "") > limit
    }


def _contact_by_email(org: dict[str, Any], email: str) -> dict[str, Any] | None:
    wanted = {form.lower() for form in domain.address_forms(email)}
    return next((c for c in org.get("contacts") or [] if c.get("email", "").strip().lower() in wanted), None)


def request_signin(
    store: RedisProfileStore, links: SigninLinks, mailer: SigninMailer, email: str, link_url: Callable[[str, str], str]
) -> int:
    """Email `email` a single-use sign-in link for each organisation it is a contact person of;
    `link_url(token, language)` makes a link's address. Returns how many links were sent: 0 for an
    address nobody registered, which the caller must not reveal."""
    sent: list[tuple[str, str]] = []
    contact: dict[str, Any] | None = None
    forms = domain.address_forms(email) if email.strip() else []
    for org_id in dict.fromkeys(org_id for form in forms for org_id in store.orgs_of_contact(form)):
        org = store.get_org(org_id)
        found = _contact_by_email(org, email) if org else None
        if org is None or found is None:
            continue
        contact = found
        grant, token = links.new(org_id, found["id"])
        store.save_signin(grant.nonce, {"org_id": org_id, "contact_id": found["id"]}, links.max_age_s)
        sent.append((org["name"], link_url(token, found.get("language") or "en")))
    if contact is None:
        logger.info("sign-in link asked for an address of no contact person")
        return 0
    mailer.send_signin(contact, sent)
    logger.info("sign-in links sent", extra={"links": len(sent)})
    return len(sent)


def signin_link_org(store: RedisProfileStore, links: SigninLinks, token: str) -> dict[str, Any] | None:
    """The organisation a sign-in link opens, while the link is valid and unused (it stays unused)."""
    grant = links.read(token)
    stored = store.peek_signin(grant.nonce) if grant else None
    if grant is None or stored is None or stored.get("org_id") != grant.org_id:
        return None
    return store.get_org(grant.org_id)


def move_session(store: RedisProfileStore, session_id: str, org: dict[str, Any], contact_id: str) -> str | None:
    """The page session `session_id` ended and a new one opened for `contact_id` (the person it was
    for, now under another address), that ends when the old one would have: moving it gives no
    extra time. Its id, or None when the old session is gone."""
    digest = domain.token_digest(session_id)
    found, left_s = store.web_session_and_ttl(digest)
    store.delete_web_session(digest)
    if found is None or left_s <= 0:
        return None
    moved_id, moved_digest = new_session_id()
    store.save_web_session(moved_digest, {**found, "org_id": org["id"], "contact_id": contact_id}, left_s)
    logger.info("page session moved to the contact's new address", extra={"org_id": org["id"]})
    return moved_id


def open_session(store: RedisProfileStore, org: dict[str, Any], contact_id: str | None, ttl_s: int) -> str:
    """A new page session for `org`; returns its id (the only copy: Redis keeps its digest)."""
    session_id, digest = new_session_id()
    store.save_web_session(digest, {"org_id": org["id"], "contact_id": contact_id, "opened_at": _now()}, ttl_s)
    logger.info("page session opened", extra={"org_id": org["id"]})
    return session_id


def use_signin_link(
    store: RedisProfileStore, links: SigninLinks, token: str, ttl_s: int
) -> tuple[str, dict[str, Any]] | None:
    """Use a sign-in link up and open a page session: (session id, organisation), or None when the
    link is forged, expired or used already, or its organisation is gone."""
    grant = links.read(token)
    stored = store.take_signin(grant.nonce) if grant else None
    if grant is None or stored is None or stored.get("org_id") != grant.org_id:
        return None
    org = store.get_org(grant.org_id)
    if org is None or not _still_a_contact(org, grant.contact_id):
        return None
    return open_session(store, org, grant.contact_id, ttl_s), org


def _still_a_contact(org: dict[str, Any], contact_id: str | None) -> bool:
    """Whether the contact person a session or link was given to is still one of the organisation's
    (a session opened at registration names none)."""
    return contact_id is None or any(c.get("id") == contact_id for c in org.get("contacts") or [])


def session_of(store: RedisProfileStore, session_id: str) -> tuple[dict[str, Any], str | None] | None:
    """The organisation of a page session and the contact person it was opened for (None for one
    opened at registration), or None (unknown, expired or signed out; or the organisation is gone,
    or the person no longer its contact, which ends the session)."""
    digest = domain.token_digest(session_id)
    found = store.web_session(digest)
    if found is None:
        return None
    org = store.get_org(found["org_id"])
    if org is None or not _still_a_contact(org, found.get("contact_id")):
        store.delete_web_session(digest)  # the organisation is gone, or this person was removed from it
        return None
    return org, found.get("contact_id")


def session_org(store: RedisProfileStore, session_id: str) -> dict[str, Any] | None:
    """The organisation of a page session, or None (see session_of)."""
    found = session_of(store, session_id)
    return found[0] if found is not None else None


def close_session(store: RedisProfileStore, session_id: str) -> None:
    store.delete_web_session(domain.token_digest(session_id))


def export_org(store: RedisProfileStore, org_id: str) -> dict[str, Any]:
    """Everything the profiles service stores about an organisation and its contact persons, for
    the organisation to download (its credential's digest is a secret, not data about it)."""
    org = store.get_org(org_id)
    if org is None:
        raise NotFound(org_id)
    return {
        "exported_at": _now(),
        "organisation": {k: v for k, v in org.items() if k != "token_digest"},
        "cluster": store.get_cluster(org["cluster_id"]),
    }


__all__ = [
    "ClusterMoveForbidden",
    "Conflict",
    "Forbidden",
    "MatcherUnavailable",
    "NotFound",
    "PartnershipSource",
    "SigninMailer",
    "UnknownCluster",
    "authenticate",
    "close_session",
    "create_cluster",
    "create_coordinator",
    "delete_org",
    "export_org",
    "login",
    "logout",
    "move_session",
    "my_partnerships",
    "open_session",
    "register_org",
    "request_signin",
    "resync",
    "revoke_org_token",
    "rotate_org_token",
    "session_of",
    "session_org",
    "signin_link_org",
    "text_size_errors",
    "update_org",
    "use_signin_link",
]
