"""The web console end to end in a real headless browser (Debian's chromium, driven by Playwright,
tests/browsers.py): column choice, preview, progress, cancel, gallery, fonts, errors."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from tests.browsers import shots
from tests.gateways import Gateway

ROWS = ["绿茶 Green Tea", "乌龙茶 Oolong", "豆浆 Soy Milk", "Espresso 意式浓缩", "北京烤鸭", "Croissant"]


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
    page = await browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
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
    # The default text column is the one that reads as text, not the `sku` codes before it.
    assert await page.eval_on_selector("#column", "s => s.selectedOptions[0].textContent") == "name"
    await page.fill("#size-n", "36")
    await page.fill("#wrap", "260")
    # The live preview: the first rows, rendered by the server, decoded by the browser.
    await page.wait_for_function(
        """() => { const imgs = [...document.querySelectorAll('#preview img')];
                   return imgs.length === 3 && imgs[0].alt === '绿茶 Green Tea'
                     && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        timeout=15_000,
    )
    await shots(page, "console-preview")

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
    assert await page.text_content("#gallery-note") == f"{len(ROWS)} images"
    captions = await page.eval_on_selector_all("#gallery figcaption", "fs => fs.map(f => f.textContent)")
    assert captions == [f"{row}.png" for row in range(2, len(ROWS) + 2)]  # the header is row 1
    zip_href = await page.get_attribute("#zip", "href")
    assert zip_href and zip_href.endswith("/zip") and await page.is_visible("#zip")
    zip_status = await page.evaluate("href => fetch(href).then(r => r.status)", zip_href)
    assert zip_status == 200
    await shots(page, "console-done")

    # API errors reach the user readably: code, field and reason.
    await page.fill("#size-n", "0")
    await page.wait_for_selector("#preview .inline-error", timeout=10_000)
    inline = await page.text_content("#preview .inline-error")
    assert inline is not None and "400" in inline and "size" in inline, inline
    await page.click("#submit")
    await page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    message = await page.text_content("#error")
    assert message is not None and "400" in message and "style.size" in message, message
    await shots(page, "console-error")
    assert page_errors == []


@pytest.mark.parametrize(
    ("csv_text", "expected"),
    [
        # codes, numbers, then CJK names: the names
        ("id,code,title,qty\n1,SKU-0001,北京烤鸭,3\n2,SKU-0002,豆浆,4\n", "title"),
        # a short word column beside a longer description: the one with more letters
        ("sku,size,description\nA1,XL,Green tea from Hangzhou\nA2,S,Oolong 乌龙茶\n", "description"),
        # nothing but numbers: the first column
        ("a,b\n1,2\n3,4\n", "a"),
    ],
)
async def test_the_default_text_column_is_the_one_that_reads_as_text(
    browser: Browser, gateway: Gateway, tmp_path: Path, csv_text: str, expected: str
) -> None:
    csv_file = tmp_path / "columns.csv"
    csv_file.write_text(csv_text, "utf-8")
    page = await browser.new_page(bypass_csp=True)
    await page.goto(gateway.url + "/")
    await page.set_input_files("#file", str(csv_file))
    await page.wait_for_selector("#column option", state="attached")
    assert await page.eval_on_selector("#column", "s => s.selectedOptions[0].textContent") == expected
    # The sample table marks the same column.
    assert await page.eval_on_selector("#sample th.sel", "th => th.textContent") == expected
    await page.close()


# Every change of the status line with the bar's width at that moment, kept in the page.
RECORD_PROGRESS = """() => {
  window.samples = [];
  new MutationObserver(() => window.samples.push({
    status: document.querySelector('#status').textContent,
    width: parseFloat(document.querySelector('#bar').style.width) || 0,
    submitDisabled: document.querySelector('#submit').disabled,
  })).observe(document.querySelector('#status'), { childList: true, characterData: true, subtree: true });
}"""


def done_in(status: str) -> int:
    """The items done that a status line reports ("... · 1,234 / 20,000 (6%)", "1,234 done ...")."""
    numbers = status.split(" · ")[2:3]
    return int(numbers[0].split()[0].replace(",", "")) if numbers else 0


async def test_progress_counts_from_the_first_item_and_a_cancelled_job_keeps_its_bar(
    browser: Browser, gateway: Gateway, tmp_path: Path
) -> None:
    rows = 20_000
    csv_file = tmp_path / "big.csv"
    csv_file.write_text(
        "sku,name\n" + "".join(f"B{i:05},{ROWS[i % len(ROWS)]} {i}\n" for i in range(rows)), "utf-8"
    )
    page = await browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    await page.goto(gateway.url + "/")
    await page.set_input_files("#file", str(csv_file))
    await page.wait_for_function("document.querySelectorAll('#column option').length === 2")
    await page.evaluate(RECORD_PROGRESS)
    await page.click("#submit")
    # Items are done long before ingest has counted 20,000 rows: the bar moves from the first.
    await page.wait_for_function(
        "window.samples.some(s => /· [0-9,]+ (done|\\/)/.test(s.status) && !/· 0 (done|\\/)/.test(s.status))",
        timeout=60_000,
    )
    assert await page.is_disabled("#submit")  # no second job while this one runs
    await shots(page, "console-progress")
    await page.click("#cancel")
    await page.wait_for_function(
        "/cancelled/.test(document.querySelector('#status').textContent)", timeout=20_000
    )
    samples = await page.evaluate("window.samples")
    moving = [s for s in samples if "submitted" not in s["status"] and done_in(s["status"]) > 0]
    assert moving, samples
    assert all(s["width"] > 0 for s in moving), moving  # never an empty bar once items are done
    assert all(s["submitDisabled"] for s in samples if "cancelled" not in s["status"]), samples
    # The cancelled job shows what it did, on a bar that is not empty.
    status = await page.text_content("#status") or ""
    assert done_in(status) > 0, status
    assert float((await page.eval_on_selector("#bar", "b => b.style.width")).rstrip("%")) > 0
    assert "failed" in (await page.get_attribute("#bar", "class") or "")
    # The gallery says the status line's number: as its own count, or, where images of batches
    # already in flight landed after the cancel (stored, in the zip, not counted), beside it.
    await page.wait_for_function("document.querySelector('#gallery-note').textContent !== ''", timeout=15_000)
    note = await page.text_content("#gallery-note") or ""
    assert note.endswith(f"{done_in(status):,} images") or note.endswith(
        f"counts {done_in(status):,} done"
    ), (
        note,
        status,
    )
    assert not await page.is_disabled("#submit")
    await shots(page, "console-cancelled")
    assert page_errors == []
    await page.close()


async def test_cjk_in_the_csv_table_is_set_in_the_bundled_web_fonts(
    browser: Browser, gateway: Gateway, tmp_path: Path
) -> None:
    csv_file = tmp_path / "茶.csv"
    csv_file.write_text("sku,name\n" + "".join(f"T{i},{t}\n" for i, t in enumerate(ROWS)), "utf-8")
    page = await browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    await page.goto(gateway.url + "/")
    await page.set_input_files("#file", str(csv_file))
    await page.wait_for_selector("#sample td", state="attached")
    # The page's own text pulls in the slices it needs; loading them again finds them loaded.
    loaded = await page.evaluate(
        "() => document.fonts.load('16px imagegen', '绿茶乌龙豆浆意式浓缩北京烤鸭')"
        ".then(faces => faces.length)"
    )
    assert loaded >= 2  # Latin and at least one slice of ideographs
    await page.wait_for_function(
        "() => document.fonts.check('16px imagegen', '绿茶 Green Tea 北京烤鸭')", timeout=120_000
    )
    family = await page.eval_on_selector("#sample td", "td => getComputedStyle(td).fontFamily")
    assert family.startswith("imagegen"), family
    # Each slice came from the gateway, small, and only the ones the page uses.
    fonts = [url for url in fetched if "/webfonts/" in url]
    assert fonts and all(url.startswith(gateway.url + "/webfonts/") for url in fonts), fonts
    assert len(fonts) < 40, fonts
    assert all(not url.startswith(("http://", "https://")) or url.startswith(gateway.url) for url in fetched)
    await shots(page, "console-cjk-table")
    await page.close()


async def test_the_web_font_slices_are_woff_and_an_unknown_one_is_a_404(http: httpx.AsyncClient) -> None:
    css = await http.get("/webfonts.css", headers={"Accept-Encoding": "gzip"})
    assert css.status_code == 200 and css.headers["content-encoding"] == "gzip"
    assert css.headers["content-type"].startswith("text/css")
    urls = re.findall(r'url\("([^"]+)"\)', css.text)
    # The ideograph 茶 (U+8336) has its slice, declared for its block alone.
    tea = next(url for url in urls if url.startswith("/webfonts/sans-sc/83.woff"))
    assert "unicode-range:U+8300-83FF" in css.text
    woff = await http.get(tea)
    assert woff.status_code == 200 and woff.headers["content-type"] == "font/woff"
    assert woff.content[:4] == b"wOFF" and len(woff.content) < 200_000
    missing = await http.get("/webfonts/sans-sc/ffffff.woff")
    assert missing.status_code == 404 and missing.json()["field"] == "block"
