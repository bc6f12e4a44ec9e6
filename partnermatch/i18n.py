"""Interface text in the reader's language: gettext catalogues (Babel) for pages and emails.

Catalogues are `partnermatch/locale/<lang>/LC_MESSAGES/<domain>.po`, one domain per reader
group, with the English source text as msgid; `<domain>.pot` beside them lists what is to be
translated (`make messages` extracts it from SOURCES). They are read from the `.po` files when first
needed (no compiled `.mo` files to build or ship). Serbian Cyrillic is the Serbian (Latin)
catalogue transliterated, so the two scripts never drift apart. Reads files once, then pure.
"""

from __future__ import annotations

import functools
import gettext as _gettext
import io
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import pass_context
from markupsafe import Markup

from partnermatch.languages import NATIVE_NAMES, PROFILE_LANGUAGES, READER_LANGUAGES, babel_locale, to_cyrillic


def N_(message: str) -> str:
    """Marks a msgid for extraction (`make messages`) without translating it here."""
    return message


LOCALE_DIR = Path(__file__).with_name("locale")
DOMAINS: tuple[str, ...] = ("coordinators", "organisations", "emails")
DEFAULT = "en"
SOURCE = "en"  # the language of the msgids: it needs no catalogue
COOKIE = "pm_lang"
# The languages that have a catalogue file per domain (Serbian Cyrillic is derived from "sr").
CATALOGUE_LANGUAGES: tuple[str, ...] = tuple(lang for lang in PROFILE_LANGUAGES if lang != SOURCE)

# Where each domain's messages are written, relative to the repository root: what `make messages`
# and the tests extract (with babel.cfg) into `<domain>.pot`.
ROOT = Path(__file__).resolve().parents[1]
SOURCES: dict[str, tuple[str, ...]] = {
    "coordinators": (
        "services/matcher/templates",
        "services/matcher/ui_text.py",
        "services/matcher/entrypoints/pages.py",
        "partnermatch/reasons.py",
    ),
    "organisations": ("services/profiles",),
    "emails": ("services/notifier/templates", "services/notifier/render.py"),
}

_PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[sd%]")


def catalogue_path(lang: str, domain: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po"


def read_catalogue(lang: str, domain: str):
    """The Babel catalogue of a language and domain, or None where there is no file."""
    from babel.messages.pofile import read_po

    path = catalogue_path(lang, domain)
    if not path.exists():
        return None
    with path.open("rb") as fh:
        return read_po(fh, locale=lang.replace("-", "_"), domain=domain)


@functools.cache
def translations(lang: str, domain: str) -> _gettext.NullTranslations:
    """gettext translations for a reader language (any of READER_LANGUAGES) and a domain.
    A missing message, or a language without a catalogue, falls back to the English source."""
    from babel.messages.mofile import write_mo
    from babel.support import Translations

    if domain not in DOMAINS:
        raise ValueError(f"unknown message domain {domain!r}")
    source = "sr" if lang == "sr-Cyrl" else lang
    if lang not in READER_LANGUAGES or source == SOURCE:
        return _gettext.NullTranslations()
    catalogue = read_catalogue(source, domain)
    if catalogue is None:
        return _gettext.NullTranslations()
    for message in catalogue:
        if lang == "sr-Cyrl" and message.id:
            if isinstance(message.string, str):
                message.string = to_cyrillic(message.string)
            else:
                message.string = tuple(to_cyrillic(s) for s in message.string)
    buf = io.BytesIO()
    write_mo(buf, catalogue, use_fuzzy=False)  # a fuzzy message is not a translation yet
    buf.seek(0)
    return Translations(fp=buf, domain=domain)


def gettext(lang: str, domain: str, message: str, **values: Any) -> str:
    """`message` in `lang`, with `%(name)s` placeholders filled from `values` (see fill)."""
    text = translations(lang, domain).gettext(message)
    return fill(text, values) if values else text


def ngettext(lang: str, domain: str, singular: str, plural: str, n: int, **values: Any) -> str:
    text = translations(lang, domain).ngettext(singular, plural, n)
    return fill(text, {"num": n, **values})


def fill(text: Any, values: Mapping[str, Any]) -> Any:
    """`text % values`, where a value that ends with a full stop also ends the sentence it ends:
    "… between Fabryka and Sajtüzem Kft.", not "Kft..". `text` may be Markup (it then escapes the
    values, as `%` does)."""
    for name, value in values.items():
        if isinstance(value, str) and value.endswith("."):
            text = text.replace(f"%({name})s.", f"%({name})s")
    return text % values


def untranslated(domain: str, languages: Iterable[str] = READER_LANGUAGES) -> dict[str, list[str]]:
    """For each language, the msgids of the domain's template that its catalogue does not
    translate (missing, empty or fuzzy). What a test asserts is empty."""
    from babel.messages.pofile import read_po

    with (LOCALE_DIR / f"{domain}.pot").open("rb") as fh:
        wanted = [m.id for m in read_po(fh) if m.id]
    gaps: dict[str, list[str]] = {}
    for lang in languages:
        if lang in (SOURCE, "sr-Cyrl"):
            continue
        catalogue = read_catalogue(lang, domain)
        done = (
            {}
            if catalogue is None
            else {
                m.id: m
                for m in catalogue
                if m.id and not m.fuzzy and all(m.string if isinstance(m.string, tuple) else (m.string,))
            }
        )
        missing = [str(mid) for mid in wanted if mid not in done]
        if missing:
            gaps[lang] = missing
    return gaps


def placeholders(text: str) -> list[str]:
    """The printf-style placeholders of a message, sorted (`%(name)s`, `%d`, `%%`)."""
    return sorted(_PLACEHOLDER.findall(text))


def placeholder_mismatches(domain: str, languages: Iterable[str] = READER_LANGUAGES) -> dict[str, list[str]]:
    """For each language, the msgids whose translation has other placeholders than the msgid (one
    would crash or lose a value when rendered). Fuzzy and empty translations are not checked: they
    are not used."""
    gaps: dict[str, list[str]] = {}
    for lang in languages:
        if lang in (SOURCE, "sr-Cyrl"):
            continue
        catalogue = read_catalogue(lang, domain)
        for m in catalogue or ():
            if not m.id or m.fuzzy:
                continue
            ids = m.id if isinstance(m.id, tuple) else (m.id,)
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            wanted = placeholders(ids[-1])
            if any(s and placeholders(s) != wanted for s in strings):
                gaps.setdefault(lang, []).append(str(ids[0]))
    return gaps


def source_files(domain: str) -> list[str]:
    """The files a domain's messages are extracted from, relative to the repository root (the
    folders of SOURCES walked: babel.cfg's patterns match paths from the root, so `pybabel extract`
    is given files, not folders)."""
    files: list[str] = []
    for source in SOURCES[domain]:
        path = ROOT / source
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files += [str(p.relative_to(ROOT)) for p in found if "__pycache__" not in p.parts]
    return files


def extract(domain: str):
    """The messages of a domain's sources as a Babel catalogue: what `make messages` writes to
    `<domain>.pot` (babel.cfg says which extractor reads which file)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import DEFAULT_KEYWORDS, check_and_call_extract_file
    from babel.messages.frontend import parse_mapping_cfg

    with (ROOT / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    catalogue = Catalog(domain=domain)
    for name in source_files(domain):
        found = check_and_call_extract_file(
            str(ROOT / name),
            method_map,
            options_map,
            callback=None,
            keywords=DEFAULT_KEYWORDS,
            comment_tags=("Translators:",),
            strip_comment_tags=False,
            dirpath=str(ROOT),
        )
        for _filename, lineno, message, comments, context in found:
            catalogue.add(message, None, [(name, lineno)], auto_comments=comments, context=context)
    return catalogue


def number(lang: str, value: float, digits: int | None = None, percent: bool = False) -> str:
    """A number as reader language `lang` writes it (CLDR's rules, Babel): "50 000" and "1,25" in
    Polish, "50,000" and "1.25" in English; `digits` decimals exactly, where given; `percent`: a
    share (0.45) as a whole percentage in the language's pattern ("45 %" in German)."""
    from babel.numbers import format_decimal, format_percent

    locale = babel_locale(lang)
    if percent:
        return format_percent(value, locale=locale)
    return format_decimal(value, format=None if digits is None else "#,##0." + "0" * digits, locale=locale)


def day(lang: str, value: str | None, form: str = "medium") -> str:
    """The date of an ISO 8601 date or time ("2026-12-07T07:02:00+00:00") as reader language
    `lang` writes a date (CLDR's medium form: "7 gru 2026", "07.12.2026", "2026. dec. 7."; or
    its `form` "short": "7.12.2026"); "" for none, and the text itself where it is no date."""
    from babel.dates import format_date

    if not value:
        return ""
    try:
        when = datetime.fromisoformat(value[:10])
    except ValueError:
        return value
    return format_date(when.date(), form, locale=babel_locale(lang))


def moment(lang: str, value: str | None) -> str:
    """An ISO 8601 time in UTC as `lang` writes a date and a time, then "UTC" ("7 gru 2026, 07:02
    UTC"); "" for none, and the text itself where it is no time."""
    from babel import Locale
    from babel.dates import format_date, format_time

    if not value:
        return ""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    locale = Locale.parse(babel_locale(lang))
    both = str(locale.datetime_formats["medium"])  # "{1}, {0}": the date, then the time
    written = both.format(
        format_time(when, "short", tzinfo=UTC, locale=locale), format_date(when, "medium", locale=locale)
    )
    return f"{written} UTC"


def install(env: Any, domain: str, current_language: Callable[[], str]) -> None:
    """Give a Jinja environment `{% trans %}`, `_()`, `gettext()` and `ngettext()` in the language
    `current_language()` names at render time (for a Flask app: one read from `flask.g`)."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(
        gettext=lambda message: translations(current_language(), domain).gettext(message),
        ngettext=lambda singular, plural, n: translations(current_language(), domain).ngettext(singular, plural, n),
        newstyle=True,
    )

    # Jinja's own newstyle gettext, filling the values as `fill` does
    @pass_context
    def filled_gettext(context: Any, message: str, /, **values: Any) -> Any:  # any value name, as Jinja's own
        text = translations(current_language(), domain).gettext(message)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return fill(text, values)

    env.globals["gettext"] = filled_gettext
    env.filters["day"] = lambda value, form="medium": day(current_language(), value, form)
    env.filters["moment"] = lambda value: moment(current_language(), value)


def reader_language(tag: str | None) -> str:
    """A BCP 47 tag as one of READER_LANGUAGES, or "" ("sr-Latn-RS" → "sr", "sr-Cyrl" →
    "sr-Cyrl", "PL" → "pl"; plain "sr" is Latin, as a profile's language "sr" is)."""
    if not tag:
        return ""
    parts = tag.replace("_", "-").split("-")
    lang = parts[0].lower()
    if lang == "sr" and any(p.lower() == "cyrl" for p in parts[1:]):
        return "sr-Cyrl"
    return lang if lang in READER_LANGUAGES else ""


def negotiate(asked: str | None = None, remembered: str | None = None, accept: Iterable[tuple[str, float]] = ()) -> str:
    """The reader language of a page: the one asked for now (a switcher link's `?lang=`), else the
    one remembered (a cookie), else the browser's best (Accept-Language, as (tag, quality) pairs),
    else English."""
    for choice in (asked, remembered):
        if choice in READER_LANGUAGES:
            return choice
    for tag, quality in sorted(accept, key=lambda item: -item[1]):
        if quality > 0 and (lang := reader_language(tag)):
            return lang
    return DEFAULT


def switcher(current: str, query: Any = None) -> list[dict[str, Any]]:
    """The entries of a language switcher: code, native name, whether it is the current one, and
    the link (`href`): this page's query (`query`, a werkzeug MultiDict such as request.args) with
    `lang` set, so switching keeps the page's filters."""
    kept = [(k, v) for k, v in (query.items(multi=True) if query is not None else ()) if k != "lang"]
    return [
        {
            "code": code,
            "name": NATIVE_NAMES[code],
            "current": code == current,
            "href": "?" + urlencode([*kept, ("lang", code)]),
        }
        for code in READER_LANGUAGES
    ]


def page_language(request: Any) -> str:
    """The reader language of a Flask/werkzeug request (`?lang=`, the cookie, Accept-Language)."""
    return negotiate(request.args.get("lang"), request.cookies.get(COOKIE), request.accept_languages)


def remember(response: Any, request: Any, lang: str) -> None:
    """Keep a language chosen with `?lang=` for the next visits (a year, this site only)."""
    if request.args.get("lang") == lang and request.cookies.get(COOKIE) != lang:
        response.set_cookie(
            COOKIE, lang, max_age=365 * 24 * 3600, samesite="Lax", httponly=True, secure=request.is_secure
        )
