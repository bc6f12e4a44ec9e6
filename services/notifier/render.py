"""What a partnership email and the unsubscribe pages say, in the reader's language.

Templates are data (one table per language; Serbian Cyrillic is derived from Serbian Latin);
every value that comes from a profile is escaped in HTML and left in its original language.
Pure, no I/O (the matcher's reason renderer is imported lazily and reads its own lexicon).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_LANGUAGE = "en"

_EN: dict[str, str] = {
    "subject": "Approved partnership: {partner}",
    "greeting": "Dear {name},",
    "greeting_anonymous": "Hello,",
    "intro": "The coordinators of both clusters have approved a partnership between {org} and "
    "{partner}.",
    "about": "About {partner}",
    "country": "Country",
    "cluster": "Cluster",
    "website": "Website",
    "they_offer": "What they offer (in their own words)",
    "they_seek": "What they are looking for (in their own words)",
    "why": "Why this match",
    "they_offer_you_seek": "What {partner} offers that you seek",
    "you_offer_they_seek": "What you offer that {partner} seeks",
    "shared": "Interests you share",
    "approved_by": "Approved by",
    "next": "To get in touch with {partner}, contact one of the coordinators above.",
    "footer": "You receive this email because you are a contact person of {org} on partnermatch.",
    "unsubscribe": "Unsubscribe from partnership emails",
    "page_confirm_title": "Unsubscribe from partnership emails?",
    "page_confirm_text": "{email} will no longer receive emails about approved partnerships.",
    "page_button": "Unsubscribe",
    "page_done_title": "You are unsubscribed",
    "page_done_text": "{email} will receive no further emails about partnerships.",
    "page_invalid_title": "This link is not valid",
    "page_invalid_text": "The unsubscribe link is incomplete or damaged. Copy the whole link from "
    "the email.",
}

_PL: dict[str, str] = {
    "subject": "Zatwierdzone partnerstwo: {partner}",
    "greeting": "Dzień dobry {name},",
    "greeting_anonymous": "Dzień dobry,",
    "intro": "Koordynatorzy obu klastrów zatwierdzili partnerstwo między {org} a {partner}.",
    "about": "O organizacji {partner}",
    "country": "Kraj",
    "cluster": "Klaster",
    "website": "Strona internetowa",
    "they_offer": "Co oferuje (w oryginalnym brzmieniu)",
    "they_seek": "Czego szuka (w oryginalnym brzmieniu)",
    "why": "Dlaczego to dopasowanie",
    "they_offer_you_seek": "{partner} oferuje to, czego szukacie",
    "you_offer_they_seek": "Oferujecie to, czego szuka {partner}",
    "shared": "Wspólne zainteresowania",
    "approved_by": "Zatwierdzili",
    "next": "Aby nawiązać kontakt z {partner}, napisz do jednego z koordynatorów wymienionych "
    "powyżej.",
    "footer": "Otrzymujesz tę wiadomość jako osoba kontaktowa organizacji {org} w partnermatch.",
    "unsubscribe": "Wypisz się z wiadomości o partnerstwach",
    "page_confirm_title": "Wypisać się z wiadomości o partnerstwach?",
    "page_confirm_text": "Na adres {email} nie będą już wysyłane wiadomości o zatwierdzonych "
    "partnerstwach.",
    "page_button": "Wypisz się",
    "page_done_title": "Wypisano",
    "page_done_text": "Na adres {email} nie będą już wysyłane wiadomości o partnerstwach.",
    "page_invalid_title": "Ten link jest nieprawidłowy",
    "page_invalid_text": "Link do wypisania jest niepełny lub uszkodzony. Skopiuj cały link z "
    "wiadomości.",
}

_SR: dict[str, str] = {
    "subject": "Odobreno partnerstvo: {partner}",
    "greeting": "Poštovani/a {name},",
    "greeting_anonymous": "Poštovani,",
    "intro": "Koordinatori oba klastera odobrili su partnerstvo između {org} i {partner}.",
    "about": "O organizaciji {partner}",
    "country": "Država",
    "cluster": "Klaster",
    "website": "Veb-sajt",
    "they_offer": "Šta nudi (izvorni tekst)",
    "they_seek": "Šta traži (izvorni tekst)",
    "why": "Zašto ovo partnerstvo",
    "they_offer_you_seek": "{partner} nudi ono što vi tražite",
    "you_offer_they_seek": "Vi nudite ono što traži {partner}",
    "shared": "Zajednička interesovanja",
    "approved_by": "Odobrili",
    "next": "Da biste stupili u kontakt sa {partner}, obratite se jednom od navedenih "
    "koordinatora.",
    "footer": "Ovu poruku primate kao kontakt osoba organizacije {org} na platformi partnermatch.",
    "unsubscribe": "Odjavite se sa poruka o partnerstvima",
    "page_confirm_title": "Odjava sa poruka o partnerstvima?",
    "page_confirm_text": "Na adresu {email} više neće stizati poruke o odobrenim partnerstvima.",
    "page_button": "Odjavi me",
    "page_done_title": "Odjavljeni ste",
    "page_done_text": "Na adresu {email} više neće stizati poruke o partnerstvima.",
    "page_invalid_title": "Ovaj link nije ispravan",
    "page_invalid_text": "Link za odjavu je nepotpun ili oštećen. Kopirajte ceo link iz poruke.",
}

_SQ: dict[str, str] = {
    "subject": "Partneritet i miratuar: {partner}",
    "greeting": "I/E nderuar {name},",
    "greeting_anonymous": "Përshëndetje,",
    "intro": "Koordinatorët e të dy klasterëve miratuan një partneritet midis {org} dhe {partner}.",
    "about": "Rreth {partner}",
    "country": "Shteti",
    "cluster": "Klasteri",
    "website": "Faqja e internetit",
    "they_offer": "Çfarë ofron (teksti origjinal)",
    "they_seek": "Çfarë kërkon (teksti origjinal)",
    "why": "Pse kjo përputhje",
    "they_offer_you_seek": "{partner} ofron atë që kërkoni ju",
    "you_offer_they_seek": "Ju ofroni atë që kërkon {partner}",
    "shared": "Interesa të përbashkëta",
    "approved_by": "Miratuar nga",
    "next": "Për të kontaktuar {partner}, shkruani një nga koordinatorëve të mësipërm.",
    "footer": "E merrni këtë email si person kontakti i {org} në partnermatch.",
    "unsubscribe": "Çregjistrohuni nga emailet për partneritete",
    "page_confirm_title": "Të çregjistroheni nga emailet për partneritete?",
    "page_confirm_text": "{email} nuk do të marrë më emaile për partneritete të miratuara.",
    "page_button": "Çregjistrohu",
    "page_done_title": "U çregjistruat",
    "page_done_text": "{email} nuk do të marrë më emaile për partneritete.",
    "page_invalid_title": "Kjo lidhje nuk është e vlefshme",
    "page_invalid_text": "Lidhja e çregjistrimit është e paplotë ose e dëmtuar. Kopjoni të gjithë "
    "lidhjen nga emaili.",
}

_RU: dict[str, str] = {
    "subject": "Партнёрство одобрено: {partner}",
    "greeting": "Здравствуйте, {name}!",
    "greeting_anonymous": "Здравствуйте!",
    "intro": "Координаторы обоих кластеров одобрили партнёрство между {org} и {partner}.",
    "about": "О партнёре: {partner}",
    "country": "Страна",
    "cluster": "Кластер",
    "website": "Сайт",
    "they_offer": "Что предлагает (в оригинале)",
    "they_seek": "Что ищет (в оригинале)",
    "why": "Почему эта пара",
    "they_offer_you_seek": "{partner} предлагает то, что ищете вы",
    "you_offer_they_seek": "Вы предлагаете то, что ищет {partner}",
    "shared": "Общие интересы",
    "approved_by": "Одобрили",
    "next": "Чтобы связаться с {partner}, напишите одному из координаторов, указанных выше.",
    "footer": "Вы получили это письмо как контактное лицо организации {org} в partnermatch.",
    "unsubscribe": "Отписаться от писем о партнёрствах",
    "page_confirm_title": "Отписаться от писем о партнёрствах?",
    "page_confirm_text": "На адрес {email} больше не будут приходить письма об одобренных "
    "партнёрствах.",
    "page_button": "Отписаться",
    "page_done_title": "Вы отписались",
    "page_done_text": "На адрес {email} больше не будут приходить письма о партнёрствах.",
    "page_invalid_title": "Ссылка недействительна",
    "page_invalid_text": "Ссылка для отписки неполная или повреждена. Скопируйте ссылку из письма "
    "целиком.",
}

# ---- Serbian Cyrillic, derived from the Latin table -------------------------------------------

_SR_DIGRAPHS = {
    "lj": "љ",
    "nj": "њ",
    "dž": "џ",
    "Lj": "Љ",
    "LJ": "Љ",
    "Nj": "Њ",
    "NJ": "Њ",
    "Dž": "Џ",
    "DŽ": "Џ",
}
_SR_LETTERS = dict(
    zip(
        "abcčćdđefghijklmnoprsštuvzžABCČĆDĐEFGHIJKLMNOPRSŠTUVZŽ",
        "абцчћдђефгхијклмнопрсштувзжАБЦЧЋДЂЕФГХИЈКЛМНОПРСШТУВЗЖ",
        strict=True,
    )
)
# Placeholders and the product's name stay as they are.
_KEEP = re.compile(r"(\{[a-z_]+\}|partnermatch)")


def latin_to_serbian_cyrillic(text: str) -> str:
    out: list[str] = []
    for piece in _KEEP.split(text):
        if _KEEP.fullmatch(piece):
            out.append(piece)
            continue
        i = 0
        while i < len(piece):
            pair = piece[i : i + 2]
            if pair in _SR_DIGRAPHS:
                out.append(_SR_DIGRAPHS[pair])
                i += 2
            else:
                out.append(_SR_LETTERS.get(piece[i], piece[i]))
                i += 1
    return "".join(out)


TEXTS: dict[str, dict[str, str]] = {
    "en": _EN,
    "pl": _PL,
    "sr": _SR,
    "sr-Cyrl": {key: latin_to_serbian_cyrillic(value) for key, value in _SR.items()},
    "sq": _SQ,
    "ru": _RU,
}
# Every language a partnership email is written in; any other falls back to English.
EMAIL_LANGUAGES: tuple[str, ...] = tuple(TEXTS)


def email_language(requested: str | None) -> str:
    """The language an email is written in: the contact's own, if we have it, else English."""
    if requested in TEXTS:
        return requested  # type: ignore[return-value]
    if requested and requested.lower() in ("sr-cyrl", "sr_cyrl"):
        return "sr-Cyrl"
    return DEFAULT_LANGUAGE


def texts(language: str | None) -> Mapping[str, str]:
    return TEXTS[email_language(language)]


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


@dataclass(frozen=True)
class RenderedEmail:
    language: str
    subject: str
    text: str
    html: str


# ---- reasons ----------------------------------------------------------------------------------

MAX_REASONS_PER_GROUP = 8


def _fallback_reason(reason: Mapping[str, Any]) -> str:
    words = " ↔ ".join(
        w
        for w in (", ".join(reason.get("terms_a") or []), ", ".join(reason.get("terms_b") or []))
        if w
    )
    concept = reason.get("concept")
    if concept and words:
        return f"{words} ({concept})"
    return str(concept or words)


def _known_concept(matcher_render: Any, concept: Any) -> bool:
    if not concept:
        return False
    try:
        return concept in matcher_render.default_lexicon().concepts
    except Exception:  # noqa: BLE001 - no lexicon to ask: treat as unknown
        return False


def describe_reason(reason: Mapping[str, Any], language: str) -> str:
    """One reason as a line in `language`, by the matcher's renderer; concept id and terms if that
    renderer is missing or cannot read the reason."""
    try:
        from services.matcher.engine import render as matcher_render
    except Exception:  # noqa: BLE001 - missing, or broken mid-deploy: the email still goes out
        return _fallback_reason(reason)
    try:
        lang = language
        if language == "sr-Cyrl" and not _known_concept(matcher_render, reason.get("concept")):
            # Without a concept the renderer would transliterate the raw terms, and those are the
            # organisations' own words, often not Serbian: keep them as written.
            lang = "sr"
        line = matcher_render.render_reason(dict(reason), lang)
    except Exception:  # noqa: BLE001 - a reason we cannot phrase is still worth showing
        return _fallback_reason(reason)
    return line or _fallback_reason(reason)


def reasons_for_side(
    reasons: Iterable[Mapping[str, Any]], side: str, language: str
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The event's reasons seen by organisation `side` ("a" or "b"): what the partner offers that
    it seeks, what it offers that the partner seeks, and shared interests; strongest first, with
    the partner's words before the reader's own."""
    partner_offers = "b_offers_a_seeks" if side == "a" else "a_offers_b_seeks"
    own_offers = "a_offers_b_seeks" if side == "a" else "b_offers_a_seeks"
    groups: dict[str, list[str]] = {"partner": [], "own": [], "shared": []}
    for reason in sorted(reasons, key=lambda r: -float(r.get("weight") or 0)):
        oriented = dict(reason)
        if side == "a":
            oriented["terms_a"], oriented["terms_b"] = (
                reason.get("terms_b") or [],
                reason.get("terms_a") or [],
            )
        direction = reason.get("direction")
        group = (
            "partner"
            if direction == partner_offers
            else "own"
            if direction == own_offers
            else "shared"
        )
        line = describe_reason(oriented, language).strip()
        if line and line not in groups[group] and len(groups[group]) < MAX_REASONS_PER_GROUP:
            groups[group].append(line)
    return tuple(groups["partner"]), tuple(groups["own"]), tuple(groups["shared"])


# ---- the email --------------------------------------------------------------------------------


def _one_line(value: str) -> str:
    """Names go into a subject and greetings: line breaks and control characters become spaces."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


def render_partnership_email(email: PartnershipEmail, language: str | None) -> RenderedEmail:
    lang = email_language(language)
    t = TEXTS[lang]
    partner = _one_line(email.partner.name)
    org = _one_line(email.organisation_name)
    name = _one_line(email.recipient_name)
    values = {"partner": partner, "org": org, "name": name}
    subject = t["subject"].format(**values)
    return RenderedEmail(
        language=lang,
        subject=subject,
        text=_text(email, t, values),
        html=_html(email, t, values, lang),
    )


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line.strip() else "" for line in text.strip().splitlines())


def _sections(email: PartnershipEmail) -> list[tuple[str, Sequence[str]]]:
    return [
        (key, lines)
        for key, lines in (
            ("they_offer_you_seek", email.they_offer_you_seek),
            ("you_offer_they_seek", email.you_offer_they_seek),
            ("shared", email.shared),
        )
        if lines
    ]


def _text(email: PartnershipEmail, t: Mapping[str, str], v: Mapping[str, str]) -> str:
    p = email.partner
    out = [
        t["greeting"].format(**v) if v["name"] else t["greeting_anonymous"],
        "",
        t["intro"].format(**v),
        "",
        t["about"].format(**v),
        f"  {t['country']}: {p.country}",
        f"  {t['cluster']}: {_one_line(p.cluster)}",
    ]
    if p.website:
        out.append(f"  {t['website']}: {p.website}")
    out += [
        "",
        f"  {t['they_offer']}:",
        _indent(p.capabilities),
        "",
        f"  {t['they_seek']}:",
        _indent(p.goals),
    ]
    sections = _sections(email)
    if sections:
        out += ["", t["why"]]
        for key, lines in sections:
            out.append(f"  {t[key].format(**v)}:")
            out += [f"    - {line}" for line in lines]
    if email.coordinators:
        out += ["", t["approved_by"]]
        out += [
            f"  {_one_line(c.name)} <{c.email}> ({_one_line(c.cluster)})"
            for c in email.coordinators
        ]
        out += ["", t["next"].format(**v)]
    out += ["", "-- ", t["footer"].format(**v), f"{t['unsubscribe']}: {email.unsubscribe_url}", ""]
    return "\n".join(out)


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def _paragraphs(value: str) -> str:
    return "<br>\n".join(_e(line) for line in value.strip().splitlines())


def _safe_url(url: str | None) -> str | None:
    if url and re.match(r"^https?://", url, re.IGNORECASE):
        return url
    return None


def _html(email: PartnershipEmail, t: Mapping[str, str], v: Mapping[str, str], lang: str) -> str:
    p = email.partner
    ev = {k: _e(x) for k, x in v.items()}

    def fmt(key: str) -> str:
        return _e(t[key]).format(**ev)

    partner_lang = _e(p.language or "")
    rows = [
        f"<tr><th>{_e(t['country'])}</th><td>{_e(p.country)}</td></tr>",
        f"<tr><th>{_e(t['cluster'])}</th><td>{_e(_one_line(p.cluster))}</td></tr>",
    ]
    website = _safe_url(p.website)
    if website:
        rows.append(
            f"<tr><th>{_e(t['website'])}</th>"
            f'<td><a href="{_e(website)}">{_e(website)}</a></td></tr>'
        )
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{_e(lang)}"><head><meta charset="utf-8">'
        f"<title>{_e(t['subject'].format(**v))}</title></head>",
        '<body style="font-family: sans-serif; line-height: 1.45; max-width: 42em">',
        f"<p>{fmt('greeting') if v['name'] else fmt('greeting_anonymous')}</p>",
        f"<p>{fmt('intro')}</p>",
        f"<h2>{fmt('about')}</h2>",
        f"<table>{''.join(rows)}</table>",
        f"<h3>{_e(t['they_offer'])}</h3>",
        f'<p lang="{partner_lang}">{_paragraphs(p.capabilities)}</p>',
        f"<h3>{_e(t['they_seek'])}</h3>",
        f'<p lang="{partner_lang}">{_paragraphs(p.goals)}</p>',
    ]
    sections = _sections(email)
    if sections:
        parts.append(f"<h2>{_e(t['why'])}</h2>")
        for key, lines in sections:
            parts.append(f"<h3>{fmt(key)}</h3>")
            parts.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>")
    if email.coordinators:
        parts.append(f"<h2>{_e(t['approved_by'])}</h2><ul>")
        for c in email.coordinators:
            parts.append(
                f"<li>{_e(_one_line(c.name))} "
                f'&lt;<a href="mailto:{_e(c.email)}">{_e(c.email)}</a>&gt; '
                f"({_e(_one_line(c.cluster))})</li>"
            )
        parts.append(f"</ul><p>{fmt('next')}</p>")
    parts += [
        '<hr><p style="font-size: smaller; color: #555">',
        f"{fmt('footer')}<br>",
        f'<a href="{_e(email.unsubscribe_url)}">{_e(t["unsubscribe"])}</a></p>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# ---- the unsubscribe pages --------------------------------------------------------------------

PAGE_STYLE = (
    "body{font-family:sans-serif;max-width:36em;margin:3em auto;padding:0 1em;line-height:1.5}"
    "button{font-size:1em;padding:.5em 1.2em}"
)


def render_page(kind: str, language: str | None, email: str = "", action: str = "") -> str:
    """One of the unsubscribe pages: `confirm` (a button that POSTs to `action`), `done` or
    `invalid`."""
    lang = email_language(language)
    t = TEXTS[lang]
    values = {"email": _e(email)}
    body = [
        f"<h1>{_e(t[f'page_{kind}_title'])}</h1>",
        f"<p>{_e(t[f'page_{kind}_text']).format(**values)}</p>",
    ]
    if kind == "confirm":
        body.append(
            f'<form method="post" action="{_e(action)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{_e(t["page_button"])}</button></form>'
        )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{_e(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(t[f'page_{kind}_title'])}</title><style>{PAGE_STYLE}</style></head>\n"
        f"<body>{''.join(body)}</body></html>\n"
    )
