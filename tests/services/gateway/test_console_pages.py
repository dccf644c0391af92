"""The console on a big job and a small screen (Debian's chromium through Playwright): the gallery
in pages, the manifest link, the job list with file name and time, no sideways scrolling at
390 px; and the API docs it links to, served by the gateway itself."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from playwright.async_api import Browser, Route

from tests.browsers import NARROW, NO_OVERFLOW, shot, shots
from tests.gateways import Gateway

GALLERY_PAGE = 48  # console.js
ROWS = 130  # three pages


async def test_a_big_job_pages_its_gallery_offers_its_manifest_and_is_listed_by_name(
    browser: Browser, gateway: Gateway, tmp_path: Path
) -> None:
    csv_file = tmp_path / "价目表 prices.csv"
    csv_file.write_text(
        "sku,name\n" + "".join(f"C{i:04},茶 {i} tea with a rather long name\n" for i in range(ROWS)), "utf-8"
    )
    page = await browser.new_page(viewport={"width": NARROW, "height": 800}, bypass_csp=True)
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    await page.goto(gateway.url + "/")
    await page.wait_for_function("document.querySelectorAll('#font option').length > 1")
    assert await page.evaluate(NO_OVERFLOW)
    await page.set_input_files("#file", str(csv_file))
    await page.wait_for_function("document.querySelectorAll('#preview img').length === 3", timeout=30_000)
    assert await page.evaluate(NO_OVERFLOW)  # the sample table scrolls in its own box
    await page.click("#submit")
    await page.wait_for_selector("#manifest:not([hidden])", timeout=60_000)
    await page.wait_for_function(f"document.querySelectorAll('#gallery figure').length === {GALLERY_PAGE}")
    assert await page.evaluate(NO_OVERFLOW)

    # One page of the gallery at a time, with the same total as the status line.
    assert await page.text_content("#page-info") == f"1–{GALLERY_PAGE} of {ROWS}"
    # The note is written once the page has the job's own count (a request after the gallery).
    await page.wait_for_function("document.querySelector('#gallery-note').textContent !== ''")
    assert await page.text_content("#gallery-note") == f"{ROWS} images"
    status = await page.text_content("#status") or ""
    assert f"{ROWS} / {ROWS}" in status, status
    assert await page.is_disabled("#prev")
    first = await page.eval_on_selector_all("#gallery figcaption", "fs => fs.map(f => f.textContent)")
    assert first[0] == "2.png" and len(first) == GALLERY_PAGE
    await page.click("#next")
    await page.wait_for_function("document.querySelector('#page-info').textContent.startsWith('49–')")
    second = await page.eval_on_selector_all("#gallery figcaption", "fs => fs.map(f => f.textContent)")
    assert second[0] == f"{GALLERY_PAGE + 2}.png" and not set(first) & set(second)
    await page.click("#next")
    await page.wait_for_function(
        f"document.querySelector('#page-info').textContent === '97–{ROWS} of {ROWS}'"
    )
    assert await page.is_disabled("#next")
    assert len(await page.query_selector_all("#gallery figure")) == ROWS - 2 * GALLERY_PAGE
    await page.click("#prev")
    await page.wait_for_function("document.querySelector('#page-info').textContent.startsWith('49–')")
    # A full page of 48 on a phone: three small images a row, about two screens of gallery.
    columns = await page.eval_on_selector(
        "#gallery", "g => getComputedStyle(g).gridTemplateColumns.split(' ').length"
    )
    gallery_height = await page.eval_on_selector("#gallery", "g => g.getBoundingClientRect().height")
    assert columns == 3 and gallery_height < 2000, (columns, gallery_height)
    await page.set_viewport_size({"width": 1400, "height": 900})
    # A page of 48 images keeps the whole console within a few screens at 1400 px.
    height = await page.evaluate("document.scrollingElement.scrollHeight")
    assert height < 3000, height

    # The manifest link downloads the job's manifest: one row per item.
    href = await page.get_attribute("#manifest", "href")
    assert href and href.endswith("/manifest")
    manifest = await page.evaluate("href => fetch(href).then(r => r.text())", href)
    rows = list(csv.reader(io.StringIO(manifest.lstrip("\ufeff"))))
    assert rows[0][0] == "row" and len(rows) == ROWS + 1

    # The job list names the file it read, with the time and the counts.
    job_id = status.split(" · ")[0].removeprefix("job ")
    item = page.locator("#jobs li", has=page.locator(f"[title='{job_id}']"))
    assert await item.locator(".job-name").text_content() == csv_file.name
    assert await item.locator("time").get_attribute("datetime")
    assert "csv" in (await item.text_content() or "") and f"{ROWS} / {ROWS}" in (
        await item.text_content() or ""
    )
    await shots(page, "console-gallery-pages")
    assert page_errors == []
    await page.close()


async def test_the_api_docs_the_console_links_to_work_with_no_other_origin(
    browser: Browser, gateway: Gateway
) -> None:
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    elsewhere: list[str] = []

    async def only_the_gateway(route: Route) -> None:
        if route.request.url.startswith(gateway.url + "/") or route.request.url.startswith("data:"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_the_gateway)
    refused: list[str] = []  # the pages' own policy blocks what would leave the gateway
    page.on("console", lambda msg: refused.append(msg.text) if "Content Security" in msg.text else None)
    await page.goto(gateway.url + "/")
    links = await page.eval_on_selector_all("header a", "as => as.map(a => a.getAttribute('href'))")
    assert {"/docs", "/redoc"} <= set(links)

    # Swagger UI: its script and style from the gateway, the operations drawn from /openapi.json.
    response = await page.goto(gateway.url + "/docs")
    assert response is not None and response.ok
    html = await response.text()
    assert "cdn" not in html.lower() and "//" not in html.replace("://" + gateway.url.split("://")[1], "")
    await page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "imagegen gateway" in (await page.text_content(".swagger-ui .info .title") or "")
    await page.wait_for_selector(
        ".opblock-summary-path[data-path='/jobs/{job_id}/manifest']", state="attached"
    )
    await shots(page, "docs-swagger")

    # ReDoc: the same, from its own bundle.
    response = await page.goto(gateway.url + "/redoc")
    assert response is not None and response.ok
    assert "fonts.googleapis" not in await response.text()
    await page.wait_for_function(
        "() => [...document.querySelectorAll('h1')].some(h => h.textContent.includes('imagegen gateway'))",
        timeout=30_000,
    )
    await shot(page, "docs-redoc")
    assert elsewhere == []
    assert all("cdn.redoc.ly" in text for text in refused), refused  # only ReDoc's logo
    await page.close()
