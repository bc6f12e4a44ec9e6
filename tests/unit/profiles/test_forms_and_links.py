"""The organisation form between the page and the API body, and the sign-in link tokens."""

from __future__ import annotations

import time

from services.profiles.forms import MAX_CONTACT_ROWS, OrgForm
from services.profiles.signin import SigninLinks


class _Form(dict):
    def getlist(self, key):
        value = self.get(key)
        return value if isinstance(value, list) else ([] if value is None else [value])


STORED = {
    "id": "org_1",
    "name": "Klaster",
    "cluster_id": "rs-ict",
    "country": "RS",
    "language": "sr",
    "language_detected": False,
    "capabilities": "Softver.",
    "goals": "Partneri.",
    "website": None,
    "sectors": ["ict"],
    "offers": [],
    "seeks": ["agrifood"],
    "seeks_countries": ["PL"],
    "contacts": [
        {
            "id": "c1",
            "name": "Jelena",
            "email": "j@example.rs",
            "language": "sr",
            "consent": True,
            "share_contact": False,
            "consent_at": "2026-12-01T10:00:00+00:00",
            "consent_wording": "2026-12-v1",
        }
    ],
}


def test_a_new_registration_leaves_blank_fields_out_so_the_schema_says_they_are_missing():
    body, rows = OrgForm.blank("pl").to_api(editing=False)
    assert body == {"contacts": []} and rows == []


def test_an_edit_sends_every_list_and_the_website_so_clearing_them_clears_them():
    form = OrgForm.from_org(STORED)
    form.sectors, form.seeks, form.website = [], [], ""
    body, _ = form.to_api(editing=True)
    assert body["sectors"] == [] and body["seeks"] == [] and body["website"] is None
    assert "cluster_id" not in body and body["contacts"][0] == {
        "name": "Jelena",
        "email": "j@example.rs",
        "language": "sr",
        "consent": True,
        "share_contact": False,
    }


def test_a_detected_language_stays_detected_and_a_chosen_one_is_sent():
    assert OrgForm.from_org({**STORED, "language_detected": True}).to_api(editing=True)[0].get("language") is None
    assert OrgForm.from_org(STORED).to_api(editing=True)[0]["language"] == "sr"


def test_a_posted_form_keeps_its_rows_their_answers_and_only_ids_of_stored_contacts():
    form = OrgForm.from_form(
        _Form(
            {
                "name": " Klaster ",
                "sectors": ["ict", "energy"],
                "contacts-0-id": "c1",
                "contacts-0-name": "Jelena",
                "contacts-0-email": " j@example.rs ",
                "contacts-0-consent": "yes",
                "contacts-1-id": "forged",
                "contacts-1-name": "Marko",
                "contacts-1-email": "m@example.rs",
                "contacts-1-remove": "yes",
                "contacts-99-name": "ignored",
            }
        ),
        STORED["contacts"],
    )
    assert [c.id for c in form.contacts] == ["c1", ""] and form.contacts[0].stored["consent_wording"] == "2026-12-v1"
    body, rows = form.to_api(editing=False)
    assert body["name"] == "Klaster" and body["sectors"] == ["ict", "energy"] and rows == [0]
    assert body["contacts"] == [{"name": "Jelena", "email": "j@example.rs", "consent": True, "share_contact": False}]


def test_rows_stop_at_what_the_schema_allows():
    form = OrgForm.blank("sr")
    for _ in range(MAX_CONTACT_ROWS + 5):
        form = form.with_another_contact("sr")
    assert len(form.contacts) == MAX_CONTACT_ROWS


def test_a_link_carries_its_grant_and_nothing_else_passes():
    links = SigninLinks("secret-key-0123456789", max_age_s=60)
    grant, token = links.new("org_1", "c1")
    assert links.read(token) == grant
    assert links.read(token[:-2] + "xx") is None
    assert SigninLinks("another-secret-key-000", max_age_s=60).read(token) is None
    assert links.read("") is None and links.read("x" * 600) is None


def test_a_link_is_refused_once_older_than_its_lifetime():
    links = SigninLinks("secret-key-0123456789", max_age_s=1)
    _grant, token = links.new("org_1", "c1")
    time.sleep(2.1)  # itsdangerous dates in whole seconds
    assert links.read(token) is None
