"""wait_until returns the first truthy value and fails, saying what it awaited, when time runs out."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.support.waiting import wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "ready", timeout=5, interval=0.01) == "ready"


def test_wait_until_fails_with_the_message_once_the_time_is_up() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"not true after 0\.2 s: the log said nothing"):
        wait_until(lambda: False, timeout=0.2, interval=0.05, message=lambda: "the log said nothing")
    assert 0.2 <= time.monotonic() - started < 2.0


def test_wait_until_rejects_a_non_positive_timeout() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        wait_until(lambda: True, timeout=0)
