"""The organisations' pages' words that code picks: validation messages of the API's marshmallow
schemas as the page shows them, by the English message the schema gives. Their msgids belong to the
"organisations" catalogue and are translated when the page is rendered. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from partnermatch.i18n import N_

DOMAIN = "organisations"


FILL_IN = N_("Please fill this in.")
CHECK = N_("Please check this field.")
NEED_A_CONTACT = N_("Add at least one contact person: sign-in links are sent to them.")
NO_SUCH_CLUSTER = N_("Choose a cluster from the list.")
REGISTERED = N_("Your organisation is registered. Partner suggestions reach its coordinators within minutes.")

# Form fields whose value is a list of choices, and fields of running text: "Longer than maximum
# length N." means a different thing for each.
LIST_FIELDS = frozenset({"sectors", "offers", "seeks", "seeks_countries"})

# The schemas' messages (marshmallow's own and ours in schemas.py), first match wins. A message
# that none matches is shown as CHECK, so the page never shows English to a reader of another
# language.
_EXACT: dict[str, str] = {
    "Missing data for required field.": FILL_IN,
    "Field may not be null.": FILL_IN,
    "Text must not be empty.": FILL_IN,
    "Not a valid email address.": N_("Enter an email address such as %(example)s."),
    "Not a valid URL.": N_("Enter a full web address, such as %(example)s."),
    "Text contains control characters.": N_("Remove the control characters from this text."),
    "Text contains invalid Unicode (unpaired surrogate).": N_("This text contains characters that cannot be stored."),
    "Must be a single line.": N_("Write this on one line."),
    "Not a cluster id.": NO_SUCH_CLUSTER,
    "No such cluster.": NO_SUCH_CLUSTER,
    "Unknown country: use an ISO 3166-1 alpha-2 code such as PL, RS, AL.": N_("Choose a country from the list."),
    "Each contact needs its own email address.": N_("Each contact person needs their own email address."),
    # schemas.LOCAL_PART_NOT_ASCII
    "Mail cannot be sent yet to an address with non-Latin letters before the @.": N_(
        "We cannot yet send mail to an address with non-Latin letters before the @: please give another address."
    ),
}
_PATTERNS: list[tuple[re.Pattern[str], Callable[[str, re.Match[str]], tuple[str, dict[str, Any]]]]] = [
    (re.compile(r"^Unknown language: "), lambda f, m: (N_("Choose a language from the list."), {})),
    (re.compile(r"^Unknown sector: "), lambda f, m: (N_("Choose from the list."), {})),
    (re.compile(r"^Unknown sector or activity: "), lambda f, m: (N_("Choose from the list."), {})),
    (re.compile(r"^Unknown country: '"), lambda f, m: (N_("Choose from the list."), {})),
    (
        re.compile(r"^Length must be between (\d+) and (\d+)\.$"),
        lambda f, m: (N_("Between %(min)s and %(max)s characters."), {"min": int(m[1]), "max": int(m[2])}),
    ),
    (re.compile(r"^Longer than maximum length (\d+)\.$"), lambda f, m: _too_long(f, int(m[1]))),
    (
        re.compile(r"^Longer than (\d+) characters\.$"),
        lambda f, m: (N_("At most %(max)s characters."), {"max": int(m[1])}),
    ),
]


def _too_long(field: str, limit: int) -> tuple[str, dict[str, Any]]:
    if field in LIST_FIELDS:
        return N_("Choose at most %(max)s."), {"max": limit}
    if field == "contacts":
        return N_("At most %(max)s contact persons."), {"max": limit}
    return N_("At most %(max)s characters."), {"max": limit}


# Examples are values, not words: they stay as they are in every language and script.
EXAMPLES = {"Not a valid email address.": "name@example.org", "Not a valid URL.": "https://example.org"}


def page_message(field: str, message: str, translate: Callable[..., str]) -> str:
    """The schema's `message` about `field` as the page shows it, through `translate(msgid, **values)`."""
    if message in _EXACT:
        example = EXAMPLES.get(message)
        return translate(_EXACT[message], example=example) if example else translate(_EXACT[message])
    for pattern, make in _PATTERNS:
        found = pattern.search(message)
        if found:
            msgid, values = make(field, found)
            return translate(msgid, **values)
    return translate(CHECK)


def page_errors(
    messages: Mapping[str, Any], translate: Callable[..., str], contact_rows: list[int] | None = None
) -> dict[str, list[str]]:
    """marshmallow's error messages of an organisation, by form field: `name`, `sectors`,
    `contacts-<row>-email` (the i-th contact sent is the form's row `contact_rows[i]`), `contacts`."""
    rows = contact_rows or []
    out: dict[str, list[str]] = {}

    def add(key: str, field: str, found: Any) -> None:
        if isinstance(found, str):
            out.setdefault(key, [])
            text = page_message(field, found, translate)
            if text not in out[key]:
                out[key].append(text)
        elif isinstance(found, list | tuple):
            for item in found:
                add(key, field, item)
        elif isinstance(found, Mapping):
            for index, item in found.items():
                if field == "contacts" and isinstance(index, int) and isinstance(item, Mapping):
                    row = rows[index] if index < len(rows) else index
                    for sub, texts in item.items():
                        add(f"contacts-{row}-{sub}", str(sub), texts)
                else:  # an item of a list field: the message belongs to the field
                    add(key, field, item)

    for field, found in messages.items():
        add(str(field), str(field), found)
    # A field left empty (a name of invisible characters only, which are taken out) fails its
    # length too: "fill this in" says it all.
    fill_in = translate(FILL_IN)
    return {key: [fill_in] if fill_in in texts else texts for key, texts in out.items()}
