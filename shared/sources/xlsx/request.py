"""The XLSX source's request: `imagegen.submit.xlsx`."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from shared.contract.submit import FileSubmit

SheetRef = (
    Annotated[str, Meta(min_length=1, max_length=31, description="a sheet by name")]
    | Annotated[int, Meta(ge=0, le=1000, description="a sheet by 0-based position")]
)


class SubmitXlsx(FileSubmit, tag="xlsx", kw_only=True):
    """Render one image per row of a sheet of an Excel workbook (.xlsx).

    The workbook is an upload (`object`) or a file under the server's allowed folder (`path`).
    Cells are read as the workbook last computed them (formulas give their cached value).
    """

    sheet: Annotated[SheetRef, Meta(description="the sheet, by name or 0-based position")] = 0
    has_header: Annotated[bool, Meta(description="the first non-empty row names the columns")] = True
