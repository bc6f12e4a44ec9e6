"""HTTP client of the profiles service: organisations, their contacts, coordinators and clusters,
read with the service token at send time. Does I/O (HTTP, urllib: a few GETs need no library)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

logger = logging.getLogger(__name__)


class ProfilesUnavailable(Exception):
    """No usable answer (down, 5xx, refused our token): try again later."""


class ProfilesClient:
    def __init__(self, base_url: str, service_token: str | None, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.service_token = service_token
        self.timeout_s = timeout_s

    def _get(self, path: str, shape: type = dict) -> Any:
        """The JSON body (an object, or a list when `shape` says so), or None when the thing does
        not exist (404)."""
        req = urllib.request.Request(self.base_url + path, method="GET")
        req.add_header("Accept", "application/json")
        if self.service_token:
            req.add_header("Authorization", f"Bearer {self.service_token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                body = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 404:
                return None
            if exc.code in (401, 403):
                logger.error(
                    "profiles refused the service token; check PARTNERMATCH_SERVICE_TOKEN",
                    extra={"status": exc.code, "path": path},
                )
            raise ProfilesUnavailable(f"GET {path} answered {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise ProfilesUnavailable(f"GET {path}: {exc}") from None
        if not isinstance(body, shape):
            raise ProfilesUnavailable(f"GET {path}: not a JSON {shape.__name__}")
        return body

    @staticmethod
    def _seg(value: str) -> str:
        return urllib.parse.quote(value, safe="")

    def organisation(self, org_id: str) -> dict[str, Any] | None:
        return self._get(f"/v1/organisations/{self._seg(org_id)}")

    def contacts(self, org_id: str) -> list[dict[str, Any]] | None:
        body = self._get(f"/v1/organisations/{self._seg(org_id)}/contacts")
        if body is None:
            return None
        contacts = body.get("contacts") or []
        return [c for c in contacts if isinstance(c, dict)]

    def coordinator(self, username: str) -> dict[str, Any] | None:
        return self._get(f"/v1/coordinators/{self._seg(username)}")

    def cluster(self, cluster_id: str) -> dict[str, Any] | None:
        return self._get(f"/v1/clusters/{self._seg(cluster_id)}")

    def cluster_coordinators(self, cluster_id: str) -> list[dict[str, Any]] | None:
        """The coordinators of a cluster (username, name, email, language); None if the cluster is
        gone."""
        body = self._get(f"/v1/clusters/{self._seg(cluster_id)}/coordinators", shape=list)
        if body is None:
            return None
        return [c for c in body if isinstance(c, dict)]
