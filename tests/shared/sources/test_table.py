"""`Columns.rows`, the loop every file source's rows pass through, gives exactly the rows that
`Columns.row` gives one record at a time, whichever columns a job takes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.sources.table import Columns

CELL = st.sampled_from(["", " ", "东华门街道", "Main St", "\t", "x"])
RECORDS = st.lists(
    st.tuples(st.integers(1, 10**6), st.lists(CELL, max_size=4), st.none() | st.just("3 fields, expected 2")),
    max_size=30,
)
LAYOUTS = st.sampled_from(
    [
        Columns(("code", "name"), 1, "name"),  # the text only: the loop without a call a row
        Columns(None, 0, "0"),
        Columns(("code", "name", "file"), 1, "name", filename=2),
        Columns(("code", "name", "colour"), 1, "name", style=(("color", 2),)),
    ]
)


@settings(max_examples=200, deadline=None)
@given(records=RECORDS, columns=LAYOUTS, with_values=st.booleans())
def test_rows_are_the_rows_of_each_record(
    records: list[tuple[int, list[str], str | None]], columns: Columns, with_values: bool
) -> None:
    expected = [
        columns.row(index, number, cells, with_values=with_values, error=error)
        for index, (number, cells, error) in enumerate(records)
    ]
    assert list(columns.rows(records, with_values=with_values)) == expected


def test_an_empty_or_missing_text_cell_fails_its_row_and_a_source_error_is_kept() -> None:
    columns = Columns(("code", "name"), 1, "name")
    rows = list(columns.rows([(2, ["1", " "], None), (3, ["2"], None), (4, ["3", "x", "y"], "ragged")]))
    assert [row.error for row in rows] == ["empty text in column 'name'"] * 2 + ["ragged"]
    assert [(row.index, row.row, row.text) for row in rows] == [(0, 2, " "), (1, 3, ""), (2, 4, "x")]
