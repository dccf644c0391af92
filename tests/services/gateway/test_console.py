"""The web console end to end in a real headless browser (Debian's chromium, driven by Playwright).

No browser is downloaded: Playwright drives the system's `/usr/bin/chromium`. A machine without it
fails this test with the command that installs it, rather than skipping the only check that the
console works.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.gateways import Gateway

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
SCREENSHOTS = os.environ.get("IMAGEGEN_SCREENSHOTS")  # a folder: keep screenshots for a look
ROWS = ["绿茶 Green Tea", "乌龙茶 Oolong", "豆浆 Soy Milk", "Espresso 意式浓缩", "北京烤鸭", "Croissant"]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
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
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


async def test_console_renders_a_csv_and_shows_the_gallery(
    browser: Browser, gateway: Gateway, tmp_path: Path
) -> None:
    csv_file = tmp_path / "菜单.csv"
    csv_file.write_text(
        "sku,name,price\n" + "".join(f"A{i},{t},{i}.50\n" for i, t in enumerate(ROWS)), "utf-8"
    )
    # Under the console's own Content-Security-Policy its scripts, styles and calls all work.
    strict = await browser.new_page()
    violations: list[str] = []
    strict.on("console", lambda msg: violations.append(msg.text) if "Content Security" in msg.text else None)
    await strict.goto(gateway.url + "/")
    await strict.wait_for_selector("#health.ok", timeout=10_000)
    await strict.wait_for_selector("#font option[value=sans]", state="attached", timeout=10_000)
    assert violations == []
    await strict.close()

    # Playwright's wait_for_function evaluates strings, which that policy forbids: bypass it here.
    page = await browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    await page.goto(gateway.url + "/")
    await page.wait_for_function("document.querySelector('#health').textContent === 'services ready'")
    await page.wait_for_function("document.querySelectorAll('#font option').length > 1")

    await page.set_input_files("#file", str(csv_file))
    await page.wait_for_function("document.querySelectorAll('#column option').length === 3")
    assert await page.eval_on_selector_all("#column option", "os => os.map(o => o.textContent)") == [
        "sku",
        "name",
        "price",
    ]
    await page.select_option("#column", label="name")
    await page.fill("#size-n", "36")
    await page.fill("#wrap", "260")
    # The live preview: the first rows, rendered by the server, decoded by the browser.
    await page.wait_for_function(
        """() => { const imgs = [...document.querySelectorAll('#preview img')];
                   return imgs.length === 3 && imgs[0].alt === '绿茶 Green Tea'
                     && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        timeout=15_000,
    )
    await shot(page, "console-preview")

    await page.click("#submit")
    await page.wait_for_function(
        f"""() => {{ const imgs = [...document.querySelectorAll('#gallery img')];
                    return imgs.length === {len(ROWS)}
                      && imgs.every(i => i.complete && i.naturalWidth > 0); }}""",
        timeout=30_000,
    )
    status = await page.text_content("#status")
    assert status is not None and "completed" in status and f"{len(ROWS)} / {len(ROWS)}" in status, status
    assert await page.eval_on_selector("#bar", "b => b.style.width") == "100%"
    captions = await page.eval_on_selector_all("#gallery figcaption", "fs => fs.map(f => f.textContent)")
    assert captions == [f"{row}.png" for row in range(2, len(ROWS) + 2)]  # the header is row 1
    zip_href = await page.get_attribute("#zip", "href")
    assert zip_href and zip_href.endswith("/zip") and await page.is_visible("#zip")
    zip_status = await page.evaluate("href => fetch(href).then(r => r.status)", zip_href)
    assert zip_status == 200
    await shot(page, "console-done")

    # API errors reach the user readably: code, field and reason.
    await page.fill("#size-n", "0")
    await page.wait_for_selector("#preview .inline-error", timeout=10_000)
    inline = await page.text_content("#preview .inline-error")
    assert inline is not None and "400" in inline and "size" in inline, inline
    await page.click("#submit")
    await page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    message = await page.text_content("#error")
    assert message is not None and "400" in message and "style.size" in message, message
    await shot(page, "console-error")
    assert page_errors == []
