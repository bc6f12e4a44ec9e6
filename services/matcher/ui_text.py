"""The coordinators' page's words that code picks by a code (a decided pair's state; a rejection
reason's are partnermatch.reasons.REJECTION_LABELS): their English msgids of the "coordinators"
catalogue, translated when the page is rendered. Pure."""

from __future__ import annotations

from partnermatch.i18n import N_

DOMAIN = "coordinators"


STATE_LABELS: dict[str, str] = {
    # Translators: a suggestion both clusters' coordinators approved
    "approved": N_("approved"),
    # Translators: a suggestion a coordinator rejected
    "rejected": N_("rejected"),
}
