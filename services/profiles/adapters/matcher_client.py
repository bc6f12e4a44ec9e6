"""HTTP client of the matcher: an organisation's partnerships as it sees them, read with the
service token. Does I/O (HTTP, urllib: one GET needs no library)."""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

logger = logging.getLogger(__name__)


class MatcherUnavailable(Exception):
    """No usable answer from the matcher (down, slow, 5xx, refused our token, not JSON): the page
    says partnerships cannot be shown right now."""


class MatcherClient:
    def __init__(self, base_url: str, service_token: str | None, timeout_s: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.service_token = service_token
        self.timeout_s = timeout_s

    def partnerships(self, org_id: str, lang: str = "en") -> list[dict[str, Any]]:
        """The matcher's items for `org_id` (GET /v1/organisations/<org_id>/partnerships), reasons
        rendered in `lang`. Raises MatcherUnavailable."""
        path = f"/v1/organisations/{urllib.parse.quote(org_id, safe='')}/partnerships?" + urllib.parse.urlencode(
            {"lang": lang}
        )
        body = self._get(path)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise MatcherUnavailable(f"GET {path}: not a JSON list of objects")
        return body

    def _get(self, path: str) -> Any:
        if not self.service_token:
            # Without it every call would be refused; say what is missing instead.
            raise MatcherUnavailable("PARTNERMATCH_SERVICE_TOKEN is not set")
        req = urllib.request.Request(self.base_url + path, method="GET")
        req.add_header("Accept", "application/json")
        req.add_header("Authorization", f"Bearer {self.service_token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (401, 403):
                logger.error(
                    "the matcher refused the service token; check PARTNERMATCH_SERVICE_TOKEN",
                    extra={"status": exc.code, "path": path},
                )
            raise MatcherUnavailable(f"GET {path} answered {exc.code}") from None
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError, ValueError) as exc:
            raise MatcherUnavailable(f"GET {path}: {exc}") from None
