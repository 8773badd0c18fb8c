"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Install the browser with scripts/install-chromium.sh. Without /usr/bin/chromium the tests skip,
except on CI (CI=true) where a missing browser is a failure, not a silent pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; the fixtures' ORM calls are still plain
# synchronous calls, so Django's async-safety guard must be told so.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from tests.dashboard.conftest import (  # noqa: E402,F401 - shared data fixtures
    documents,
    evaluated,
    make_slo,
    now,
    pending_release,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(autouse=True)
def _roles(transactional_db: Any) -> None:
    """The live server needs a transactional database, which is flushed between tests: the role
    groups the migrations created are recreated here."""
    from django.contrib.auth.models import Group

    for role in ("viewer", "operator", "approver", "admin"):
        Group.objects.get_or_create(name=role)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{CHROMIUM} is missing: run scripts/install-chromium.sh")
        pytest.skip(f"{CHROMIUM} is missing: run scripts/install-chromium.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Session:
    """One browser context (cookies) with the page's console errors collected."""

    def __init__(self, browser: Any, base_url: str, width: int = 1280) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900}, base_url=base_url)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def login(self, username: str) -> None:
        self.page.goto("/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(f"pw-{username}-123456")
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url("**/")

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def browse(chromium: Any, live_server: Any) -> Iterator[Any]:
    """browse(width=1280) -> a new Session against the live server; closed after the test."""
    sessions: list[Session] = []

    def make(width: int = 1280) -> Session:
        session = Session(chromium, live_server.url, width)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()
