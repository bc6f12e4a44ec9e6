"""An organisation's partnerships as its pages show them, with a fake matcher: only a partnership
both clusters approved shows the partner's website and the contacts who agreed to share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.profiles import services
from services.profiles.adapters.matcher_client import MatcherUnavailable
from services.profiles.adapters.redis_store import NotFound

OWN, PARTNER = "org_own", "org_partner"


class FakeStore:
    def __init__(self, orgs: list[dict[str, Any]], clusters: list[dict[str, Any]] | None = None) -> None:
        self.orgs = {o["id"]: o for o in orgs}
        self.clusters = {c["id"]: c for c in clusters or []}

    def get_org(self, org_id: str) -> dict[str, Any] | None:
        return self.orgs.get(org_id)

    def get_cluster(self, cluster_id: str) -> dict[str, Any] | None:
        return self.clusters.get(cluster_id)


class FakeMatcher:
    def __init__(self, items: list[dict[str, Any]] | Exception) -> None:
        self.items = items
        self.asked: list[tuple[str, str]] = []

    def partnerships(self, org_id: str, lang: str = "en") -> list[dict[str, Any]]:
        self.asked.append((org_id, lang))
        if isinstance(self.items, Exception):
            raise self.items
        return self.items


def _contact(name: str, email: str, share: bool | None, consent: bool = True) -> dict[str, Any]:
    contact = {
        "id": email[:8],
        "name": name,
        "email": email,
        "language": "sr-Cyrl",
        "consent": consent,
        "consent_at": "2026-12-01T00:00:00+00:00",
        "consent_wording": "2026-12-v1",
    }
    if share is not None:
        contact.update(
            share_contact=share, share_contact_at="2026-12-01T00:00:00+00:00", share_contact_wording="2026-12-v1"
        )
    return contact


def _org(org_id: str, cluster_id: str, contacts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": org_id,
        "name": f"Name of {org_id}",
        "cluster_id": cluster_id,
        "country": "RS",
        "website": f"https://{org_id}.example.org",
        "contacts": contacts or [],
        "token_digest": "secret",
    }


PARTNER_CONTACTS = [
    _contact("Јелена Петровић", "jelena@example.rs", share=True),
    _contact("Marko Marković", "marko@example.rs", share=False),
    _contact("Stari Kontakt", "stari@example.rs", share=None),  # stored before the question existed
]


def _store(partner_exists: bool = True) -> FakeStore:
    orgs = [_org(OWN, "pl-silesia-ict", [_contact("Own", "own@example.pl", share=True)])]
    if partner_exists:
        orgs.append(_org(PARTNER, "rs-vojvodina-ict", PARTNER_CONTACTS))
    return FakeStore(orgs, [{"id": "rs-vojvodina-ict", "name": "ICT Cluster of Vojvodina"}])


def _item(state: str, pair_id: str = f"{OWN}~{PARTNER}", partner_id: str = PARTNER, **over) -> dict[str, Any]:
    item = {
        "pair_id": pair_id,
        "state": state,
        "score": 0.62,
        "suggested_ms": 1_767_225_600_000,
        "decided_ms": None if state == "waiting" else 1_767_312_000_000,
        "partner": {
            "org_id": partner_id,
            "name": "Name in the matcher",
            "cluster_id": "rs-vojvodina-ict",
            "country": "RS",
        },
        "reason": "Name of org_partner seeks software — Name of org_own offers it (softver ↔ oprogramowanie)",
    }
    item.update(over)
    return item


def test_an_approved_partnership_shows_the_website_and_only_the_contacts_who_agreed_to_share():
    [item] = services.my_partnerships(_store(), FakeMatcher([_item("approved")]), OWN, "sr-Cyrl")
    partner = item["partner"]
    assert item["state"] == "approved"
    assert partner["website"] == "https://org_partner.example.org"
    assert partner["contacts"] == [{"name": "Јелена Петровић", "email": "jelena@example.rs", "language": "sr-Cyrl"}]


@pytest.mark.parametrize("state", ["waiting", "rejected"])
def test_a_partnership_not_approved_by_both_shows_no_contact_and_no_website(state):
    [item] = services.my_partnerships(_store(), FakeMatcher([_item(state)]), OWN, "en")
    assert item["state"] == state
    assert item["partner"]["contacts"] == [] and item["partner"]["website"] is None
    assert "jelena" not in repr(item)


def test_the_partner_is_shown_as_profiles_knows_it_now_with_its_cluster_name():
    [item] = services.my_partnerships(_store(), FakeMatcher([_item("waiting")]), OWN, "en")
    assert item["partner"] | {"contacts": None} == {
        "org_id": PARTNER,
        "deleted": False,
        "name": "Name of org_partner",
        "country": "RS",
        "cluster_id": "rs-vojvodina-ict",
        "cluster_name": "ICT Cluster of Vojvodina",
        "website": None,
        "contacts": None,
    }


def test_a_deleted_partner_keeps_the_partnership_without_name_website_or_contacts():
    [item] = services.my_partnerships(_store(partner_exists=False), FakeMatcher([_item("approved")]), OWN, "en")
    partner = item["partner"]
    assert item["state"] == "approved" and partner["deleted"] is True
    assert (partner["name"], partner["country"], partner["website"], partner["contacts"]) == (None, None, None, [])
    assert partner["cluster_id"] == "rs-vojvodina-ict"


def test_times_become_utc_datetimes_and_the_reason_in_the_language_asked_for_is_passed_on():
    matcher = FakeMatcher([_item("approved"), _item("waiting", pair_id=f"{OWN}~org_other", partner_id="org_other")])
    approved, waiting = services.my_partnerships(_store(), matcher, OWN, "sq")
    assert matcher.asked == [(OWN, "sq")]
    assert approved["suggested_at"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert approved["decided_at"] == datetime(2026, 1, 2, tzinfo=UTC)
    assert waiting["decided_at"] is None
    assert approved["reason"].startswith("Name of org_partner seeks")
    assert set(approved) == {"pair_id", "state", "score", "suggested_at", "decided_at", "reason", "partner"}


def test_a_pair_that_does_not_involve_the_organisation_never_shows_anyone_s_contacts():
    foreign = _item("approved", pair_id=f"org_x~{PARTNER}")
    assert services.my_partnerships(_store(), FakeMatcher([foreign]), OWN, "en") == []
    itself = _item("approved", pair_id=f"{OWN}~{OWN}", partner_id=OWN)
    assert services.my_partnerships(_store(), FakeMatcher([itself]), OWN, "en") == []


def test_an_organisation_that_no_longer_exists_sees_no_partnership():
    matcher = FakeMatcher([_item("approved")])
    with pytest.raises(NotFound):
        services.my_partnerships(_store(), matcher, "org_gone", "en")
    assert matcher.asked == []


def test_a_matcher_that_cannot_answer_is_said_so_with_one_exception():
    with pytest.raises(MatcherUnavailable):
        services.my_partnerships(_store(), FakeMatcher(MatcherUnavailable("connection refused")), OWN, "en")
    with pytest.raises(MatcherUnavailable):
        services.my_partnerships(_store(), FakeMatcher([{"state": "approved"}]), OWN, "en")
    assert services.MatcherUnavailable is MatcherUnavailable


def test_no_partnership_is_an_empty_list():
    assert services.my_partnerships(_store(), FakeMatcher([]), OWN, "en") == []
