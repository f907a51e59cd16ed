"""What every API error looks like to a client."""

from __future__ import annotations

from typing import Any


def assert_error(response: Any, status: int, field: str | None, reason_part: str = "") -> None:
    """The API's one error shape, with this field (and a reason containing ``reason_part``)."""
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:500])
    errors = response.json()["errors"]
    assert any(error["field"] == field and reason_part.lower() in error["reason"].lower() for error in errors), errors
