"""Text from profiles made safe to show: characters that change how text is laid out without being
seen are removed. Pure, no I/O.

Bidirectional controls can make a name read differently from what it is ("Trojan Source",
CVE-2021-42574: a right-to-left override reverses what follows), and invisible characters can make
two names look alike. None of the 16 profile languages is written right to left, so no profile
needs them; zero-width joiners stay (emoji sequences use them).
"""

from __future__ import annotations

import re

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
