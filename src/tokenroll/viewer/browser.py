"""Headless Chromium for PNG figures of the viewer page (the `[viewer]` extra: Playwright).

Playwright drives the system's Chromium (`/usr/bin/chromium`, Debian's `chromium` package,
installed by `scripts/install-browser`); it never downloads a browser of its own.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_ENV = "TOKENROLL_CHROMIUM"
"""Names a Chromium executable to use instead of the system one."""
SYSTEM_CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1360, "height": 900}
FIGURE_IDS = ("rewards", "pass-at-k", "stop-reasons", "turns", "tokens", "time-per-turn", "bridge")


class BrowserUnavailable(RuntimeError):
    """No Chromium, or no Playwright, to drive it with."""


def find_chromium() -> str:
    """The Chromium executable: `$TOKENROLL_CHROMIUM`, else the system's; raises BrowserUnavailable."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        if not Path(configured).is_file():
            raise BrowserUnavailable(f"{CHROMIUM_ENV}={configured} is not a file")
        return configured
    for candidate in (SYSTEM_CHROMIUM, shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise BrowserUnavailable(
        f"no Chromium found at {SYSTEM_CHROMIUM} or on PATH: install Debian's chromium package "
        f"(scripts/install-browser does) or set {CHROMIUM_ENV} to a Chromium executable"
    )


@contextmanager
def chromium_page(viewport: dict[str, int] | None = None) -> Iterator[Any]:
    """A Playwright page in headless Chromium, closed on exit."""
    executable = find_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BrowserUnavailable(
            "the PNG export needs Playwright: pip install 'tokenroll[viewer]'"
        ) from None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page(viewport=viewport or VIEWPORT)
            yield page
        finally:
            browser.close()


def open_page(page: Any, html: Path) -> float:
    """Load the viewer file and wait until it is interactive; returns the page's own ready time (ms)."""
    page.goto(html.resolve().as_uri())
    page.wait_for_function("document.documentElement.dataset.ready === '1'")
    return float(page.evaluate("window.tokenroll.ready"))


def open_trajectory(page: Any, index: int, mode: str = "role") -> None:
    """Go to trajectory `index` and colour its tapes by `mode`."""
    page.evaluate("i => window.tokenroll.open(i)", index)
    page.wait_for_function("i => document.getElementById('trajectory-page').dataset.ready === String(i)", arg=index)
    page.click(f'#modes button[data-mode="{mode}"]')


def export_pngs(
    html: Path, out_dir: Path, trajectories: Sequence[tuple[int, str]], mode: str = "role"
) -> list[Path]:
    """Screenshots for reports: run.png, one PNG per figure, and per trajectory its page, tapes and trace."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with chromium_page() as page:
        open_page(page, html)
        written.append(_shot(page, "body", out_dir / "run.png", full_page=True))
        for figure in FIGURE_IDS:
            if page.locator(f"#fig-{figure}").count():
                written.append(_shot(page, f"#fig-{figure}", out_dir / f"{figure}.png"))
        for index, trajectory_id in trajectories:
            open_trajectory(page, index, mode)
            name = _file_name(trajectory_id)
            written.append(_shot(page, "body", out_dir / f"trajectory-{name}.png", full_page=True))
            written.append(_shot(page, "#tapes", out_dir / f"tapes-{name}.png"))
            if page.locator("#trace").count():
                written.append(_shot(page, "#trace", out_dir / f"trace-{name}.png"))
    return written


def _shot(page: Any, selector: str, path: Path, full_page: bool = False) -> Path:
    if full_page:
        page.screenshot(path=str(path), full_page=True)
    else:
        page.locator(selector).screenshot(path=str(path))
    return path


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:80] or "trajectory"
