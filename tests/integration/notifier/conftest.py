"""Real parts for the notifier: redis-server, the Kafka-protocol broker, the profiles service over
HTTP on loopback, and an SMTP server (the notifier's own sink) that can be told to refuse."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import make_server

from partnermatch import events
from partnermatch.broker import ensure_topics
from partnermatch.messaging import KafkaPublisher
from partnermatch.topics import dlq
from services.notifier.adapters.smtp_sink import SmtpSink
from services.notifier.bootstrap import build_deps
from services.notifier.config import NotifierSettings
from services.notifier.services import DecisionRecorder, DeliveryWorker
from services.profiles.adapters.redis_store import RedisProfileStore
from services.profiles.bootstrap import ProfilesDeps
from services.profiles.config import ProfilesSettings
from services.profiles.entrypoints.app import create_app as create_profiles_app

ADMIN = "notifier-test-admin-token"
SERVICE = "notifier-test-service-token"
SECRET = "notifier-test-secret-key"
CLUSTERS = {
    "pl-silesia-ict": ("PL", "anna", "Anna Nowak"),
    "rs-vojvodina-ict": ("RS", "marko", "Marko Marković"),
    "al-tirana-creative": ("AL", "besa", "Besa Krasniqi"),
}


class ServerThread:
    """A WSGI app served over HTTP on a loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@dataclass
class Organisation:
    id: str
    name: str
    cluster_id: str
    contacts: list[dict[str, Any]]

    def consenting(self) -> list[dict[str, Any]]:
        return [c for c in self.contacts if c["consent"]]


@dataclass
class Profiles:
    server: ServerThread
    client: Any
    orgs: dict[str, Organisation] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def register(
        self,
        key: str,
        cluster_id: str,
        name: str,
        language: str,
        capabilities: str,
        goals: str,
        contacts: list[dict[str, Any]],
    ) -> Organisation:
        country = CLUSTERS[cluster_id][0]
        r = self.client.post(
            "/v1/organisations",
            json={
                "name": name,
                "cluster_id": cluster_id,
                "country": country,
                "language": language,
                "capabilities": capabilities,
                "goals": goals,
                "sectors": ["ict"],
                "contacts": contacts,
            },
        )
        assert r.status_code == 201, r.json
        org = Organisation(r.json["organisation"]["id"], name, cluster_id, contacts)
        self.orgs[key] = org
        return org

    def delete(self, key: str) -> None:
        r = self.client.delete(f"/v1/organisations/{self.orgs[key].id}", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 204


def person(name: str, email: str, language: str, consent: bool = True) -> dict[str, Any]:
    return {"name": name, "email": email, "language": language, "consent": consent}


@pytest.fixture
def profiles(redis_client, redis_server):
    """The real profiles service over HTTP with three clusters, a coordinator in each, and three
    organisations whose contacts read six languages (one contact without consent)."""
    settings = ProfilesSettings(
        redis_url=redis_server.url,
        kafka_bootstrap="unused:9092",
        admin_token=ADMIN,
        service_token=SERVICE,
    )
    app = create_profiles_app(settings, ProfilesDeps(store=RedisProfileStore(redis_client)))
    client = app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    for cluster_id, (country, username, name) in CLUSTERS.items():
        assert (
            client.post(
                "/v1/clusters",
                headers=admin,
                json={"id": cluster_id, "name": f"Cluster {cluster_id}", "country": country},
            ).status_code
            == 201
        )
        assert (
            client.post(
                f"/v1/clusters/{cluster_id}/coordinators",
                headers=admin,
                json={
                    "username": username,
                    "password": "coordinator password 1",
                    "name": name,
                    "email": f"{username}@coordinators.example.org",
                    "language": "en",
                },
            ).status_code
            == 201
        )
    server = ServerThread(app)
    found = Profiles(server, client)
    found.register(
        "silesia",
        "pl-silesia-ict",
        "Śląski Klaster ICT",
        "pl",
        "Tworzymy oprogramowanie <dla> rolnictwa & przemysłu.",
        "Szukamy partnerów z Bałkanów.",
        [
            person("Anna Kowalska", "anna.kowalska@silesia.example.pl", "pl"),
            person("Piotr Nowak", "piotr.nowak@silesia.example.pl", "pl", consent=False),
            person("Hans Müller", "hans.mueller@silesia.example.pl", "de"),
        ],
    )
    found.register(
        "vojvodina",
        "rs-vojvodina-ict",
        "Кластер ИКТ Нови Сад",
        "sr",
        "Развој софтвера и обука програмера.",
        "Tražimo partnere iz poljoprivrede.",
        [
            person("Јелена Петровић", "jelena@vojvodina.example.rs", "sr-Cyrl"),
            {**person("Milan Jovanović", "milan@vojvodina.example.rs", "sr"), "share_contact": True},
        ],
    )
    found.register(
        "tirana",
        "al-tirana-creative",
        "Klasteri Krijues Tirana",
        "sq",
        "Dizajn dhe prodhim video.",
        "Kërkojmë partnerë teknologjikë.",
        [
            person("Besa Hoxha", "besa@tirana.example.al", "sq"),
            person("Иван Петров", "ivan@tirana.example.al", "ru"),
        ],
    )
    yield found
    server.stop()


@pytest.fixture
def sink():
    with SmtpSink() as running:
        yield running


@pytest.fixture
def notifier_settings(redis_server, profiles, sink) -> Callable[..., NotifierSettings]:
    def make(**over: Any) -> NotifierSettings:
        values: dict[str, Any] = {
            "redis_url": redis_server.url,
            "kafka_bootstrap": "unused:9092",
            "profiles_url": profiles.url,
            "service_token": SERVICE,
            "secret_key": SECRET,
            "public_url": "http://127.0.0.1:8083",
            "sender": "partnermatch <noreply@partnermatch.example.org>",
            "smtp_port": sink.port,
            "smtp_timeout_s": 5,
            "profiles_timeout_s": 5,
            "retry_base_s": 0.2,
            "retry_max_s": 1.0,
            "max_attempts": 5,
            "claim_lease_s": 30,
            "send_threads": 2,
            "poll_ms": 50,
            "stats_interval_s": 3600,
        }
        values.update(over)
        return NotifierSettings(**values)

    return make


def approval(profiles: Profiles, first: str, second: str) -> dict[str, Any]:
    """The payload of `match.approved` for two registered organisations, as the matcher sends it."""
    a, b = sorted((profiles.orgs[first], profiles.orgs[second]), key=lambda o: o.id)
    coordinators = {cluster: username for cluster, (_, username, _) in CLUSTERS.items()}
    return {
        "pair_id": events.pair_id(a.id, b.id),
        "org_a": a.id,
        "org_b": b.id,
        "cluster_a": a.cluster_id,
        "cluster_b": b.cluster_id,
        "score": 0.64,
        "reasons": [
            {
                "concept": None,
                "kind": "term",
                "direction": "a_offers_b_seeks",
                "weight": 0.5,
                "terms_a": ["oprogramowanie"],
                "terms_b": ["softver"],
            },
            {
                "concept": None,
                "kind": "term",
                "direction": "shared",
                "weight": 0.2,
                "terms_a": ["rolnictwa"],
                "terms_b": ["poljoprivrede"],
            },
        ],
        "decisions": [
            {
                "cluster_id": o.cluster_id,
                "coordinator": coordinators[o.cluster_id],
                "decision": "approve",
                "reason_code": None,
                "reason_text": None,
                "decided_at": "2026-11-23T09:30:00+00:00",
            }
            for o in (a, b)
        ],
    }


def approved_event(payload: dict[str, Any], event_type: str = events.MATCH_APPROVED) -> bytes:
    return events.encode(events.new_event(event_type, payload, "notifier-tests"))


@pytest.fixture
def decisions_topic(kafka_bootstrap, unique_name):
    topic = unique_name("decisions")
    ensure_topics(kafka_bootstrap, {topic: 1, dlq(topic): 1})
    return topic


@pytest.fixture
def publisher(kafka_bootstrap):
    pub = KafkaPublisher(kafka_bootstrap, client_id="notifier-tests")
    yield pub
    pub.close()


@pytest.fixture
def direct(notifier_settings):
    """The consumer's use case and one delivery worker with the real adapters, without Kafka."""

    def make(**over: Any) -> tuple[DecisionRecorder, DeliveryWorker]:
        settings = notifier_settings(**over)
        deps = build_deps(settings)
        worker = DeliveryWorker(
            ledger=deps.ledger,
            profiles=deps.profiles,
            mailer=deps.mailer,
            tokens=deps.tokens,
            settings=settings,
            name="test-worker",
        )
        return DecisionRecorder(deps.ledger), worker

    return make


def record(recorder: DecisionRecorder, payload: dict[str, Any]) -> str:
    return recorder.handle(events.decode(approved_event(payload)))
