"""The one place where the profiles service's real adapters are built; tests pass their own."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from services.profiles.adapters.matcher_client import MatcherClient
from services.profiles.adapters.redis_store import RedisProfileStore
from services.profiles.adapters.signin_mailer import Background, SmtpSigninMailer
from services.profiles.config import ProfilesSettings
from services.profiles.services import SigninMailer


def _no_matcher() -> MatcherClient:
    # Deps built without one (tests of other things) answer "not available" rather than crash.
    return MatcherClient(ProfilesSettings.matcher_url, service_token=None)


@dataclass
class ProfilesDeps:
    store: RedisProfileStore
    matcher: MatcherClient = field(default_factory=_no_matcher)
    # None: the one of the settings (create_app fills it in), so tests of other things need none.
    signin_mailer: SigninMailer | None = None
    background: Background = field(default_factory=Background)


def signin_mailer(settings: ProfilesSettings) -> SigninMailer:
    return SmtpSigninMailer(settings.smtp, max(1, settings.signin_link_ttl_s // 60))


def build_deps(settings: ProfilesSettings) -> ProfilesDeps:
    # redis-py connects lazily, on the first command: nothing happens at import or here.
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10, health_check_interval=30)
    return ProfilesDeps(
        store=RedisProfileStore(client, org_token_ttl_s=settings.org_token_ttl_s),
        matcher=MatcherClient(settings.matcher_url, settings.service_token, settings.matcher_timeout_s),
        signin_mailer=signin_mailer(settings),
    )
