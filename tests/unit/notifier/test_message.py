"""The email on the wire: checked headers, two parts, one-click unsubscribe, stable ids."""

from __future__ import annotations

import email
from email.headerregistry import Address
from email.policy import default as default_policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifier import domain
from services.notifier.message import (
    InvalidAddress,
    build_message,
    one_line,
    safe_address,
    wire_bytes,
)
from services.notifier.render import PartnerProfile, PartnershipEmail, render_partnership_email

SENDER = Address("partnermatch", addr_spec="noreply@partnermatch.example")
URL = "http://127.0.0.1:8083/unsubscribe/" + "eyJlIjoiamVsZW5hQGV4YW1wbGUucnMifQ." + "x" * 60
EXPECTED_HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "content-language",
    "auto-submitted",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "x-partnermatch-delivery",
    "mime-version",
    "content-type",
}


def message(
    contact_name="Јелена Петровић",
    contact_email="jelena@example.rs",
    partner_name="Śląski Klaster",
    lang="sr-Cyrl",
):
    content = PartnershipEmail(
        recipient_name=contact_name,
        organisation_name="Klaster IKT",
        partner=PartnerProfile(partner_name, "PL", "Silesia", "pl", "Tworzymy.", "Szukamy."),
        unsubscribe_url=URL,
    )
    rendered = render_partnership_email(content, lang)
    delivery = domain.delivery_id("org_a~org_b", contact_email)
    return build_message(
        rendered=rendered,
        sender=SENDER,
        recipient=safe_address(contact_name, contact_email),
        reply_to=[safe_address("Marko", "marko@example.rs")],
        message_id=domain.message_id(delivery, SENDER.domain),
        unsubscribe_url=URL,
        delivery_id=delivery,
    )


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=default_policy)


def test_message_has_a_plain_text_and_an_html_part_in_the_readers_language():
    parsed = parse(wire_bytes(message()))
    assert parsed.get_content_type() == "multipart/alternative"
    plain = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "Поштовани/а Јелена Петровић," in plain
    assert '<html lang="sr-Cyrl">' in html
    assert parsed["Content-Language"] == "sr-Cyrl"
    assert str(parsed["Subject"]) == "Одобрено партнерство: Śląski Klaster"


def test_one_click_unsubscribe_headers_are_plain_lines_a_mail_client_can_read():
    raw = wire_bytes(message())
    assert f"\r\nList-Unsubscribe: <{URL}>\r\n".encode() in raw, "a folded or encoded URL is not clickable"
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    parsed = parse(raw)
    assert parsed["List-Unsubscribe"] == f"<{URL}>"


def test_wire_format_is_seven_bit_clean():
    raw = wire_bytes(message())
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_message_id_is_the_same_for_the_same_match_and_recipient():
    first, second = parse(wire_bytes(message())), parse(wire_bytes(message()))
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"].endswith("@partnermatch.example>")
    other = parse(wire_bytes(message(contact_email="other@example.rs")))
    assert other["Message-ID"] != first["Message-ID"]


def test_display_name_with_line_breaks_cannot_inject_a_header():
    evil = "Eve\r\nBcc: attacker@evil.example\r\nX-Injected: yes"
    parsed = parse(wire_bytes(message(contact_name=evil, partner_name="ACME\nBcc: attacker2@evil.example")))
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert {k.lower() for k in parsed.keys()} == EXPECTED_HEADERS
    assert [a.addr_spec for a in parsed["To"].addresses] == ["jelena@example.rs"]
    assert parsed["To"].addresses[0].display_name == "Eve Bcc: attacker@evil.example X-Injected: yes"


def test_address_with_a_line_break_or_a_second_address_is_refused():
    for bad in [
        "jelena@example.rs\r\nBcc: x@evil.example",
        "a@example.org, b@example.org",
        "no-at-sign",
        "a@",
        "@example.org",
        "a b@example.org",
        "a@localhost",
        "",
        "x" * 250 + "@example.org",
    ]:
        with pytest.raises(InvalidAddress):
            safe_address("Name", bad)


def test_the_address_class_itself_refuses_line_breaks_in_names():
    # The last line of defence under `one_line`: email.headerregistry refuses CR/LF outright.
    with pytest.raises(ValueError):
        Address(display_name="Eve\r\nBcc: x@evil.example", addr_spec="eve@example.org")


def test_one_line_keeps_letters_of_every_script_and_drops_controls():
    assert one_line("Јелена\tПетровић\u2028Bcc:\x00x") == "Јелена Петровић Bcc: x"
    assert len(one_line("a" * 500)) == 200


def test_an_encoded_line_break_in_a_name_cannot_inject_a_header():
    # The email package decodes RFC 2047 words when a header is set: "=0D=0A" would become CRLF.
    evil = "=?utf-8?q?Eve=0D=0ABcc:_attacker@evil.example?="
    parsed = parse(wire_bytes(message(contact_name=evil, partner_name=evil, lang="en")))
    assert parsed["Bcc"] is None
    assert {k.lower() for k in parsed.keys()} == EXPECTED_HEADERS
    assert "\n" not in str(parsed["Subject"]) and "\n" not in parsed["To"].addresses[0].display_name


names = st.lists(
    st.one_of(
        st.text(max_size=12),
        st.sampled_from(
            [
                "=?utf-8?q?",
                "=0D=0A",
                "?=",
                "=?utf-8?b?",
                "DQpCY2M6IHhAeS56?=",
                "Bcc: x@evil.example",
                "\r\n",
                "\n",
                '"',
                "<",
                ">",
                ",",
                "\\",
                "Јелена Петровић",
                "😀",
            ]
        ),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(name=names, partner=names)
def test_no_name_whatever_its_characters_adds_or_breaks_a_header(name, partner):
    parsed = parse(wire_bytes(message(contact_name=name, partner_name=partner or "P", lang="en")))
    assert {k.lower() for k in parsed.keys()} == EXPECTED_HEADERS
    assert [a.addr_spec for a in parsed["To"].addresses] == ["jelena@example.rs"]
    assert parsed["List-Unsubscribe"] == f"<{URL}>"
    assert parsed["To"].addresses[0].display_name == safe_address(name, "jelena@example.rs").display_name
    assert str(parsed["Subject"]).endswith(one_line(partner or "P")[-20:])


def test_unsubscribe_url_must_be_a_plain_http_url():
    content = PartnershipEmail("n", "o", PartnerProfile("p", "PL", "c", "pl", "x", "y"), unsubscribe_url=URL)
    rendered = render_partnership_email(content, "en")
    for bad in ["javascript:alert(1)", "http://x/\r\nBcc: a@b.c", "http://x/ space"]:
        with pytest.raises(ValueError):
            build_message(
                rendered=rendered,
                sender=SENDER,
                recipient=safe_address("n", "n@example.org"),
                reply_to=[],
                message_id="<x@y.z>",
                unsubscribe_url=bad,
                delivery_id="d",
            )


def test_the_last_check_catches_an_injection_that_got_past_the_name_cleaning():
    # Without `one_line`, Python 3.11's serialiser writes a decoded CRLF straight onto the wire.
    from email.message import EmailMessage

    from services.notifier.message import UnsafeHeader

    msg = EmailMessage(policy=default_policy)
    msg["To"] = Address(display_name="=?utf-8?q?a=0D=0ABcc:_x@evil.example?=", addr_spec="a@example.org")
    msg.set_content("x")
    with pytest.raises(UnsafeHeader):
        wire_bytes(msg)


def test_a_long_ascii_name_with_colons_and_at_signs_stays_one_name_of_one_recipient():
    # Found by the property above: the default folder wrapped this name without its quotes, and
    # "…Bcc:" made the To header a group of other addresses.
    name = "00000000000000000000DQpCY2M6IHhAeS56?=Bcc: x@evil.exampleBcc: x@evil.example"
    parsed = parse(wire_bytes(message(contact_name=name, partner_name="P", lang="en")))
    assert [(a.display_name, a.addr_spec) for a in parsed["To"].addresses] == [
        (safe_address(name, "jelena@example.rs").display_name, "jelena@example.rs")
    ]
