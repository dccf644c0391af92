"""Rows that no message or Postgres can carry fail alone at ingest, naming the cell."""

from __future__ import annotations

import pytest

from shared.sources.base import Row
from shared.workflow.carriable import carriable


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (Row(0, "ab\x00c", 2), ["the text", "NUL", "U+0000", "position 3"]),
        (Row(0, "ok", 2, filename="f\x00"), ["file-name cell", "NUL"]),
        (Row(0, "ok", 2, style={"color": "red\ud800"}), ["color cell", "lone surrogate", "U+D800"]),
        (Row(0, "x" * 70_000, 2), ["70000 bytes", "65536", "IMAGEGEN_MAX_ROW_BYTES"]),
        (Row(0, "汉" * 22_000, 2, style={"color": "red"}), ["66008 bytes"]),
    ],
)
def test_a_row_that_cannot_travel_fails_without_its_cells(row: Row, words: list[str]) -> None:
    out = carriable(row, 65536)
    assert out.error is not None and all(word in out.error for word in words), out.error
    assert (out.text, out.style, out.filename, out.values, out.row) == ("", None, None, None, 2)


def test_a_row_that_can_travel_is_unchanged_and_an_error_is_made_storable() -> None:
    row = Row(0, "汉字\x01\t text", 3, {"a": "b"}, None, "f", {"color": "red"})
    assert carriable(row, 65536) is row
    broken = carriable(Row(0, "", 4, error="not valid JSON: \x00"), 65536)
    assert broken.error == "not valid JSON: \ufffd"
