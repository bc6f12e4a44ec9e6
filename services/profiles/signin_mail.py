"""The sign-in email: text in the contact person's language (the "organisations" catalogue,
rendered with Jinja), headers only from checked values. Pure, no I/O (templates are read once).
"""

from __future__ import annotations

import contextvars
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import jinja2

from partnermatch import i18n
from partnermatch.i18n import N_
from partnermatch.languages import READER_LANGUAGES
from partnermatch.mail import one_line, refuse_line_breaks, safe_address, wire_bytes

DOMAIN = "organisations"
TEMPLATES = Path(__file__).resolve().parent / "templates" / "email"


SUBJECT = N_("Your sign-in link to partnermatch")
_language: contextvars.ContextVar[str] = contextvars.ContextVar("signin_mail_language", default="en")
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=False,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
i18n.install(_env, DOMAIN, _language.get)


def render_signin(lang: str, name: str, links: list[tuple[str, str]], minutes: int) -> tuple[str, str]:
    """(subject, plain text) of the email carrying `links`, (organisation name, address) pairs."""
    lang = lang if lang in READER_LANGUAGES else "en"
    token = _language.set(lang)
    try:
        text = _env.get_template("signin.txt").render(name=one_line(name), links=links, minutes=minutes)
        subject = i18n.gettext(lang, DOMAIN, SUBJECT)
    finally:
        _language.reset(token)
    return subject, text


def build_signin_message(
    contact: dict[str, Any], links: list[tuple[str, str]], minutes: int, sender: Address
) -> EmailMessage:
    """The email to one contact person; raises partnermatch.mail.UnsafeHeader (InvalidAddress) for
    an address that cannot be written safely."""
    lang = contact.get("language") or "en"
    subject, text = render_signin(lang, contact.get("name") or "", links, minutes)
    msg = EmailMessage(policy=default_policy)
    msg["From"] = sender
    msg["To"] = safe_address(contact.get("name"), contact.get("email") or "")
    msg["Subject"] = one_line(subject, 400)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=sender.domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, cte="quoted-printable")
    msg["Content-Language"] = lang
    refuse_line_breaks(msg)
    wire_bytes(msg)
    return msg
