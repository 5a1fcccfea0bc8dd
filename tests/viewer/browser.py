"""Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by Playwright.

Without a browser (or without Playwright) the tests skip with the reason, unless
`TOKENROLL_REQUIRE_BROWSER=1` (CI sets it), where they fail. Playwright's sync API keeps an
event loop running while it is open, so build test data that needs `asyncio.run` first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

REQUIRE_ENV = "TOKENROLL_REQUIRE_BROWSER"


def _unavailable(reason: str) -> None:
    reason = f"{reason} (scripts/install-browser installs Chromium; pip install -e '.[dev]' installs Playwright)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@contextmanager
def launch() -> Iterator[Any]:
    """A headless Chromium browser (Playwright), or a skip (a failure under TOKENROLL_REQUIRE_BROWSER=1)."""
    from tokenroll.viewer.browser import find_chromium

    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def watch_errors(page: Any) -> list[str]:
    """Collect the page's script errors and console errors, to assert there were none."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", lambda message: errors.append(f"console: {message.text}") if message.type == "error" else None)
    return errors


def require_browser() -> None:
    """Skip (or fail under TOKENROLL_REQUIRE_BROWSER=1) unless Chromium and Playwright are both there."""
    from tokenroll.viewer.browser import BrowserUnavailable, find_chromium

    try:
        find_chromium()
    except BrowserUnavailable as exc:
        _unavailable(str(exc))
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright is not installed")


def open_viewer(browser: Any, html: Any, viewport: dict[str, int] | None = None) -> tuple[Any, list[str]]:
    """A new page showing the viewer file, once it is interactive, and the list its errors go to."""
    page = browser.new_page(viewport=viewport or {"width": 1360, "height": 900})
    errors = watch_errors(page)
    page.goto(html.resolve().as_uri())
    page.wait_for_function("document.documentElement.dataset.ready === '1'")
    return page, errors
