"""The profiles client: 404 means gone, anything else that is not an answer means try later."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.notifier.adapters.profiles_client import ProfilesClient, ProfilesUnavailable


class _Handler(BaseHTTPRequestHandler):
    routes = {
        "/v1/organisations/org_1": (200, {"id": "org_1", "name": "A"}),
        "/v1/organisations/org_1/contacts": (
            200,
            {"contacts": [{"email": "a@example.org"}, "junk"]},
        ),
        "/v1/organisations/gone": (404, {"message": "No such organisation."}),
        "/v1/organisations/gone/contacts": (404, {"message": "No such organisation."}),
        "/v1/organisations/broken": (503, {"message": "down"}),
        "/v1/coordinators/anna": (401, {"message": "Unknown token"}),
        "/v1/clusters/weird": (200, ["not", "an", "object"]),
        "/v1/organisations/a%2Fb": (200, {"id": "a/b"}),
        "/v1/clusters/pl-ict/coordinators": (200, [{"username": "anna", "language": "pl"}, "junk"]),
        "/v1/clusters/gone/coordinators": (404, {"message": "No such cluster."}),
        "/v1/clusters/odd/coordinators": (200, {"coordinators": []}),
    }

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        status, body = self.routes.get(self.path, (500, {}))
        if self.headers.get("Authorization") != "Bearer svc":
            status, body = 401, {}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def client():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield ProfilesClient(f"http://127.0.0.1:{server.server_address[1]}/", "svc", timeout_s=2)
    server.shutdown()
    server.server_close()


def test_an_organisation_and_its_contacts_are_read_with_the_service_token(client):
    assert client.organisation("org_1") == {"id": "org_1", "name": "A"}
    assert client.contacts("org_1") == [{"email": "a@example.org"}]


def test_a_deleted_organisation_is_none(client):
    assert client.organisation("gone") is None
    assert client.contacts("gone") is None


def test_a_clusters_coordinators_are_a_list_and_a_deleted_cluster_is_none(client):
    assert client.cluster_coordinators("pl-ict") == [{"username": "anna", "language": "pl"}]
    assert client.cluster_coordinators("gone") is None


def test_ids_are_quoted_into_the_path(client):
    assert client.organisation("a/b") == {"id": "a/b"}


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.organisation("broken"),
        lambda c: c.coordinator("anna"),
        lambda c: c.cluster("weird"),
        lambda c: c.cluster_coordinators("odd"),
    ],
)
def test_errors_refusals_and_odd_answers_mean_try_later(client, call):
    with pytest.raises(ProfilesUnavailable):
        call(client)


def test_an_unreachable_service_means_try_later():
    with pytest.raises(ProfilesUnavailable):
        ProfilesClient("http://127.0.0.1:9", "svc", timeout_s=1).organisation("org_1")
