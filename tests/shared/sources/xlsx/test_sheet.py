"""The XLSX source's reading on its own: sheets by name or position, cells as a person sees them,
sheet row numbers, and clear errors for what cannot work."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from shared.contract.errors import BadRequest
from shared.sources.table import Columns
from shared.sources.xlsx import SubmitXlsx
from shared.sources.xlsx.source import cell_text, iter_sheet, open_sheet, read_header


def workbook(path: Path) -> Path:
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "Cover"
    first["A1"] = "not this one"
    data = book.create_sheet("商品")
    data.append(["name", "price", "sku"])
    data.append(["苹果", 3.5, "A-1"])
    data.append(["香蕉", 12.0, "B-2"])
    data.append([None, None, None])  # an empty row: skipped, but it keeps its number
    data.append(["Peking duck 北京烤鸭", 168, "C-3"])
    data.append([None, 7, "D-4"])  # no text: fails as its own item
    book.save(path)
    return path


def read(path: Path, **options: object) -> list[tuple[int, str, str | None, dict[str, str] | None]]:
    request = SubmitXlsx(column="name", path="x.xlsx", **options)  # type: ignore[arg-type]
    with open_sheet(path, request.sheet) as sheet:
        records = iter_sheet(sheet)
        columns = Columns.resolve(request, read_header(records, request.has_header))
        rows = [columns.row(i, number, cells) for i, (number, cells) in enumerate(records)]
    return [(row.row, row.text, row.error, dict(row.values) if row.values else None) for row in rows]


def test_a_sheet_by_name_with_row_numbers_and_typed_cells(tmp_path: Path) -> None:
    rows = read(workbook(tmp_path / "book.xlsx"), sheet="商品")
    assert [(number, text) for number, text, _, _ in rows] == [
        (2, "苹果"),
        (3, "香蕉"),
        (5, "Peking duck 北京烤鸭"),  # row 4 was empty
        (6, ""),
    ]
    assert rows[1][3] == {"name": "香蕉", "price": "12", "sku": "B-2"}  # 12.0 is shown as 12
    assert rows[0][3] == {"name": "苹果", "price": "3.5", "sku": "A-1"}
    assert [error for _, _, error, _ in rows][:3] == [None, None, None]
    assert "empty text" in (rows[3][2] or "")


def test_a_sheet_by_position(tmp_path: Path) -> None:
    path = workbook(tmp_path / "book.xlsx")
    assert [text for _, text, _, _ in read(path, sheet=1)][:2] == ["苹果", "香蕉"]
    with pytest.raises(BadRequest) as err:
        read(path)  # sheet 0, "Cover", has no column "name"
    assert err.value.field == "column"


@pytest.mark.parametrize(("sheet", "words"), [("Nope", "no sheet 'Nope'"), (5, "has 2 sheets")])
def test_a_missing_sheet_names_the_sheets(tmp_path: Path, sheet: str | int, words: str) -> None:
    with pytest.raises(BadRequest) as err:
        read(workbook(tmp_path / "book.xlsx"), sheet=sheet)
    assert err.value.field == "sheet" and words in err.value.message and "商品" in err.value.message


def test_not_a_workbook_is_a_bad_request(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_text("name\nnot a zip\n")
    with pytest.raises(BadRequest) as err:
        read(path)
    assert "not a readable .xlsx" in err.value.message


def test_cells_read_as_a_person_sees_them() -> None:
    assert cell_text(None) == ""
    assert cell_text(12.0) == "12" and cell_text(3.25) == "3.25" and cell_text(7) == "7"
    assert cell_text(True) == "TRUE"
    assert cell_text(dt.date(2026, 11, 30)) == "2026-11-30"
    assert cell_text(" spaced ") == " spaced "
