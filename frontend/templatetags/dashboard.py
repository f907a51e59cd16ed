"""Small presentation filters of the dashboard templates."""

from __future__ import annotations

import math
from typing import Any

from django import template

register = template.Library()


@register.filter
def percent(fraction: Any) -> int:
    """0.4237 -> 42 (for widths and labels of progress bars), clamped to 0..100."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        return 0
    if not math.isfinite(value):
        return 0
    return max(0, min(100, round(value * 100)))


@register.filter
def ratio(done: Any, total: Any) -> float:
    try:
        return float(done) / float(total) if float(total) else 0.0
    except (TypeError, ValueError):
        return 0.0


@register.filter
def number(value: Any, digits: int = 4) -> str:
    """A measured value with ``digits`` significant digits; empty for none."""
    if value is None or value == "":
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return str(number)
    if number == int(number) and abs(number) < 1e15:
        return f"{int(number):,}"
    if 10 ** int(digits) <= abs(number) < 1e15:
        return f"{number:,.0f}"  # no exponent for big budgets and counts
    return f"{number:.{int(digits)}g}"


@register.filter
def get(mapping: Any, key: Any) -> Any:
    """``mapping|get:key`` for dictionaries keyed by something a template cannot spell."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
