"""Rows that no message or Postgres can carry fail alone at ingest, naming the cell."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.sources.base import Row
from shared.workflow.carriable import carriable, carriable_rows


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


# Texts as sources hand them over, lone surrogates and NUL included (a JSON Lines "\ud800").
ANY_TEXT = st.text(st.characters(), max_size=12) | st.text(
    st.sampled_from("ab汉\x00\ud800\udfff😀"), max_size=6
)
ROWS = st.lists(
    st.builds(
        Row,
        st.integers(0, 10**6),
        ANY_TEXT,
        st.integers(0, 10**6),
        st.none(),
        st.none() | ANY_TEXT,
        st.none() | ANY_TEXT,
        st.none() | st.dictionaries(st.just("color"), ANY_TEXT, max_size=1),
    ),
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(rows=ROWS, max_bytes=st.sampled_from([16, 65536]))
def test_a_chunk_is_checked_as_its_rows_are_one_by_one(rows: list[Row], max_bytes: int) -> None:
    assert carriable_rows(rows, max_bytes) == [carriable(row, max_bytes) for row in rows]


def test_a_chunk_of_plain_rows_goes_as_it_is_and_one_bad_text_fails_only_its_row() -> None:
    rows = [Row(i, text, i + 2) for i, text in enumerate(["东华门街道", "Main St 12", "😀 ok"])]
    assert carriable_rows(rows, 65536) is rows
    for bad in ("\x00", "\ud800", "a\udfffb"):
        checked = carriable_rows([*rows, Row(3, bad, 5)], 65536)
        assert checked[:3] == rows and checked[3].text == "" and checked[3].error


def test_a_chunk_of_long_texts_is_checked_row_by_row_with_the_same_outcome() -> None:
    long = "汉字测试" * 4000  # 16,000 characters: five of them are more than a chunk checks joined
    rows = [Row(i, long, i + 2) for i in range(5)]
    assert carriable_rows(rows, 65536) == rows
    bad = [*rows, Row(5, long + "\x00", 7)]
    checked = carriable_rows(bad, 65536)
    assert checked[:5] == rows and checked[5].text == "" and "NUL" in (checked[5].error or "")
