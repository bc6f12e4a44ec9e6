"""Email that is safe to send: addresses from untrusted parts, headers that stay one line, the
message as bytes on the wire with exactly the headers that were set, and what an SMTP reply code
means. Shared by every service that sends mail (notifier, profiles). Pure, no I/O.
"""

from __future__ import annotations

from email.errors import MessageError
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formataddr
from typing import Any

import idna

MAX_NAME_CHARS = 200
MAX_DISPLAY_NAME_BYTES = 240  # encoded as one word, the To: line stays short
_VERBATIM_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
_ADDRESS_HEADERS = frozenset({"from", "to", "reply-to"})

TEMPORARY = "temporary"
PERMANENT = "permanent"


def classify_smtp_code(code: int | None) -> str:
    """4xx (and no reply at all: timeouts, refused connections) is worth retrying; 5xx is not."""
    if code is not None and 500 <= code <= 599:
        return PERMANENT
    return TEMPORARY


class UnsafeHeader(ValueError):
    """A value that cannot be put in a header safely; the delivery is failed, not retried."""


class InvalidAddress(UnsafeHeader):
    """An address that is not exactly one plain, valid address."""


class WirePolicy(EmailPolicy):
    """`email.policy.SMTP` with two repairs for what goes on the wire:

    - List-Unsubscribe stays one plain line: folding a long URL turns it into an RFC 2047
      encoded word, which mail clients do not read as a link (its value is checked to be a
      plain ASCII URL before it is set);
    - non-ASCII subjects and display names are encoded by the older `email.header` encoder:
      the default folder of Python 3.11 drops the space between two folded encoded words
      ("Кластер ИКТ Нови Сад" arrives as "Кластер ИКТНови Сад"), and names are kept in one
      encoded word each;
    - every address header is written one address per line by `formataddr`, ASCII names too:
      the default folder drops the quotes of a long ASCII name it wraps, so a name such as
      "… Bcc: x@evil.example …" turned the To header into a group of other addresses.
    """

    def _repaired(self, name: str, value: Any) -> str | None:
        lname = name.lower()
        if lname in _VERBATIM_HEADERS:
            return f"{name}: {value}{self.linesep}"
        if self.utf8:
            return None
        if lname == "subject" and not str(value).isascii():
            encoded = Header(str(value), "utf-8", header_name=name).encode(linesep=self.linesep)
            return f"{name}: {encoded}{self.linesep}"
        addresses = getattr(value, "addresses", None)
        if lname in _ADDRESS_HEADERS and addresses:
            parts = [self._address(a) for a in addresses]
            return f"{name}: {(',' + self.linesep + ' ').join(parts)}{self.linesep}"
        return None

    @staticmethod
    def _address(address: Address) -> str:
        # One encoded word per name: decoders disagree about the space between two encoded words
        # inside a name (Python's parser keeps it, mail clients drop it). Names are short enough
        # (see `safe_address`) for the line to stay far below SMTP's 998 characters.
        if address.display_name.isascii():
            if "=?" in address.display_name:  # readers decode it even inside quotes
                raise UnsafeHeader("an address's name holds an encoded word")
            return formataddr((address.display_name, address.addr_spec))
        return formataddr((address.display_name, address.addr_spec), charset="utf-8")

    def fold(self, name: str, value: Any) -> str:
        repaired = self._repaired(name, value)
        return repaired if repaired is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        repaired = self._repaired(name, value)
        if repaired is not None:
            return repaired.encode("ascii")
        return super().fold_binary(name, value)


WIRE_POLICY = WirePolicy(linesep="\r\n")


def one_line(value: str, limit: int = MAX_NAME_CHARS) -> str:
    """Text from a profile made safe for a header: one printable line (CR, LF and every other
    control or separator character becomes a space), and no RFC 2047 encoded word: the email
    package decodes `=?utf-8?q?…=0D=0A…?=` when a header is set, which would bring the line
    break back."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in value or "")
    return " ".join(cleaned.replace("=?", "= ?").split())[:limit]


def _display_name(name: str) -> str:
    cleaned = one_line(name)
    while len(cleaned.encode("utf-8")) > MAX_DISPLAY_NAME_BYTES:
        cleaned = cleaned[:-1]
    return cleaned.strip()


class LocalPartNotAscii(ValueError):
    """An address whose part before "@" is not ASCII: mail is sent without SMTPUTF8 (which few
    servers accept), so nothing could reach it."""


def mail_address(address: str) -> str:
    """`address` as mail reaches it, with its domain in ASCII (IDNA 2008 with the UTS 46 mapping, as
    browsers sending an email field and mail servers write it): "ivan@пример.срб" is
    "ivan@xn--e1afmkfd.xn--90a3ac", "a@straße.de" is "a@xn--strae-oqa.de" (Python's own codec, IDNA
    2003, would make it strasse.de, another domain). Text without "@" is returned as it is (a
    validator says it is no address). LocalPartNotAscii for a local part beyond ASCII; ValueError
    for a domain IDNA cannot write (a label beginning with a hyphen, say)."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    if not local.isascii():
        raise LocalPartNotAscii(address)
    if domain.isascii():
        return address
    try:
        return f"{local}@{idna.encode(domain, uts46=True, transitional=False).decode('ascii')}"
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"no IDNA form of {domain!r}") from exc


def readable_address(address: str) -> str:
    """An address as people write it: a domain kept in IDNA ("xn--e1afmkfd.xn--90a3ac") in its own
    script again ("пример.срб"); any other as it is. mail_address of it is the address again."""
    local, at, domain = address.rpartition("@")
    if not at or "xn--" not in domain.lower():
        return address
    try:
        return f"{local}@{idna.decode(domain)}"
    except (idna.IDNAError, UnicodeError):
        return address


def safe_address(name: str | None, email: str) -> Address:
    """An Address from untrusted parts; raises InvalidAddress rather than guessing."""
    addr = (email or "").strip()
    if not addr or len(addr) > 254 or any(not ch.isprintable() or ch.isspace() for ch in addr):
        raise InvalidAddress("address is empty, too long or contains spaces or control characters")
    try:
        addr = mail_address(addr)  # a domain in another script as IDNA (one stored before it was kept so)
    except ValueError as exc:
        raise InvalidAddress(f"no address mail can carry: {exc}") from None
    try:
        parsed = Address(display_name=_display_name(name or ""), addr_spec=addr)
    except (ValueError, IndexError, TypeError, MessageError) as exc:  # defects are ValueErrors
        raise InvalidAddress(f"not a single valid address: {exc}") from None
    if not parsed.domain or "." not in parsed.domain.strip("."):
        raise InvalidAddress("address has no usable domain")
    return parsed


def refuse_line_breaks(msg: EmailMessage) -> None:
    """No header's value, as the email package understood it, contains a line break."""
    for name, value in msg.items():
        addresses = getattr(value, "addresses", ())
        parts = [
            str(value),
            *(a.display_name for a in addresses),
            *(a.addr_spec for a in addresses),
        ]
        if any("\r" in part or "\n" in part for part in parts):
            raise UnsafeHeader(f"the {name} header would contain a line break")


def _header_names(data: bytes) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return [
        line.split(b":", 1)[0].decode("ascii", "replace").lower()
        for line in head.split(b"\r\n")
        if line and line[:1] not in (b" ", b"\t")
    ]


def wire_bytes(msg: EmailMessage, utf8: bool = False) -> bytes:
    """The message as it goes over SMTP (CRLF line ends; UTF-8 headers only with SMTPUTF8).
    The last check before anything is sent: the bytes carry exactly the headers that were set,
    whatever the serialiser did with their values."""
    data = msg.as_bytes(policy=WIRE_POLICY.clone(utf8=utf8))
    if _header_names(data) != [name.lower() for name in msg.keys()]:
        raise UnsafeHeader("serialising the message would change its headers")
    return data
