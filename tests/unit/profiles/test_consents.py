"""Each consent of a contact person is kept with the time and wording version of its answer."""

from __future__ import annotations

from services.profiles.domain import CONSENT_WORDING, SHARE_CONTACT_WORDING, private_view, stamp_consents

JELENA = {"id": "c1", "name": "Jelena", "email": "jelena@example.rs", "language": "sr", "consent": True}


def test_new_answers_get_the_time_and_todays_wording():
    [contact] = stamp_consents([{**JELENA, "share_contact": True}], [], "2026-12-04T10:00:00+00:00")
    assert contact["consent_at"] == contact["share_contact_at"] == "2026-12-04T10:00:00+00:00"
    assert contact["consent_wording"] == CONSENT_WORDING
    assert contact["share_contact_wording"] == SHARE_CONTACT_WORDING


def test_a_contact_without_share_contact_has_not_agreed_to_share():
    [contact] = stamp_consents([JELENA], [], "t1")
    assert contact["share_contact"] is False and contact["share_contact_at"] == "t1"


def test_an_unchanged_answer_keeps_its_time_and_wording_and_a_changed_one_gets_new_ones():
    [first] = stamp_consents([{**JELENA, "share_contact": False}], [], "t1")
    old = {**first, "consent_wording": "2025-01-v0"}
    [again] = stamp_consents([{**JELENA, "share_contact": True}], [old], "t2")
    assert (again["consent_at"], again["consent_wording"]) == ("t1", "2025-01-v0")
    assert (again["share_contact_at"], again["share_contact_wording"]) == ("t2", SHARE_CONTACT_WORDING)


def test_another_person_never_inherits_a_stamp():
    [first] = stamp_consents([JELENA], [], "t1")
    [other] = stamp_consents([{**JELENA, "id": "c2", "email": "marko@example.rs"}], [first], "t2")
    assert other["consent_at"] == "t2"


def test_an_answer_stored_without_a_stamp_is_stamped_when_given_again():
    [contact] = stamp_consents([JELENA], [dict(JELENA)], "t2")
    assert contact["consent_at"] == "t2"


def test_contacts_stored_before_share_contact_existed_read_as_not_shared():
    org = {"id": "org_1", "contacts": [dict(JELENA)]}
    assert private_view(org)["contacts"][0]["share_contact"] is False
