"""The coordinators' page's words that code picks by a code (a rejection reason, a decided pair's state):
their English msgids of the "coordinators" catalogue, translated when the page is rendered. Pure."""

from __future__ import annotations

DOMAIN = "coordinators"


def N_(message: str) -> str:
    """Marks a msgid for extraction (`make messages`) without translating it here."""
    return message


REASON_LABELS: dict[str, str] = {
    "not_relevant": N_("Not relevant"),
    "already_partners": N_("Already partners"),
    "different_markets": N_("Different markets"),
    "no_capacity": N_("No capacity now"),
    "other": N_("Other"),
}

STATE_LABELS: dict[str, str] = {
    # Translators: a suggestion both clusters' coordinators approved
    "approved": N_("approved"),
    # Translators: a suggestion a coordinator rejected
    "rejected": N_("rejected"),
}
