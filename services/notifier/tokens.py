"""Signed one-click unsubscribe tokens: they carry an address, its organisation (or a coordinator's
cluster), the language and the kind of email it unsubscribes from, so the unsubscribe page needs no
login and no lookup. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from services.notifier.domain import COORDINATOR_KINDS, PARTNERSHIP

SALT = "partnermatch.notifier.unsubscribe.v1"


@dataclass(frozen=True)
class UnsubscribeRequest:
    email: str
    org_id: str
    language: str
    kind: str = PARTNERSHIP  # tokens made before coordinators' notices carry no kind


class UnsubscribeTokens:
    """Tokens do not expire: a link in a years-old email must still work (RFC 8058 expects that)."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("an unsubscribe token needs a secret key")
        self._serializer = URLSafeSerializer(secret_key, salt=SALT)

    def sign(self, email: str, org_id: str, language: str, kind: str = PARTNERSHIP) -> str:
        data = {"e": email.strip().lower(), "o": org_id, "l": language}
        if kind != PARTNERSHIP:
            data["k"] = kind
        return str(self._serializer.dumps(data))

    def verify(self, token: str) -> UnsubscribeRequest | None:
        """The request a token carries, or None for anything forged, damaged or malformed."""
        if not token or len(token) > 2000:
            return None
        try:
            data = self._serializer.loads(token)
        except BadSignature:
            return None
        except Exception:  # noqa: BLE001 - a signed but unreadable payload is still a bad token
            return None
        if not isinstance(data, dict):
            return None
        email, org_id, language = data.get("e"), data.get("o"), data.get("l")
        kind = data.get("k", PARTNERSHIP)
        if not (
            isinstance(email, str)
            and "@" in email
            and isinstance(org_id, str)
            and isinstance(language, str)
            and kind in (PARTNERSHIP, *COORDINATOR_KINDS)
        ):
            return None
        return UnsubscribeRequest(email=email, org_id=org_id, language=language, kind=kind)


def unsubscribe_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/unsubscribe/{token}"
