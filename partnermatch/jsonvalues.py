"""What a parsed JSON value holds, asked by the readers that take orjson's parse only where it gives
json's (httpedge.loads, the profiles store, events.decode). Pure."""

from __future__ import annotations

from typing import Any


def holds_float(value: Any) -> bool:
    """Whether a float is anywhere in `value` (dicts and lists looked into)."""
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list:
        items = value
    else:
        return kind is float
    for item in items:
        kind = type(item)
        if kind is float or ((kind is dict or kind is list) and holds_float(item)):
            return True
    return False
