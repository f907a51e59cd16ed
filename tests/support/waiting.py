"""Waiting in tests on a condition, with a bound, instead of sleeping for a fixed window."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.1,
               message: str | Callable[[], str] = "") -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy, and return that.

    Fails the test (AssertionError) when ``timeout`` seconds pass first; ``message`` (or what it returns,
    computed only then, e.g. a worker's log) says what was awaited. The predicate is always called once
    more after the deadline, so a slow machine that met the condition at the last moment still passes.
    """
    if timeout <= 0 or interval <= 0:
        raise ValueError(f"timeout ({timeout}) and interval ({interval}) must be positive")
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    text = message() if callable(message) else message
    raise AssertionError(f"not true after {timeout:g} s: {text or getattr(predicate, '__name__', predicate)}")
