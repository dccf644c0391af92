"""A result's manifest lines: the direct join of plain rendered items writes exactly what the csv
module writes, and every item that is not plain goes through the csv module."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contract.messages import ItemResult
from shared.workflow.manifest_lines import _plain_lines, csv_writer, format_lines, manifest_row, safe_cell

# Characters that matter to CSV and to spreadsheets, among ordinary ones (Chinese, Latin, digits).
_CHARS = st.sampled_from([*"东华门街道ab1 ", ",", '"', "\n", "\r", "\t", "=", "+", "-", "@", "'", "\x1f"])
_TEXT = st.text(_CHARS, min_size=0, max_size=8)


def by_csv_module(items: list[ItemResult]) -> bytes:
    text = io.StringIO()
    csv_writer(text).writerows([manifest_row(item) for item in items])
    return text.getvalue().encode("utf-8")


@st.composite
def items(draw: st.DrawFn) -> list[ItemResult]:
    count = draw(st.integers(1, 12))
    out = []
    for index in range(count):
        text = draw(_TEXT)
        ok = draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else True
        if not ok:
            out.append(ItemResult(index, False, row=index + 2, error=draw(_TEXT), text=text))
            continue
        missing = (
            draw(st.lists(st.sampled_from(["𝄞", "\U000e0001"]), max_size=2)) if draw(st.booleans()) else []
        )
        out.append(
            ItemResult(
                index, True, row=index + 2, file=draw(_TEXT) + ".png", width=draw(st.integers(1, 5000)),
                height=48, bytes=300, missing_glyphs=missing, text=text,
            )
        )  # fmt: skip
    return out


@settings(max_examples=400, deadline=None)
@given(items())
def test_lines_are_what_the_csv_module_writes(batch: list[ItemResult]) -> None:
    data, counts = format_lines(batch)
    assert data == by_csv_module(batch)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    # Every cell comes back whole: one line per item, its text as written (made safe).
    assert [row[1] for row in rows] == [safe_cell(item.text or "") for item in batch]
    statuses = [row[5] for row in rows]
    assert counts == {status: statuses.count(status) for status in set(statuses)}


def test_plain_rendered_items_are_joined_directly_and_read_back_as_written() -> None:
    batch = [
        ItemResult(
            i,
            True,
            row=i + 2,
            file=f"{i:06d}-东华门街道.png",
            width=100 + i,
            height=48,
            text=f"东华门街道 {i}",
        )
        for i in range(50)
    ]
    assert _plain_lines(batch) is not None  # the direct join is taken...
    data, counts = format_lines(batch)
    assert data == by_csv_module(batch)  # ...and writes what the csv module writes
    assert counts == {"ok": 50}
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[7] == ["9", "东华门街道 7", "000007-东华门街道.png", "107", "48", "ok", ""]


def test_one_cell_that_is_not_plain_sends_the_result_through_the_csv_module() -> None:
    plain = [ItemResult(i, True, row=i, file=f"{i}.png", width=1, height=1, text="ok") for i in range(3)]
    for text in ("=1+1", "a,b", 'say "hi"', "two\nlines", "-3", "\tx", "@me", "x\x1f=y"):
        batch = [*plain, ItemResult(3, True, row=3, file="3.png", width=1, height=1, text=text)]
        assert _plain_lines(batch) is None, text
        assert format_lines(batch)[0] == by_csv_module(batch)
    incomplete = [
        *plain,
        ItemResult(3, True, row=3, file="3.png", width=1, height=1, text="𝄞", missing_glyphs=["𝄞"]),
    ]
    failed = [*plain, ItemResult(3, False, row=3, error="too wide", text="x")]
    for batch in (incomplete, failed):
        assert _plain_lines(batch) is None
        assert format_lines(batch)[0] == by_csv_module(batch)
    assert (
        b"'=1+1"
        in format_lines([*plain, ItemResult(3, True, row=3, file="3.png", width=1, height=1, text="=1+1")])[0]
    )


def test_a_carriage_return_in_a_text_stays_in_its_cell() -> None:
    # With "\n" as the line terminator the csv module left a lone CR unquoted, and every CSV
    # reader split the item's line there.
    batch = [
        ItemResult(0, True, row=2, file="0.png", width=1, height=1, text="a\rb"),
        ItemResult(1, True, row=3, file="1.png", width=1, height=1, text="c"),
    ]
    data = format_lines(batch)[0]
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert [row[1] for row in rows] == ["a\rb", "c"]
