"""The coordinators' page sessions, kept in the matcher's Redis: the browser's cookie holds only a
random id; the coordinator's login token stays on the server, under the id's digest, and is gone
at logout. Does I/O (Redis)."""

from __future__ import annotations

import hashlib
import secrets

import redis

PAGE_SESSION = "matcher:page-session:"  # sha256 of a page session id -> the coordinator's login token


def _key(session_id: str) -> str:
    return PAGE_SESSION + hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class PageSessions:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def open(self, token: str, ttl_s: int) -> str:
        """A new session holding `token` for `ttl_s` seconds (the token's own lifetime); its id."""
        session_id = secrets.token_urlsafe(32)
        self.r.set(_key(session_id), token, ex=max(1, ttl_s))
        return session_id

    def token(self, session_id: str | None) -> str | None:
        if not session_id:
            return None
        raw = self.r.get(_key(session_id))
        return raw.decode() if raw is not None else None

    def close(self, session_id: str | None) -> str | None:
        """End the session; the token it held (to be revoked too), or None."""
        if not session_id:
            return None
        raw = self.r.getdel(_key(session_id))
        return raw.decode() if raw is not None else None
