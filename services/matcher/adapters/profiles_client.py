"""HTTP client of the profiles service, used to check coordinators' logins and tokens. Does I/O."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


class ProfilesUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Caller:
    role: str
    cluster_id: str | None
    username: str | None
    org_id: str | None


class ProfilesAuthClient:
    def __init__(self, base_url: str, timeout_s: float = 5.0, cache_ttl_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, Caller | None]] = {}
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              token: str | None = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {}
            return exc.code, payload
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ProfilesUnavailable(str(exc)) from exc

    def whoami(self, token: str) -> Caller | None:
        """The caller behind a bearer token, or None if profiles does not know it (cached briefly)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None and hit[0] > now:
                return hit[1]
        status, body = self._call("GET", "/v1/auth/whoami", token=token)
        if status == 401:
            caller = None
        elif status == 200:
            caller = Caller(body.get("role", ""), body.get("cluster_id"), body.get("username"), body.get("org_id"))
        else:
            raise ProfilesUnavailable(f"whoami answered {status}")
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now + self.cache_ttl_s, caller)
        return caller

    def login(self, username: str, password: str) -> dict[str, Any] | None:
        status, body = self._call("POST", "/v1/auth/login", {"username": username, "password": password})
        if status == 200:
            return body
        if status in (401, 422):
            return None
        raise ProfilesUnavailable(f"login answered {status}")
