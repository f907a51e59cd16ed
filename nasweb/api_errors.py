"""The one error shape of the API: ``{"errors": [{"field": ..., "reason": ...}]}``.

Services raise :class:`DomainError` subclasses; DRF's own errors (validation, auth,
not found) are folded into the same shape so clients parse one format.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class DomainError(Exception):
    """A business rule refused an action. ``field`` is the input at fault (or ``None``)."""

    http_status = status.HTTP_400_BAD_REQUEST

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


class ConflictError(DomainError):
    """The action does not fit the object's current state (e.g. pausing a finished search)."""

    http_status = status.HTTP_409_CONFLICT


class NotFoundError(DomainError):
    """The object does not exist or belongs to someone else (never say which)."""

    http_status = status.HTTP_404_NOT_FOUND


def _flatten(detail: Any, prefix: str | None = None) -> list[dict]:
    if isinstance(detail, dict):
        out: list[dict] = []
        for key, value in detail.items():
            field = None if key in ("non_field_errors", "detail") else key
            out.extend(_flatten(value, f"{prefix}.{field}" if prefix and field else (field or prefix)))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [{"field": prefix, "reason": str(item)} for item in detail]
        out = []
        for index, item in enumerate(detail):
            if item:
                out.extend(_flatten(item, f"{prefix}[{index}]" if prefix else f"[{index}]"))
        return out
    return [{"field": prefix, "reason": str(detail)}]


def error_response(errors: list[dict], http_status: int) -> Response:
    return Response({"errors": errors}, status=http_status)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return error_response([{"field": exc.field, "reason": exc.reason}], exc.http_status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError | APIException):
        response.data = {"errors": _flatten(response.data)}
    return response
