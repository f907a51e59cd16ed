"""Domain exceptions raised by services, free of any web framework (the API and the forms both show them)."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused an action. ``field`` is the input at fault (or ``None``).

    ``http_status`` is what the API answers with; plain ints keep this module free of DRF.
    """

    http_status = 400

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


class ConflictError(DomainError):
    """The action does not fit the object's current state (e.g. pausing a finished search)."""

    http_status = 409


class NotFoundError(DomainError):
    """The object does not exist or belongs to someone else (never say which)."""

    http_status = 404
