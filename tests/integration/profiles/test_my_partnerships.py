"""An organisation's partnerships, read by the profiles service from the real matcher over HTTP with
the service token, both on a real redis-server: the partner's shared contacts appear once both
coordinators approve, and a matcher that is down, slow or refusing is one clear exception."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from launcher.procs import free_port
from services.matcher.adapters.profiles_client import ProfilesAuthClient
from services.matcher.adapters.redis_state import PairWrite, ProfileChange, RedisMatcherState
from services.matcher.bootstrap import MatcherDeps
from services.matcher.config import MatcherSettings
from services.matcher.entrypoints.web import create_app as create_matcher_app
from services.matcher.review import ReviewService
from services.profiles import services
from services.profiles.adapters.matcher_client import MatcherClient, MatcherUnavailable
from services.profiles.bootstrap import ProfilesDeps
from services.profiles.entrypoints.app import create_app as create_profiles_app
from tests.integration.matcher.conftest import ServerThread

from .conftest import ADMIN, SERVICE, profile

pytestmark = pytest.mark.integration

PL, RS = "pl-silesia-ict", "rs-vojvodina-ict"


@pytest.fixture
def profiles_server(settings, store):
    server = ServerThread(create_profiles_app(settings, ProfilesDeps(store=store)))
    yield server
    server.stop()


@pytest.fixture
def matcher_state(redis_client):
    return RedisMatcherState(redis_client)


@pytest.fixture
def matcher(profiles_server, matcher_state, redis_server):
    """The real matcher app over HTTP, with the same service token as profiles."""
    settings = MatcherSettings(
        redis_url=redis_server.url,
        kafka_bootstrap="unused:9092",
        profiles_url=profiles_server.url,
        secret_key="test",
        service_token=SERVICE,
    )
    deps = MatcherDeps(
        state=matcher_state,
        review=ReviewService(matcher_state),
        auth=ProfilesAuthClient(profiles_server.url, cache_ttl_s=0),
    )
    server = ServerThread(create_matcher_app(settings, deps))
    yield server
    server.stop()


@pytest.fixture
def pair(client, cluster, matcher_state):
    """A Polish and a Serbian organisation registered on profiles, known to the matcher, with a
    pending pair; the Serbian one has a contact who shares and one who does not."""
    cluster(PL, "PL")
    cluster(RS, "RS")
    pl = client.post(
        "/v1/organisations",
        json=profile(
            PL,
            name="Softwarownia",
            country="PL",
            language="pl",
            website="https://softwarownia.example.pl",
            contacts=[
                {
                    "name": "Anna Nowak",
                    "email": "anna@example.pl",
                    "language": "pl",
                    "consent": True,
                    "share_contact": True,
                }
            ],
        ),
    ).json["organisation"]
    rs = client.post(
        "/v1/organisations",
        json=profile(
            RS,
            name="Voćar",
            contacts=[
                {
                    "name": "Јелена Петровић",
                    "email": "jelena@example.rs",
                    "language": "sr-Cyrl",
                    "consent": True,
                    "share_contact": True,
                },
                {"name": "Marko Marković", "email": "marko@example.rs", "language": "sr", "consent": True},
            ],
        ),
    ).json["organisation"]
    for org in (pl, rs):
        matcher_state.apply(
            ProfileChange(
                org["id"],
                1,
                {
                    "org_id": org["id"],
                    "name": org["name"],
                    "cluster_id": org["cluster_id"],
                    "country": org["country"],
                    "language": org["language"],
                    "capabilities": "—",
                    "goals": "—",
                    "sectors": [],
                    "website": None,
                },
            )
        )
    a, b = sorted((pl, rs), key=lambda o: o["id"])
    pair_id = f"{a['id']}~{b['id']}"
    matcher_state.apply(
        ProfileChange(
            a["id"],
            2,
            matcher_state.get_profile(a["id"]),
            upserts=[
                PairWrite(
                    pair_id,
                    a["id"],
                    b["id"],
                    a["cluster_id"],
                    b["cluster_id"],
                    0.62,
                    [
                        {
                            "concept": "ict.software",
                            "kind": "activity",
                            "direction": "a_offers_b_seeks",
                            "weight": 0.4,
                            "terms_a": ["oprogramowanie"],
                            "terms_b": ["softver"],
                        }
                    ],
                )
            ],
        )
    )
    return {"pl": pl, "rs": rs, "pair_id": pair_id}


def test_a_waiting_partnership_comes_from_the_matcher_without_any_contact(store, matcher, pair):
    items = services.my_partnerships(store, MatcherClient(matcher.url, SERVICE), pair["pl"]["id"], "pl")
    assert [i["pair_id"] for i in items] == [pair["pair_id"]]
    [item] = items
    assert item["state"] == "waiting" and item["reason"]
    assert item["partner"]["name"] == "Voćar" and item["partner"]["cluster_name"] == f"Cluster {RS}"
    assert item["partner"]["contacts"] == [] and item["partner"]["website"] is None


def test_once_both_approve_each_side_sees_the_other_s_shared_contacts_and_website(store, matcher, matcher_state, pair):
    matcher_state.decide(pair["pair_id"], PL, "anna", "approve")
    client = MatcherClient(matcher.url, SERVICE)
    [half] = services.my_partnerships(store, client, pair["pl"]["id"], "pl")
    assert half["state"] == "waiting" and half["partner"]["contacts"] == []
    matcher_state.decide(pair["pair_id"], RS, "marko", "approve")
    [pl_view] = services.my_partnerships(store, client, pair["pl"]["id"], "pl")
    assert pl_view["state"] == "approved" and pl_view["decided_at"] is not None
    assert pl_view["partner"]["website"] == "https://ikt.example.rs"
    assert pl_view["partner"]["contacts"] == [
        {"name": "Јелена Петровић", "email": "jelena@example.rs", "language": "sr-Cyrl"}
    ]
    [rs_view] = services.my_partnerships(store, client, pair["rs"]["id"], "sr-Cyrl")
    assert rs_view["partner"]["contacts"] == [{"name": "Anna Nowak", "email": "anna@example.pl", "language": "pl"}]


def test_a_rejected_partnership_shows_no_contact_and_nothing_the_coordinator_wrote(store, matcher, matcher_state, pair):
    matcher_state.decide(pair["pair_id"], RS, "marko", "reject", "no_capacity", "Internal: not now")
    [item] = services.my_partnerships(store, MatcherClient(matcher.url, SERVICE), pair["pl"]["id"], "en")
    assert item["state"] == "rejected" and item["partner"]["contacts"] == []
    assert "Internal" not in repr(item) and "no_capacity" not in repr(item)


def test_a_partner_deleted_after_approval_shows_as_deleted_without_contacts(
    client, store, matcher, matcher_state, pair
):
    matcher_state.decide(pair["pair_id"], PL, "anna", "approve")
    matcher_state.decide(pair["pair_id"], RS, "marko", "approve")
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert client.delete(f"/v1/organisations/{pair['rs']['id']}", headers=admin).status_code == 204
    [item] = services.my_partnerships(store, MatcherClient(matcher.url, SERVICE), pair["pl"]["id"], "en")
    assert item["state"] == "approved" and item["partner"]["deleted"] is True
    assert item["partner"]["name"] is None and item["partner"]["contacts"] == []


def test_a_matcher_nobody_listens_for_is_unavailable():
    with pytest.raises(MatcherUnavailable):
        MatcherClient(f"http://127.0.0.1:{free_port()}", SERVICE, timeout_s=2).partnerships("org_x")


def test_a_matcher_that_does_not_answer_in_time_is_unavailable_after_the_timeout():
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_say_nothing():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_and_say_nothing, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        with pytest.raises(MatcherUnavailable):
            MatcherClient(f"http://127.0.0.1:{listener.getsockname()[1]}", SERVICE, timeout_s=0.5).partnerships("x")
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_token_the_matcher_refuses_is_unavailable_not_an_empty_list(matcher, pair):
    with pytest.raises(MatcherUnavailable, match="401"):
        MatcherClient(matcher.url, "not-the-service-token").partnerships(pair["pl"]["id"])
    with pytest.raises(MatcherUnavailable, match="not set"):
        MatcherClient(matcher.url, None).partnerships(pair["pl"]["id"])
