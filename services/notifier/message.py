"""Builds the email itself: headers only from checked values (addresses through
`email.headerregistry.Address`, names reduced to one printable line, see `partnermatch.mail`), plain
text and HTML parts, RFC 8058 one-click unsubscribe headers, a deterministic Message-ID. Pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime

# Re-exported: the notifier's code and tests read them from here.
from partnermatch.mail import InvalidAddress as InvalidAddress
from partnermatch.mail import UnsafeHeader as UnsafeHeader
from partnermatch.mail import one_line, refuse_line_breaks, wire_bytes
from partnermatch.mail import safe_address as safe_address
from services.notifier.render import RenderedEmail

_URL = re.compile(r"^https?://[!#$%&'()*+,\-./0-9:;=?@A-Z\[\]_a-z~]+$")


def build_message(
    *,
    rendered: RenderedEmail,
    sender: Address,
    recipient: Address,
    reply_to: Sequence[Address],
    message_id: str,
    unsubscribe_url: str,
    delivery_id: str,
    date: datetime | None = None,
) -> EmailMessage:
    if not _URL.fullmatch(unsubscribe_url):
        raise ValueError("the unsubscribe URL must be a plain http(s) URL")
    msg = EmailMessage(policy=default_policy)
    msg["From"] = sender
    msg["To"] = recipient
    if reply_to:
        msg["Reply-To"] = list(reply_to)
    msg["Subject"] = one_line(rendered.subject, 400)
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["X-Partnermatch-Delivery"] = delivery_id
    msg.set_content(rendered.text, cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    # After the parts: set_content drops Content-* headers.
    msg["Content-Language"] = rendered.language
    refuse_line_breaks(msg)
    wire_bytes(msg)  # fails here, before any SMTP, if serialising would add a header
    return msg
