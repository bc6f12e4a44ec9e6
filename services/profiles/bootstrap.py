"""The one place where the profiles service's real adapters are built; tests pass their own."""

from __future__ import annotations

from dataclasses import dataclass, field

from partnermatch.redis_client import connect
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
    # redis-py connects on the first command (a cluster client reads the slot map here): nothing
    # happens at import.
    client = connect(settings.redis_url, socket_timeout=10, health_check_interval=30)
    store = RedisProfileStore(client, org_token_ttl_s=settings.org_token_ttl_s)
    store.adopt_untagged_keys()  # before any process of this service writes: keys from before the tag
    return ProfilesDeps(
        store=store,
        matcher=MatcherClient(settings.matcher_url, settings.service_token, settings.matcher_timeout_s),
        signin_mailer=signin_mailer(settings),
    )
