"""What a partnership email and the unsubscribe pages say, in the reader's language.

The words are the "emails" message catalogue (partnermatch.i18n: 16 languages, Serbian Cyrillic
derived from Serbian Latin), laid out by the Jinja templates in services/notifier/templates/;
every value that comes from a profile is escaped in HTML and left in its original language.
Pure apart from reading the templates, catalogues and the lexicon's concept labels once; how a
reason reads is partnermatch.reasons.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from partnermatch import i18n, vocabulary
from partnermatch.reasons import OWN_OFFERS, PARTNER_OFFERS, REJECTION_DOMAIN, REJECTION_LABELS, SHARED, Reason

DOMAIN = "emails"
DEFAULT_LANGUAGE = i18n.DEFAULT
TEMPLATES = Path(__file__).with_name("templates")

# The language a template is being rendered in, read by its `_()` (one per thread or task).
_rendering_language: ContextVar[str] = ContextVar("rendering_language", default=DEFAULT_LANGUAGE)


def email_language(*preferred: str | None) -> str:
    """The language an email or page is written in: the first of `preferred` that is a reader
    language (any of the 16, or Serbian Cyrillic, however its tag is spelled), else English."""
    for candidate in preferred:
        if lang := i18n.reader_language(candidate):
            return lang
    return DEFAULT_LANGUAGE


# ---- what goes into an email ------------------------------------------------------------------


@dataclass(frozen=True)
class Coordinator:
    name: str
    email: str
    cluster: str


@dataclass(frozen=True)
class PartnerProfile:
    name: str
    country: str
    cluster: str
    language: str
    capabilities: str
    goals: str
    website: str | None = None


@dataclass(frozen=True)
class SharedContact:
    """A contact person of the partner who agreed to share their contact with approved partners."""

    name: str
    email: str


@dataclass(frozen=True)
class PartnershipEmail:
    """Everything one partnership email says to one contact person."""

    recipient_name: str
    organisation_name: str
    partner: PartnerProfile
    unsubscribe_url: str
    they_offer_you_seek: tuple[str, ...] = ()
    you_offer_they_seek: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    coordinators: tuple[Coordinator, ...] = field(default_factory=tuple)
    partner_contacts: tuple[SharedContact, ...] = ()
    partnerships_url: str | None = None  # the reader's "my partnerships" page


@dataclass(frozen=True)
class RenderedEmail:
    language: str
    subject: str
    text: str
    html: str


# ---- reasons ----------------------------------------------------------------------------------

MAX_REASONS_PER_GROUP = 8


def _fallback_reason(reason: Reason) -> str:
    words = " ↔ ".join(w for w in (", ".join(reason.terms_a), ", ".join(reason.terms_b)) if w)
    if reason.concept and words:
        return f"{reason.concept} ({words})"  # as Reason.render reads: what, then the words
    return str(reason.concept or words)


def _line(reason: Reason, language: str) -> str:
    try:
        line = reason.render(language, vocabulary.concept_labels)
    except Exception:  # noqa: BLE001 - a reason we cannot phrase (no labels to read) is still worth showing
        return _fallback_reason(reason)
    return line or _fallback_reason(reason)


def describe_reason(reason: Mapping[str, Any], language: str) -> str:
    """One reason (as on the wire) as a line in `language`; concept id and terms if the concepts'
    labels cannot be read or the reason reads as nothing."""
    return _line(Reason.from_dict(reason), language)


def reasons_for_side(
    reasons: Iterable[Mapping[str, Any]], side: str, language: str
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The event's reasons seen by organisation `side` ("a" or "b"): what the partner offers that
    it seeks, what it offers that the partner seeks, and shared interests; strongest first, with
    the partner's words before the reader's own."""
    groups: dict[str, list[str]] = {PARTNER_OFFERS: [], OWN_OFFERS: [], SHARED: []}
    for wire in sorted(reasons, key=lambda r: -float(r.get("weight") or 0)):
        reason = Reason.from_dict(wire).seen_from(side)
        group = groups[reason.side]
        line = _line(reason.flipped(), language).strip()  # flipped: the partner's words first
        if line and line not in group and len(group) < MAX_REASONS_PER_GROUP:
            group.append(line)
    return tuple(groups[PARTNER_OFFERS]), tuple(groups[OWN_OFFERS]), tuple(groups[SHARED])


# ---- the email --------------------------------------------------------------------------------


def _one_line(value: str) -> str:
    """Names go into a subject and greetings: line breaks and control characters become spaces."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line.strip() else "" for line in text.strip().splitlines())


def _paragraphs(value: str) -> Markup:
    return Markup("<br>\n").join(escape(line) for line in value.strip().splitlines())


def _safe_url(url: str | None) -> str | None:
    if url and re.match(r"^https?://", url, re.IGNORECASE):
        return url
    return None


@functools.cache
def _templates() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    i18n.install(env, DOMAIN, _rendering_language.get)
    env.filters.update(indented=_indent, paragraphs=_paragraphs, one_line=_one_line)
    return env


def _render(template: str, language: str, **values: Any) -> str:
    token = _rendering_language.set(language)
    try:
        return str(_templates().get_template(template).render(lang=language, **values))
    finally:
        _rendering_language.reset(token)


def render_partnership_email(email: PartnershipEmail, language: str | None) -> RenderedEmail:
    lang = email_language(language)
    values = {
        "email": email,
        "p": email.partner,
        "partner": _one_line(email.partner.name),
        "org": _one_line(email.organisation_name),
        "name": _one_line(email.recipient_name),
        "website": _safe_url(email.partner.website),
        "partnerships_url": _safe_url(email.partnerships_url),
    }
    return _rendered("partnership", lang, **values)


# ---- coordinators' notices --------------------------------------------------------------------


@dataclass(frozen=True)
class DigestEmail:
    """The digest of new suggestions waiting for one cluster, to one of its coordinators."""

    recipient_name: str
    cluster: str
    new_suggestions: int
    queue_url: str
    unsubscribe_url: str


@dataclass(frozen=True)
class DecisionNotice:
    """To a coordinator whose cluster approved a pair: what the other cluster then decided."""

    recipient_name: str
    cluster: str
    other_cluster: str
    organisation_name: str  # the pair's organisation of the reader's cluster
    partner_name: str
    approved: bool
    reason_code: str | None
    pair_url: str
    unsubscribe_url: str


def rejection_reason_label(code: str | None, language: str) -> str:
    """A rejection reason as the coordinators' page labels it, in `language`: one label per reason,
    in the coordinators' catalogue, for page and email alike ("" for no or an unknown code)."""
    msgid = REJECTION_LABELS.get(code or "")
    return i18n.gettext(language, REJECTION_DOMAIN, msgid) if msgid else ""


# The values that are names, which a sentence of a catalogue may end with.
_NAMES = ("org", "partner", "cluster", "other", "name")


def _one_stop(text: str, values: dict[str, Any], html: bool) -> str:
    """A name that ends with a full stop ("Softmedia sp. z o.o.") at the end of a sentence takes
    none more: "… and Softmedia sp. z o.o." rather than "o.o..", in any language's word order."""
    for key in _NAMES:
        name = values.get(key)
        if isinstance(name, str) and name.endswith("."):
            written = str(escape(name)) if html else name
            text = text.replace(written + ".", written)
    return text


def _rendered(template: str, lang: str, **values: Any) -> RenderedEmail:
    """`<template>_subject.txt`, `<template>.txt` and `<template>.html` in `lang`."""
    subject = _one_stop(_render(f"{template}_subject.txt", lang, **values).strip(), values, False)
    return RenderedEmail(
        language=lang,
        subject=subject,
        text=_one_stop(_render(f"{template}.txt", lang, subject=subject, **values), values, False),
        html=_one_stop(_render(f"{template}.html", lang, subject=subject, **values), values, True),
    )


def render_digest_email(email: DigestEmail, language: str | None) -> RenderedEmail:
    return _rendered(
        "digest",
        email_language(language),
        email=email,
        name=_one_line(email.recipient_name),
        cluster=_one_line(email.cluster),
        queue_url=_safe_url(email.queue_url),
    )


def render_decision_notice(notice: DecisionNotice, language: str | None) -> RenderedEmail:
    lang = email_language(language)
    return _rendered(
        "decision",
        lang,
        email=notice,
        name=_one_line(notice.recipient_name),
        cluster=_one_line(notice.cluster),
        other=_one_line(notice.other_cluster),
        org=_one_line(notice.organisation_name),
        partner=_one_line(notice.partner_name),
        reason=rejection_reason_label(notice.reason_code, lang) if not notice.approved else "",
        pair_url=_safe_url(notice.pair_url),
    )


# ---- the unsubscribe pages --------------------------------------------------------------------

PAGE_STYLE = (
    "body{font-family:sans-serif;max-width:36em;margin:3em auto;padding:0 1em;line-height:1.5}"
    "button{font-size:1em;padding:.5em 1.2em}"
)
PAGE_KINDS = ("confirm", "done", "again", "invalid")


ALL_COORDINATOR_NOTICES = "all"


def render_page(kind: str, language: str | None, email: str = "", action: str = "", topic: str = "partnership") -> str:
    """One of the unsubscribe pages: `confirm` (a button that POSTs to `action`), `done` (with a
    button that subscribes again), `again` (subscribed again) or `invalid`. `topic` is what the
    link unsubscribes from: partnership emails, a coordinator's `digest` or `decisions` (whose
    confirmation also offers every coordinators' email), or `all` of those."""
    if kind not in PAGE_KINDS:
        raise ValueError(f"unknown unsubscribe page {kind!r}")
    return _render(
        "unsubscribe.html",
        email_language(language),
        kind=kind,
        address=email,
        action=action,
        topic=topic,
        style=Markup(PAGE_STYLE),
    )
