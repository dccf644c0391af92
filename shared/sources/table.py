"""From a table's records to rows: the column lookups every tabular source shares.

A source knows its header (column names, or none) and reads records (lists of cells); which
column holds the text, the file name and per-row style overrides is the request's business and
is resolved here once per job, with errors that name the request field the user wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from shared.contract.errors import BadRequest
from shared.contract.style import SCALAR_FIELDS
from shared.contract.submit import DEFAULT_NAME_TEMPLATE, SubmitBase
from shared.sources.base import Row

OVERRIDABLE = frozenset(SCALAR_FIELDS)  # a cell can set any style field one string can spell


def resolve_column(column: str | int, header: Sequence[str] | None, *, field: str = "column") -> int:
    """The 0-based position of `column` in `header`; `field` names it in errors."""
    if isinstance(column, int):
        if header is not None and column >= len(header):
            raise BadRequest(f"index {column} is past the last column ({len(header) - 1})", field=field)
        return column
    if header is None:
        raise BadRequest("a column name needs a header row (or give the column index)", field=field)
    if column not in header:
        shown = ", ".join(repr(name if len(name) <= 40 else name[:40] + "…") for name in header[:20])
        more = f" and {len(header) - 20} more" if len(header) > 20 else ""
        raise BadRequest(f"no column {column!r} (columns: {shown}{more})", field=field)
    return list(header).index(column)


def check_overrides(request: SubmitBase) -> dict[str, tuple[str, str | int]]:
    """The request's per-row style overrides, checked: known, overridable fields, each mapped
    once. {style field: (request field, column)}."""
    columns = request.override_columns()
    for style_field, (request_field, _) in columns.items():
        if style_field not in OVERRIDABLE:
            known = ", ".join(sorted(OVERRIDABLE))
            raise BadRequest(
                f"{style_field!r} cannot be set per row; overridable style fields: {known}",
                field=request_field,
            )
    if request.filename_column is not None and request.name_template != DEFAULT_NAME_TEMPLATE:
        raise BadRequest("give either filename_column or name_template, not both", field="filename_column")
    return columns


@dataclass(frozen=True, slots=True)
class Columns:
    """Where a job's text, file name and overrides are in its table's records."""

    header: tuple[str, ...] | None
    text: int
    text_name: str
    filename: int | None = None
    style: tuple[tuple[str, int], ...] = ()

    @classmethod
    def resolve(cls, request: SubmitBase, header: Sequence[str] | None) -> Columns:
        text = resolve_column(request.column, header)
        filename = None
        if request.filename_column is not None:
            filename = resolve_column(request.filename_column, header, field="filename_column")
        style = tuple(
            (style_field, resolve_column(ref, header, field=request_field))
            for style_field, (request_field, ref) in check_overrides(request).items()
        )
        name = header[text] if header else str(text)
        return cls(tuple(header) if header else None, text, name, filename, style)

    def row(
        self,
        index: int,
        number: int,
        cells: Sequence[str],
        *,
        with_values: bool = True,
        error: str | None = None,
    ) -> Row:
        """The row of `cells`, which the source numbers `number` (a sheet row, a JSON Lines
        line); an empty text cell or a source `error` fails the item. The error does not repeat
        the place: every report shows an item's row number beside its error."""
        values = dict(zip(self.header, cells, strict=False)) if with_values and self.header else None
        filename = cells[self.filename] if self.filename is not None and self.filename < len(cells) else None
        style = None
        if self.style:
            style = {
                f: cells[i].strip() for f, i in self.style if i < len(cells) and cells[i].strip()
            } or None
        text = cells[self.text] if self.text < len(cells) else ""
        if error is None and not text.strip():
            error = self.empty_text()
        return Row(index, text, number, values, error, filename, style)

    def rows(
        self, records: Iterable[tuple[int, Sequence[str], str | None]], *, with_values: bool = True
    ) -> Iterator[Row]:
        """`row` of each (number, cells, error) record, indexed from 0 in order. When only the
        text is taken (most jobs), in one loop without a call a row: a source's every row passes
        here, and the call would cost more than the row's own work (bench/bench_ingest.py)."""
        if (with_values and self.header) or self.filename is not None or self.style:
            for index, (number, cells, error) in enumerate(records):
                yield self.row(index, number, cells, with_values=with_values, error=error)
            return
        column, empty = self.text, self.empty_text()
        for index, (number, cells, error) in enumerate(records):
            text = cells[column] if column < len(cells) else ""
            yield Row(index, text, number, None, empty if error is None and not text.strip() else error)

    def empty_text(self) -> str:
        """The error of a row whose text cell is empty or blank."""
        return f"empty text in column {self.text_name!r}"
