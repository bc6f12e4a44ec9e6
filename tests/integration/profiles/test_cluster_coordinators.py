"""GET /v1/clusters/<id>/coordinators, which the notifier reads with the service token to send a
cluster's digest and decision notices to each of its coordinators, in their language."""

from __future__ import annotations

import pytest

from .conftest import SERVICE, profile

pytestmark = pytest.mark.integration


def _coordinator(client, admin, cluster_id, username, language):
    r = client.post(
        f"/v1/clusters/{cluster_id}/coordinators",
        headers=admin,
        json={
            "username": username,
            "password": "correct horse battery",
            "name": username.title(),
            "email": f"{username}@example.org",
            "language": language,
        },
    )
    assert r.status_code == 201, r.json


def test_the_service_token_reads_every_coordinator_of_a_cluster_with_address_and_language(client, admin, cluster):
    cluster()
    cluster("pl-silesia-ict", "PL")
    _coordinator(client, admin, "rs-vojvodina-ict", "marko", "sr-Cyrl")
    _coordinator(client, admin, "rs-vojvodina-ict", "jelena", "sr")
    _coordinator(client, admin, "pl-silesia-ict", "anna", "pl")
    r = client.get("/v1/clusters/rs-vojvodina-ict/coordinators", headers={"Authorization": f"Bearer {SERVICE}"})
    assert r.status_code == 200
    assert r.json == [
        {
            "username": "jelena",
            "cluster_id": "rs-vojvodina-ict",
            "name": "Jelena",
            "email": "jelena@example.org",
            "language": "sr",
        },
        {
            "username": "marko",
            "cluster_id": "rs-vojvodina-ict",
            "name": "Marko",
            "email": "marko@example.org",
            "language": "sr-Cyrl",
        },
    ]
    documented = client.get("/openapi.json").json["paths"]["/v1/clusters/{cluster_id}/coordinators"]["get"]
    assert {"200", "401", "403", "404"} <= set(documented["responses"])


def test_nobody_else_reads_them_and_an_unknown_cluster_is_a_404(client, admin, cluster):
    cluster()
    cluster("pl-silesia-ict", "PL")
    _coordinator(client, admin, "pl-silesia-ict", "anna", "pl")
    path = "/v1/clusters/rs-vojvodina-ict/coordinators"
    assert client.get(path).status_code == 401
    registered = client.post("/v1/organisations", json=profile())
    assert client.get(path, headers={"Authorization": f"Bearer {registered.json['token']}"}).status_code == 403
    token = client.post("/v1/auth/login", json={"username": "anna", "password": "correct horse battery"}).json["token"]
    assert client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 403, "another cluster's"
    missing = client.get("/v1/clusters/no-such-cluster/coordinators", headers={"Authorization": f"Bearer {SERVICE}"})
    assert missing.status_code == 404
