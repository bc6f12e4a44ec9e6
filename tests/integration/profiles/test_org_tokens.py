"""Organisations' API tokens expire, can be rotated by the organisation or the admin, and revoked."""

from __future__ import annotations

import pytest

from services.profiles.adapters.redis_store import TOKEN
from services.profiles.domain import token_digest

from .conftest import profile

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_client(store_client):
    """These tests run on one redis-server and on a three-node Redis Cluster."""
    return store_client


@pytest.fixture
def registered(client, cluster):
    cluster()
    r = client.post("/v1/organisations", json=profile())
    assert r.status_code == 201
    return r.json["organisation"]["id"], r.json["token"], r.json["expires_in"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_a_new_token_has_a_lifetime_that_redis_enforces(registered, redis_client, store):
    org_id, token, expires_in = registered
    assert expires_in == store.org_token_ttl_s
    ttl = redis_client.ttl(TOKEN + token_digest(token))
    assert 0 < ttl <= expires_in


def test_an_expired_token_opens_nothing(client, registered, redis_client):
    org_id, token, _ = registered
    redis_client.delete(TOKEN + token_digest(token))  # what expiry does, without waiting for it
    assert client.patch(f"/v1/organisations/{org_id}", json={"name": "Nova"}, headers=bearer(token)).status_code == 401


def test_a_token_issued_before_tokens_expired_gets_a_lifetime_on_first_use(client, registered, redis_client):
    org_id, token, _ = registered
    redis_client.persist(TOKEN + token_digest(token))  # as tokens were stored before
    assert client.get(f"/v1/organisations/{org_id}/contacts", headers=bearer(token)).status_code == 200
    assert redis_client.ttl(TOKEN + token_digest(token)) > 0


def test_the_organisation_rotates_its_token_and_the_old_one_stops_at_once(client, registered):
    org_id, old, _ = registered
    r = client.post(f"/v1/organisations/{org_id}/token", headers=bearer(old))
    assert r.status_code == 200 and r.json["token"] != old and r.json["expires_in"] > 0
    new = r.json["token"]
    assert client.patch(f"/v1/organisations/{org_id}", json={"name": "Nova"}, headers=bearer(old)).status_code == 401
    assert client.patch(f"/v1/organisations/{org_id}", json={"name": "Nova"}, headers=bearer(new)).status_code == 200


def test_the_admin_revokes_a_leaked_token_and_may_issue_a_new_one(client, registered, admin):
    org_id, token, _ = registered
    assert client.delete(f"/v1/organisations/{org_id}/token", headers=admin).status_code == 204
    assert client.get(f"/v1/organisations/{org_id}/contacts", headers=bearer(token)).status_code == 401
    issued = client.post(f"/v1/organisations/{org_id}/token", headers=admin)
    assert issued.status_code == 200
    assert client.get(f"/v1/organisations/{org_id}/contacts", headers=bearer(issued.json["token"])).status_code == 200
    # with no token on record at all, deleting the organisation still works
    assert client.delete(f"/v1/organisations/{org_id}/token", headers=admin).status_code == 204
    assert client.delete(f"/v1/organisations/{org_id}", headers=admin).status_code == 204


def test_nobody_else_rotates_or_revokes_an_organisations_token(client, registered):
    org_id, token, _ = registered
    other = client.post("/v1/organisations", json=profile(name="Druga firma")).json["token"]
    assert client.post(f"/v1/organisations/{org_id}/token", headers=bearer(other)).status_code == 403
    assert client.delete(f"/v1/organisations/{org_id}/token", headers=bearer(other)).status_code == 403
    assert client.post(f"/v1/organisations/{org_id}/token").status_code == 401
    assert client.get(f"/v1/organisations/{org_id}/contacts", headers=bearer(token)).status_code == 200


def test_moving_an_organisation_to_another_cluster_keeps_its_tokens_lifetime(
    client, cluster, registered, admin, redis_client
):
    org_id, token, _ = registered
    cluster("pl-silesia-ict", "PL")
    redis_client.expire(TOKEN + token_digest(token), 1000)
    assert (
        client.patch(f"/v1/organisations/{org_id}", json={"cluster_id": "pl-silesia-ict"}, headers=admin).status_code
        == 200
    )
    assert 0 < redis_client.ttl(TOKEN + token_digest(token)) <= 1000
    assert client.get("/v1/auth/whoami", headers=bearer(token)).json["cluster_id"] == "pl-silesia-ict"
