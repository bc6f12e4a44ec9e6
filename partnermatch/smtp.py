"""Sends one message over SMTP and says exactly how far it got; the settings of the SMTP server
every service sends through (the notifier's partnership emails, the profiles' sign-in links).
Does I/O (network).

The conversation is driven step by step (MAIL, RCPT, then DATA by hand) because the steps mean
different things for "exactly once": until the message body has been sent, a failure is safely
retryable; once the body is out and no final reply came, nobody knows whether the server took it.
`before_data` lets the caller record that boundary (the ledger's `sending`) at the right moment.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.headerregistry import Address, AddressHeader, HeaderRegistry
from email.message import EmailMessage

from partnermatch.mail import PERMANENT, classify_smtp_code, wire_bytes
from partnermatch.settings import SettingError, setting

logger = logging.getLogger(__name__)

# The names keep the NOTIFIER_ prefix they were introduced with: one SMTP server for all mail.
SMTP_HOST = setting(
    "NOTIFIER_SMTP_HOST", "127.0.0.1", "SMTP server partnermatch sends through: partnership emails and sign-in links"
)
SMTP_PORT = setting("NOTIFIER_SMTP_PORT", "2525", "Port of the SMTP server (2525: the local mail sink)")
SMTP_USER = setting("NOTIFIER_SMTP_USER", None, "SMTP user name; no login when empty")
SMTP_PASSWORD = setting("NOTIFIER_SMTP_PASSWORD", None, "SMTP password", secret=True)
SMTP_STARTTLS = setting(
    "NOTIFIER_SMTP_STARTTLS",
    "false",
    "Upgrade the SMTP connection with STARTTLS (`true` for a real relay)",
)
SMTP_TIMEOUT_S = setting("NOTIFIER_SMTP_TIMEOUT_S", "30", "Timeout of each SMTP step (seconds)")
MAIL_FROM = setting(
    "NOTIFIER_FROM",
    "partnermatch <noreply@partnermatch.localhost>",
    "Sender of partnership emails and sign-in links; its domain also names the Message-IDs",
)


def flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def parse_sender(value: str) -> Address:
    """The one configured sender address, checked once at start-up."""
    try:
        header = HeaderRegistry()("From", value)
        addresses = header.addresses if isinstance(header, AddressHeader) else ()
    except (ValueError, TypeError, IndexError) as exc:
        raise SettingError(f"NOTIFIER_FROM is not an address: {exc}") from None
    if len(addresses) != 1 or not addresses[0].domain or header.defects:
        raise SettingError(f"NOTIFIER_FROM must be exactly one address with a domain, got {value!r}")
    return addresses[0]


@dataclass(frozen=True)
class SmtpSettings:
    """Where and as whom mail is sent."""

    host: str = "127.0.0.1"
    port: int = 2525
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 30.0
    sender: str = "partnermatch <noreply@partnermatch.localhost>"

    def __post_init__(self) -> None:
        parse_sender(self.sender)

    @property
    def sender_address(self) -> Address:
        return parse_sender(self.sender)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpSettings:
        env = os.environ if env is None else env
        return cls(
            host=SMTP_HOST.read(env) or "127.0.0.1",
            port=SMTP_PORT.read_int(env),
            user=SMTP_USER.read(env),
            password=SMTP_PASSWORD.read(env),
            starttls=flag(SMTP_STARTTLS.read(env)),
            timeout_s=SMTP_TIMEOUT_S.read_float(env),
            sender=MAIL_FROM.read(env) or "",
        )

    def mailer(self) -> SmtpMailer:
        return SmtpMailer(self.host, self.port, self.timeout_s, self.user, self.password, self.starttls)


class SmtpFailure(Exception):
    """The server refused, or could not be reached. `kind` is temporary or permanent."""

    def __init__(self, kind: str, code: int | None, detail: str) -> None:
        super().__init__(f"{code or '-'} {detail}")
        self.kind = kind
        self.code = code
        self.detail = detail

    @property
    def permanent(self) -> bool:
        return self.kind == PERMANENT


class SmtpOutcomeUnknown(Exception):
    """The body was sent but no final reply arrived: the server may or may not have accepted it."""


class ClaimLost(Exception):
    """`before_data` said no: another worker owns the delivery now; nothing was sent."""


def _refused(code: int | None, reply: bytes | str, step: str) -> SmtpFailure:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return SmtpFailure(classify_smtp_code(code), code, f"{step}: {text}"[:500])


def _dot_stuffed(data: bytes) -> bytes:
    body = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    body = re.sub(rb"(?m)^\.", b"..", body)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        timeout_s: float = 30.0,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        local_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.user = user
        self.password = password
        self.starttls = starttls
        self.local_hostname = local_hostname

    def send(
        self,
        msg: EmailMessage,
        sender: str,
        recipient: str,
        before_data: Callable[[], bool],
        on_accepted: Callable[[str], None],
    ) -> None:
        """Send `msg` to one recipient. `on_accepted(reply)` runs the moment the server answers 250
        to the body, before anything else (even QUIT), so the caller can record it first."""
        try:
            smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout_s)
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpFailure("temporary", getattr(exc, "smtp_code", None), f"connect: {exc}") from None
        try:
            self._converse(smtp, msg, sender, recipient, before_data, on_accepted)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def _converse(
        self,
        smtp: smtplib.SMTP,
        msg: EmailMessage,
        sender: str,
        recipient: str,
        before_data: Callable[[], bool],
        on_accepted: Callable[[str], None],
    ) -> None:
        try:
            smtp.ehlo_or_helo_if_needed()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
            international = not (sender + recipient).isascii()
            if international and not smtp.has_extn("smtputf8"):
                raise SmtpFailure(
                    PERMANENT,
                    None,
                    "the recipient's address needs SMTPUTF8, which the server lacks",
                )
            options = ["SMTPUTF8", "BODY=8BITMIME"] if international else []
            code, reply = smtp.mail(sender, options)
            if code != 250:
                raise _refused(code, reply, "MAIL FROM")
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise _refused(code, reply, "RCPT TO")
            body = _dot_stuffed(wire_bytes(msg, utf8=international))
            if not before_data():
                raise ClaimLost("the delivery was taken over before DATA")
            smtp.putcmd("data")
            code, reply = smtp.getreply()
            if code != 354:
                raise _refused(code, reply, "DATA")
        except smtplib.SMTPAuthenticationError as exc:
            # A wrong password is our configuration, not the message: retry, loudly.
            logger.error(
                "SMTP login failed; check NOTIFIER_SMTP_USER/PASSWORD",
                extra={"code": exc.smtp_code},
            )
            raise SmtpFailure("temporary", exc.smtp_code, "login refused") from None
        except smtplib.SMTPResponseException as exc:
            raise _refused(exc.smtp_code, exc.smtp_error, "SMTP") from None
        except (OSError, smtplib.SMTPException) as exc:  # timeouts, resets, TLS errors, disconnects
            raise SmtpFailure("temporary", None, f"{type(exc).__name__}: {exc}"[:500]) from None
        # From here on the body is on its way: a missing reply is an unknown outcome, not a failure.
        try:
            smtp.send(body)
            code, reply = smtp.getreply()
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            raise SmtpOutcomeUnknown(f"no reply to the message body: {type(exc).__name__}: {exc}") from None
        if code != 250:
            raise _refused(code, reply, "end of DATA")
        on_accepted(reply.decode("utf-8", "replace")[:300])

    def send_one(self, msg: EmailMessage, sender: str, recipient: str) -> str:
        """Send `msg` to one recipient where nothing needs recording between the steps (a sign-in
        link: the person asks again if it does not arrive). Returns the server's reply; raises
        SmtpFailure or SmtpOutcomeUnknown."""
        replies: list[str] = []
        self.send(msg, sender, recipient, before_data=lambda: True, on_accepted=replies.append)
        return replies[0]
