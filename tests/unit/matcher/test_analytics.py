"""A cluster's review figures and the CSV of a listing, from pairs as stored."""

from __future__ import annotations

import csv
import io

from services.matcher.analytics import CSV_COLUMNS, figures, listing_csv

DAY = 86_400_000
NOW = 1_780_000_000_000  # a Thursday


def pair(state, created_days_ago, decided_days_ago=None, reason=None):
    p = {
        "pair_id": f"p{created_days_ago}{state}",
        "state": state,
        "created_ms": NOW - created_days_ago * DAY,
        "decisions": {},
    }
    if decided_days_ago is not None:
        p["decided_ms"] = NOW - decided_days_ago * DAY
    if reason:
        p["decisions"]["x"] = {"cluster_id": "x", "decision": "reject", "reason_code": reason}
    return p


def test_figures_count_states_reasons_rate_and_median_wait():
    pairs = [
        pair("pending", 1),
        pair("approved", 10, 8),
        pair("approved", 20, 10),
        pair("rejected", 5, 4, "no_capacity"),
        pair("rejected", 30, 29, "not_relevant"),
        pair("rejected", 3, 0, "not_relevant"),
        pair("withdrawn", 2),
    ]
    found = figures(pairs, NOW)
    assert (found.suggested, found.pending, found.approved, found.rejected) == (6, 1, 2, 3)
    assert found.rejected_by_reason == {"not_relevant": 2, "no_capacity": 1}
    assert found.acceptance_rate == 2 / 5
    assert found.median_days_to_decision == 2.0  # waits 2, 10, 1, 1, 3 days
    assert len(found.weeks) == 12
    assert sum(w.suggested for w in found.weeks) == 6  # all within 12 weeks
    assert sum(w.approved for w in found.weeks) == 2 and sum(w.rejected for w in found.weeks) == 3


def test_figures_before_any_decision_have_no_rate_and_no_median():
    found = figures([pair("pending", 1)], NOW)
    assert found.acceptance_rate is None and found.median_days_to_decision is None


def view(pair_id, partner_name, decisions):
    return {
        "pair_id": pair_id,
        "state": "rejected",
        "score": 0.5,
        "created_ms": NOW,
        "decided_ms": NOW + DAY,
        "own": {"org_id": "org_pl", "name": "Śląski Klaster"},
        "clusters": {"own": "pl", "partner": "rs"},
        "partner": {"org_id": "org_rs", "name": partner_name, "country": "RS"},
        "decisions": decisions,
    }


def test_the_csv_has_both_sides_decisions_and_never_a_formula():
    decisions = [
        {"cluster_id": "pl", "decision": "approve", "coordinator": "anna"},
        {
            "cluster_id": "rs",
            "decision": "reject",
            "coordinator": "marko",
            "reason_code": "no_capacity",
            "reason_text": "Pun kapacitet, javite se u junu",
        },
    ]
    rows = list(csv.reader(io.StringIO(listing_csv([view("org_pl~org_rs", '=HYPERLINK("x")', decisions)]))))
    assert tuple(rows[0]) == CSV_COLUMNS
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["partner_name"] == '\'=HYPERLINK("x")' and row["own_name"] == "Śląski Klaster"
    assert row["own_decision"] == "approve" and row["partner_decision"] == "reject"
    assert row["partner_reason"] == "no_capacity" and row["partner_comment"] == "Pun kapacitet, javite se u junu"
    assert row["partner_cluster"] == row["partner_cluster_name"] == "rs", "by id where no names are given"


def test_the_csv_names_the_partners_cluster_and_country_beside_their_ids():
    names = {"rs": "Klaster IKT Novi Sad"}.__getitem__
    text = listing_csv([view("org_pl~org_rs", "Acme", [])], cluster_name=names, country_name={"RS": "Serbia"}.get)
    rows = list(csv.reader(io.StringIO(text)))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["partner_cluster"], row["partner_cluster_name"]) == ("rs", "Klaster IKT Novi Sad")
    assert (row["partner_country"], row["partner_country_name"]) == ("RS", "Serbia")


def test_every_csv_cell_is_quoted_so_a_semicolon_locale_cannot_split_out_a_formula():
    text = listing_csv([view("org_pl~org_rs", "Acme;=1+1", []), view("org_pl~org_xx", "  =cmd", [])])
    line = text.splitlines()[1]
    assert '"Acme;=1+1"' in line
    assert '"\'  =cmd"' in text.splitlines()[2]
