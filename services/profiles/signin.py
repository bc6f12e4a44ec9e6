"""Sign-in links and page sessions of organisations, as values: a link carries a signed, dated
nonce (single use is kept by the store), a session id is random and stored only as its digest.
Pure, no I/O.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from services.profiles.domain import token_digest

SALT = "partnermatch.profiles.signin.v1"
MAX_TOKEN_CHARS = 500


@dataclass(frozen=True)
class SigninGrant:
    """What a valid link grants: a session for `org_id`, asked for by its contact `contact_id`."""

    nonce: str
    org_id: str
    contact_id: str


class SigninLinks:
    """Tokens of sign-in links: `itsdangerous` signs and dates them; they are refused after
    `max_age_s`. Whether one was used already is the store's business (`take_signin`)."""

    def __init__(self, secret_key: str, max_age_s: int) -> None:
        if not secret_key:
            raise ValueError("sign-in links need a secret key")
        self._serializer = URLSafeTimedSerializer(secret_key, salt=SALT)
        self.max_age_s = max_age_s

    def new(self, org_id: str, contact_id: str) -> tuple[SigninGrant, str]:
        grant = SigninGrant(nonce=secrets.token_urlsafe(24), org_id=org_id, contact_id=contact_id)
        return grant, str(self._serializer.dumps({"n": grant.nonce, "o": org_id, "c": contact_id}))

    def read(self, token: str) -> SigninGrant | None:
        """The grant a token carries, or None when it is forged, damaged, malformed or too old."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            data = self._serializer.loads(token, max_age=self.max_age_s)
        except (SignatureExpired, BadSignature):
            return None
        except Exception:  # noqa: BLE001 - a signed but unreadable payload is still a bad token
            return None
        if not isinstance(data, dict):
            return None
        nonce, org_id, contact_id = data.get("n"), data.get("o"), data.get("c")
        if not all(isinstance(v, str) and v for v in (nonce, org_id, contact_id)):
            return None
        return SigninGrant(nonce=nonce, org_id=org_id, contact_id=contact_id)  # type: ignore[arg-type]


def new_session_id() -> tuple[str, str]:
    """A page session id (kept in the signed cookie) and its digest (kept in Redis)."""
    session_id = secrets.token_urlsafe(32)
    return session_id, token_digest(session_id)
