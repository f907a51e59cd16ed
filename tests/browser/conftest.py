"""Real headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright, against pytest-django's
live server. Never downloads a browser. Each test collects console errors (the dashboard must have none)
and, when it fails (or with ``NASWEB_SCREENSHOTS=1``), leaves screenshots of the pages it visited in
``tests/artifacts/``."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.pytest_nasweb import CHROMIUM

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[Any]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        # Playwright's sync API keeps an event loop in this thread while the browser is up; the tests'
        # own ORM calls (and the test database set-up) are still plain synchronous code, so Django's
        # guard against the ORM inside async code is switched off for as long as the browser lives.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2's deliberate slowness is for real passwords, not for test users logging in.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Session:
    """One browser context (one user) with its console errors and the screenshots taken so far."""

    page: Any
    base_url: str
    name: str
    console_errors: list[str] = field(default_factory=list)
    shots: list[tuple[str, bytes]] = field(default_factory=list)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def shoot(self, label: str) -> None:
        """Keep a full-page screenshot; written to tests/artifacts/ only if the test fails."""
        self.shots.append((label, self.page.screenshot(full_page=True)))

    def log_in(self, username: str, password: str) -> None:
        self.goto("/")  # a new user lands on the login page
        self.page.get_by_label("User name").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(self.base_url + "/")


@pytest.fixture
def open_session(chromium: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``open_session(viewport=DESKTOP)`` -> a fresh browser context on the live server."""
    sessions: list[tuple[Any, Session]] = []

    def open_one(viewport: dict | None = None) -> Session:
        context = chromium.new_context(viewport=viewport or DESKTOP, accept_downloads=True)
        context.set_default_timeout(20_000)
        page = context.new_page()
        session = Session(page=page, base_url=live_server.url, name=f"{request.node.name}-{len(sessions)}")
        page.on("console", lambda message: message.type == "error" and session.console_errors.append(
            f"{page.url}: {message.text}"))
        page.on("pageerror", lambda error: session.console_errors.append(f"{page.url}: {error}"))
        sessions.append((context, session))
        return session

    yield open_one
    failed = any(getattr(request.node, f"report_{when}", None) and getattr(request.node, f"report_{when}").failed
                 for when in ("setup", "call"))
    keep = failed or bool(os.environ.get("NASWEB_SCREENSHOTS"))  # set it to look at every page visited
    for context, session in sessions:
        if keep:
            ARTIFACTS.mkdir(exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", session.name)
            for position, (label, png) in enumerate(session.shots):
                (ARTIFACTS / f"{stem}-{position:02d}-{label}.png").write_bytes(png)
            with contextlib.suppress(Exception):  # the page may be gone; the earlier screenshots are written
                session.page.screenshot(path=str(ARTIFACTS / f"{stem}-zz-last.png"), full_page=True)
        context.close()
