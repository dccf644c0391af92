"""The XLSX source: a sheet's rows, streamed with openpyxl's read-only mode (memory stays flat).

An .xlsx file is a zip whose directory is at its end, so unlike CSV the submit-time check needs
the whole upload; it reads only the header row of the sheet, and ingest reads the file again.
Numbers keep the form a person typed (12, not 12.0); dates are ISO 8601.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import zipfile
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from shared.contract.errors import BadRequest, SourceError
from shared.sources.base import Checked, Row, SourceContext, in_chunks
from shared.sources.files import local_file
from shared.sources.table import Columns
from shared.sources.xlsx.request import SubmitXlsx
from shared.storage.naming import NameTemplate


def cell_text(value: Any) -> str:
    """A cell as the text a person sees in it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


@contextmanager
def open_sheet(path: Path, sheet: str | int) -> Iterator[ReadOnlyWorksheet]:
    # Opened as a file object: openpyxl judges a path by its extension, and uploads are
    # spooled to temporary files without one.
    handle = path.open("rb")
    try:
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        handle.close()
        raise BadRequest(
            f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})", field="object"
        ) from exc
    try:
        names = book.sheetnames
        if isinstance(sheet, int):
            if sheet >= len(names):
                raise BadRequest(f"the workbook has {len(names)} sheets: {', '.join(names)}", field="sheet")
            name = names[sheet]
        elif sheet not in names:
            raise BadRequest(f"no sheet {sheet!r} (sheets: {', '.join(names)})", field="sheet")
        else:
            name = sheet
        worksheet = book[name]
        if not isinstance(worksheet, ReadOnlyWorksheet):
            raise BadRequest(f"{name!r} is a chart sheet, not a worksheet", field="sheet")
        yield worksheet
    finally:
        book.close()
        handle.close()


def iter_sheet(sheet: ReadOnlyWorksheet) -> Iterator[tuple[int, list[str]]]:
    """(sheet row number, cells as text) of every non-empty row."""
    first = sheet.min_row or 1
    for offset, values in enumerate(sheet.iter_rows(values_only=True)):
        cells = [cell_text(value) for value in values]
        if any(cell.strip() for cell in cells):
            yield first + offset, cells


def read_header(rows: Iterator[tuple[int, list[str]]], has_header: bool) -> list[str] | None:
    if not has_header:
        return None
    first = next(rows, None)
    if first is None:
        raise BadRequest("the sheet is empty", field="sheet")
    return [name.strip() for name in first[1]]


class XlsxSource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx

    async def close(self) -> None:
        return None

    async def check(self, request: SubmitXlsx) -> Checked:
        async with local_file(self.ctx, request, None) as path:
            return await asyncio.to_thread(self._check, request, path)

    @staticmethod
    def _check(request: SubmitXlsx, path: Path) -> Checked:
        with open_sheet(path, request.sheet) as sheet:
            rows = iter_sheet(sheet)
            Columns.resolve(request, read_header(rows, request.has_header))
            if next(rows, None) is None:
                raise BadRequest("the sheet has no data rows", field="sheet")
            return Checked({"sheet": str(sheet.title)})

    async def chunks(self, request: SubmitXlsx) -> AsyncGenerator[list[Row], None]:
        with_values = bool(NameTemplate(request.name_template).columns)
        async with local_file(self.ctx, request, None) as path:
            with open_sheet(path, request.sheet) as sheet:
                records = iter_sheet(sheet)
                columns = Columns.resolve(request, read_header(records, request.has_header))
                rows = (
                    columns.row(index, number, cells, with_values=with_values)
                    for index, (number, cells) in enumerate(records)
                )
                try:
                    async for chunk in in_chunks(rows):
                        yield chunk
                except (zipfile.BadZipFile, KeyError, ValueError) as exc:
                    raise SourceError(f"the workbook stops being readable: {exc}") from exc
