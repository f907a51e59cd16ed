"""The one error shape of the API: ``{"errors": [{"field": ..., "reason": ...}]}``.

Services raise :class:`nasweb.errors.DomainError` subclasses; DRF's own errors (validation, auth,
not found) are folded into the same shape so clients parse one format.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from nasweb.errors import DomainError


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
