"""JSON from users, parsed with bounds: nesting depth and number length give a clear error, never a crash."""

from __future__ import annotations

import json
import sys
from typing import Any

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

#: deepest nesting accepted; NASWeb's documents (encodings, evaluator settings) need three or four
MAX_DEPTH = 64


class JSONInputError(ValueError):
    """The text is JSON but outside NASWeb's bounds (too deep, a number too long). The message says which."""


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`JSONInputError` when lists/objects in ``value`` nest deeper than ``max_depth``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # iterative: a recursive walk would itself fail on the documents it must refuse
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise JSONInputError(f"the JSON nests lists or objects deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` with bounds.

    Raises:
        json.JSONDecodeError: malformed JSON (callers already word this one).
        JSONInputError: nested deeper than ``max_depth``, or a number with more digits than Python
            converts (``sys.get_int_max_str_digits()``, 4300).
    """
    try:
        value = json.loads(text)
    except RecursionError:  # the C decoder gives up around 1,000 levels, long before the stack would
        raise JSONInputError(f"the JSON nests lists or objects deeper than {max_depth} levels") from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        if "digits" in str(exc):
            raise JSONInputError(
                f"a number in the JSON has more than {sys.get_int_max_str_digits()} digits") from None
        raise
    check_depth(value, max_depth)
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with :func:`loads`' bounds: a body outside them is a 400 on field ``body``."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            value = super().parse(stream, media_type, parser_context)  # malformed bodies: DRF's ParseError
        except RecursionError:
            raise ValidationError({"body": [f"the JSON nests lists or objects deeper than {MAX_DEPTH} levels"]}) \
                from None
        except ParseError as exc:
            if "digits" in str(exc.detail):
                raise ValidationError({"body": [
                    f"a number in the JSON has more than {sys.get_int_max_str_digits()} digits"]}) from None
            raise
        try:
            check_depth(value)
        except JSONInputError as exc:
            raise ValidationError({"body": [str(exc)]}) from None
        return value
