"""HTTP client of the profiles service, used to check coordinators' logins and tokens and to name
the clusters on the coordinators' pages. Does I/O."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

CLUSTER_NAMES_TTL_S = 300.0  # a cluster renamed or added shows by its new name within five minutes
NAMES_RETRY_S = 30.0
# A cluster the names read last do not hold (added since) has them read again at once, at most this
# often: its coordinator's first look at the queue shows its name, not its id.
UNKNOWN_CLUSTER_RETRY_S = 5.0


class ProfilesUnavailable(Exception):
    pass


class LoginThrottled(Exception):
    """Profiles refuses logins to this account for now (too many failures); retry after some seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Caller:
    role: str
    cluster_id: str | None
    username: str | None
    org_id: str | None


class ProfilesAuthClient:
    def __init__(
        self,
        base_url: str,
        timeout_s: float = 5.0,
        cache_ttl_s: float = 30.0,
        service_token: str | None = None,
        names_ttl_s: float = CLUSTER_NAMES_TTL_S,
        unknown_retry_s: float = UNKNOWN_CLUSTER_RETRY_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Logins are sent with it, so profiles counts failures per account only and leaves
        # counting per visitor address to the page, which sees the addresses.
        self.service_token = service_token
        self.timeout_s = timeout_s
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, Caller | None]] = {}
        self._lock = threading.Lock()
        self.names_ttl_s = names_ttl_s
        self._names: dict[str, str] = {}
        self._names_until = 0.0
        self._names_asked = float("-inf")  # when they were last asked for
        self.unknown_retry_s = unknown_retry_s

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        status, payload, _headers = self._call_with_headers(method, path, body, token)
        return status, payload

    def _call_with_headers(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> tuple[int, dict[str, Any], Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.status, json.loads(resp.read() or b"{}"), resp.headers
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {}
            return exc.code, payload, exc.headers
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

    def cluster_names(self, wanted: str | None = None) -> dict[str, str]:
        """Every cluster's name by its id (profiles' public list), read again after names_ttl_s,
        or at once when they lack the cluster `wanted` (at most every unknown_retry_s).
        While profiles cannot answer, the names read last (none before the first answer; a page
        shows a cluster's id then), asked again after NAMES_RETRY_S rather than at every page."""
        now = time.monotonic()
        with self._lock:
            missing = wanted is not None and wanted not in self._names
            if now < self._names_until and not (missing and now >= self._names_asked + self.unknown_retry_s):
                return self._names
            # one request reads them again; the others meanwhile show the names read last
            self._names_until = max(self._names_until, now + NAMES_RETRY_S)
            self._names_asked = now
        try:
            status, body = self._call("GET", "/v1/clusters")
            if status != 200 or not isinstance(body, list):
                raise ProfilesUnavailable(f"the clusters' list answered {status}")
            names = {c["id"]: c["name"] for c in body if isinstance(c, dict) and c.get("id") and c.get("name")}
        except (ProfilesUnavailable, ValueError, http.client.HTTPException) as exc:
            logger.warning("cluster names unavailable; pages show cluster ids meanwhile", extra={"error": str(exc)})
            with self._lock:
                return self._names
        with self._lock:
            self._names, self._names_until = names, now + self.names_ttl_s
            return names

    def login(self, username: str, password: str) -> dict[str, Any] | None:
        """The session profiles gives (token, expires_in, ...), or None for a wrong login.
        Raises LoginThrottled while the account has failed too often, ProfilesUnavailable else."""
        status, body, headers = self._call_with_headers(
            "POST", "/v1/auth/login", {"username": username, "password": password}, token=self.service_token
        )
        if status == 200:
            return body
        if status in (401, 422):
            return None
        if status == 429:
            try:
                retry_after = int((headers or {}).get("Retry-After", "60"))
            except ValueError:
                retry_after = 60
            raise LoginThrottled(retry_after)
        raise ProfilesUnavailable(f"login answered {status}")

    def logout(self, token: str) -> None:
        """Revoke a coordinator's login token at profiles, and forget what was cached about it."""
        self.forget(token)
        status, _ = self._call("POST", "/v1/auth/logout", token=token)
        if status not in (204, 401):  # 401: it had expired or was revoked already
            raise ProfilesUnavailable(f"logout answered {status}")

    def forget(self, token: str) -> None:
        with self._lock:
            self._cache.pop(token, None)
