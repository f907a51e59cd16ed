"""Domain errors live apart from the web framework: services and the engine's callers import them without DRF."""

from __future__ import annotations

import subprocess
import sys

from nasweb.errors import ConflictError, DomainError, NotFoundError


def test_domain_errors_import_without_django_rest_framework() -> None:
    code = "import sys, nasweb.errors; sys.exit(1 if any(m.startswith('rest_framework') for m in sys.modules) else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_each_domain_error_carries_its_field_reason_and_http_status() -> None:
    error = ConflictError("state", "cannot pause a search that is finished")
    assert (error.field, error.reason, error.http_status) == ("state", "cannot pause a search that is finished", 409)
    assert str(error) == "state: cannot pause a search that is finished"
    assert (DomainError(None, "bad").http_status, NotFoundError(None, "no such search").http_status) == (400, 404)
    assert str(NotFoundError(None, "no such search")) == "no such search"
