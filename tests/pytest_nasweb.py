"""pytest plugin loaded before Django settings (``-p tests.pytest_nasweb`` in pyproject.toml).

* Points ``NASWEB_VAR_DIR`` at a fresh temporary folder (or ``NASWEB_TEST_VAR_DIR``), so tests
  never touch the developer's ``var/`` (database, broker queue, secret key) or a running ``make run``.
* Skips tests whose service is not configured, and names in the summary what was not
  run and why. These are the only skips in the suite.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

if os.environ.get("NASWEB_TEST_VAR_DIR"):
    _VAR = None
    os.environ["NASWEB_VAR_DIR"] = os.environ["NASWEB_TEST_VAR_DIR"]
else:
    _VAR = Path(tempfile.mkdtemp(prefix="nasweb-test-var-"))
    os.environ["NASWEB_VAR_DIR"] = str(_VAR)

CHROMIUM = os.environ.get("NASWEB_CHROMIUM", "/usr/bin/chromium")

_NOT_RUN: dict[str, list[str]] = defaultdict(list)


def _postgres_configured() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def _redis_configured() -> bool:
    return os.environ.get("CELERY_BROKER_URL", "").startswith(("redis://", "rediss://"))


_REQUIREMENTS = {
    "postgres": (_postgres_configured, "PostgreSQL: DATABASE_URL is not a postgres:// URL (.ci/run sets it)"),
    "redis": (_redis_configured, "Redis: CELERY_BROKER_URL is not a redis:// URL (.ci/run sets it)"),
    "browser": (lambda: Path(CHROMIUM).exists(), f"Chromium: {CHROMIUM} not found (apt-get install chromium)"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker, (available, reason) in _REQUIREMENTS.items():
            if item.get_closest_marker(marker) and not available():
                item.add_marker(pytest.mark.skip(reason=f"not run here - needs {reason}"))
                _NOT_RUN[reason].append(item.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _NOT_RUN:
        return
    terminalreporter.section("not run on this machine")
    for reason, nodeids in _NOT_RUN.items():
        terminalreporter.write_line(f"{len(nodeids)} test(s) need {reason}")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _VAR is not None and not os.environ.get("NASWEB_KEEP_TEST_VAR"):
        shutil.rmtree(_VAR, ignore_errors=True)
