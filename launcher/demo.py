"""Demo data for `partnermatch up`: clusters, their coordinators and member organisations,
loaded through the profiles API like any client would (so every profile flows through Kafka).

Idempotent: clusters, coordinators and organisations that exist are left alone. Does I/O (HTTP).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from typing import Any

logger = logging.getLogger(__name__)

DEMO_PASSWORD = "demo-coordinator-2026"  # local demo only; printed by `partnermatch up`


@dataclass(frozen=True)
class DemoSummary:
    clusters: int
    coordinators: list[tuple[str, str, str]]  # (username, cluster, language)
    organisations: int
    languages: int


def _data(name: str) -> str:
    return resources.files("launcher").joinpath("demo_data", name).read_text(encoding="utf-8")


def demo_clusters() -> list[dict[str, Any]]:
    return json.loads(_data("clusters.json"))


def demo_organisations() -> list[dict[str, Any]]:
    return [json.loads(line) for line in _data("organisations.jsonl").splitlines() if line.strip()]


class _Api:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: Any = None, auth: bool = True) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.base_url + path, method=method, data=json.dumps(body).encode() if body is not None else None
        )
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


def load_demo(profiles_url: str, admin_token: str) -> DemoSummary:
    api = _Api(profiles_url, admin_token)
    coordinators = []
    for cluster in demo_clusters():
        status, body = api.call(
            "POST", "/v1/clusters", {k: cluster[k] for k in ("id", "name", "country", "description")}
        )
        if status not in (201, 409):
            raise RuntimeError(f"creating cluster {cluster['id']} failed: {status} {body}")
        for coordinator in cluster["coordinators"]:
            status, body = api.call(
                "POST", f"/v1/clusters/{cluster['id']}/coordinators", {**coordinator, "password": DEMO_PASSWORD}
            )
            if status not in (201, 409):
                raise RuntimeError(f"creating coordinator {coordinator['username']} failed: {status} {body}")
            coordinators.append((coordinator["username"], cluster["id"], coordinator["language"]))
    existing: set[tuple[str, str]] = set()
    page = 1
    while True:
        status, body = api.call("GET", f"/v1/organisations?page={page}&page_size=100")
        if status != 200 or not body:
            break
        existing |= {(o["cluster_id"], o["name"]) for o in body}
        page += 1
    orgs = demo_organisations()
    created = 0
    for org in orgs:
        if (org["cluster_id"], org["name"]) in existing:
            continue
        status, body = api.call("POST", "/v1/organisations", org, auth=False)
        if status != 201:
            raise RuntimeError(f"registering {org['name']!r} failed: {status} {body}")
        created += 1
    logger.info("demo data loaded", extra={"organisations_created": created, "organisations": len(orgs)})
    return DemoSummary(
        clusters=len(demo_clusters()),
        coordinators=coordinators,
        organisations=len(orgs),
        languages=len({o.get("language") for o in orgs}),
    )
