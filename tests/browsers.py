"""Debian's Chromium driven by Playwright, for the console tests: no browser is downloaded.

A machine without `/usr/bin/chromium` (or `IMAGEGEN_CHROMIUM`) fails those tests with the command
that installs it, rather than skipping the only check that the console works. Screenshots are
kept under `artifacts/console/` (git ignores it; `IMAGEGEN_SCREENSHOTS` moves them). The `browser`
fixture is registered in tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from devstack.stack import REPO_ROOT

CHROMIUM = Path(os.environ.get("IMAGEGEN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(os.environ.get("IMAGEGEN_SCREENSHOTS") or REPO_ROOT / "artifacts" / "console")
WIDE, NARROW = 1400, 390  # the widths every console screenshot is taken at

# True when nothing on the page is wider than the window (no sideways scrolling).
NO_OVERFLOW = "() => document.scrollingElement.scrollWidth <= window.innerWidth"


async def browser_fixture() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no chromium at {CHROMIUM}: install Debian's (`apt-get install -y chromium`, "
            "`make system-deps`) or point IMAGEGEN_CHROMIUM at one"
        )
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


async def shot(page: Page, name: str) -> None:
    """A full-page screenshot `name-<width>.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    await page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)


async def shots(page: Page, name: str) -> None:
    """Screenshots at both widths, checking at the narrow one that nothing scrolls sideways;
    the page is left at its first width."""
    first = page.viewport_size or {"width": WIDE, "height": 900}
    for width in (WIDE, NARROW):
        await page.set_viewport_size({"width": width, "height": first["height"]})
        await page.wait_for_timeout(100)  # a frame for the layout to settle
        if width == NARROW:
            assert await page.evaluate(NO_OVERFLOW), await page.evaluate(
                "() => [document.scrollingElement.scrollWidth, window.innerWidth]"
            )
        await shot(page, name)
    await page.set_viewport_size(first)
