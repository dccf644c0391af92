"""Reading a file source line by line never holds more of a line than the limit: a 50 MB line
fails as its own row (CSV and JSON Lines alike) and the rows around it read as usual."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

from shared.sources.csv.reader import CsvLayout, iter_records
from shared.sources.files import Overlong, bounded_lines


def test_lines_over_the_limit_are_skipped_unread_and_sized() -> None:
    data = "a,b\n" + "x" * 50 + "\n" + "y" * 10 + "\r\n" + "é" * 21 + "\r" + "ok\n" + "z" * 30
    assert list(bounded_lines(io.StringIO(data, newline=""), 20)) == [
        "a,b\n", Overlong(51), "y" * 10 + "\r\n", Overlong(22), "ok\n", Overlong(30),
    ]  # fmt: skip
    assert list(bounded_lines(io.BytesIO(b"ok\n" + b"x" * 40 + b"\nlast"), 20)) == [
        b"ok\n", Overlong(41), b"last",
    ]  # fmt: skip


def test_a_50_mb_line_costs_no_more_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("wb") as out:
        out.write(b"name,n\nfirst,1\n")
        for _ in range(50):
            out.write(b"x" * (1024 * 1024))
        out.write(b',2\n"quoted\nacross lines",3\nlast,4\n')
    layout = CsvLayout("utf-8", ",", ["name", "n"])
    tracemalloc.start()
    try:
        with path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            records = list(iter_records(text, layout, max_line=64 * 1024))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024, peak
    assert [(number, cells) for number, cells, _ in records] == [
        (2, ["first", "1"]), (3, ["", ""]), (4, ["quoted\nacross lines", "3"]), (5, ["last", "4"]),
    ]  # fmt: skip
    error = records[1][2] or ""
    assert "52428803 characters" in error and "65536" in error and "not read" in error
