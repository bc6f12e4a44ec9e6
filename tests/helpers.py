"""Test helpers shared by every test folder. No I/O of their own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll until `predicate()` is truthy and return its value; fail with `message` after `timeout`.

    An exception from `predicate` counts as "not yet"; the last one is named in the failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        last_error: Exception | None = None
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last one
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {message}{detail}")
        time.sleep(interval)
