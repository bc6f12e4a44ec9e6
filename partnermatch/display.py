"""Text from profiles made safe to show: characters that change how text is laid out without being
seen are removed. Pure, no I/O.

Bidirectional controls can make a name read differently from what it is ("Trojan Source",
CVE-2021-42574: a right-to-left override reverses what follows), and invisible characters can make
two names look alike. None of the 16 profile languages is written right to left, so no profile
needs them; zero-width joiners stay (emoji sequences use them).
"""

from __future__ import annotations

import re
import unicodedata

# LRM, RLM, ALM; the embeddings and overrides LRE..RLO with PDF; the isolates LRI..PDI; zero-width
# space, word joiner, invisible operators, byte order mark / zero-width no-break space, soft hyphen,
# Mongolian vowel separator, and the deprecated format controls.
_INVISIBLE = re.compile(
    "[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069\u200b\u2060-\u2064\u206a-\u206f\ufeff\u00ad\u180e]"
)


def neutralise(text: str) -> str:
    """`text` without bidirectional controls and invisible formatting characters."""
    return _INVISIBLE.sub("", text)


def has_hidden_controls(text: str) -> bool:
    return _INVISIBLE.search(text) is not None


# Letters that draw nothing: the Hangul fillers and the Braille blank (a "name" of them looks empty).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Categories that draw nothing on their own: separators, controls and format characters (the joiners
# among them), surrogates, and combining marks without a letter to sit on. Code points this Python's
# Unicode does not know yet (a newer emoji) and private-use ones may well draw: they count as seen.
_UNSEEN = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Mn", "Me"})


def has_visible_text(text: str) -> bool:
    """Whether `text` shows anything: a character that draws a glyph of its own (a letter, digit,
    symbol or punctuation mark), not only spaces, joiners, fillers and marks."""
    return any(ch not in _BLANK_LETTERS and unicodedata.category(ch) not in _UNSEEN for ch in text)
