"""The CSV reader on its own: encodings, dialects, columns, row-level errors, real data."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.contract.errors import BadRequest, SourceError
from shared.sources.base import Row
from shared.sources.csv import SubmitCsv
from shared.sources.csv.reader import CsvLayout, iter_records, layout_of, open_text
from shared.sources.table import Columns

DATA = Path(__file__).resolve().parents[3] / "data"


def rows_of(text: io.TextIOWrapper, layout: CsvLayout, request: SubmitCsv) -> Iterator[Row]:
    columns = Columns.resolve(request, layout.header)
    for index, (number, cells, error) in enumerate(iter_records(text, layout)):
        yield columns.row(index, number, cells, error=error)


def read(
    raw: bytes,
    *,
    column: str | int = "name",
    has_header: bool = True,
    delimiter: str | None = None,
    encoding: str | None = None,
    **options: Any,
) -> tuple[CsvLayout, Columns, list[Row]]:
    """Read `raw` as the CSV source does: (its layout, the request's columns, its rows)."""
    request = SubmitCsv(column=column, csv="-", has_header=has_header, **options)
    text, _ = open_text(io.BytesIO(raw), encoding)
    layout = layout_of(text, has_header=has_header, delimiter=delimiter)
    return layout, Columns.resolve(request, layout.header), list(rows_of(text, layout, request))


def texts(rows: list[Row]) -> list[str]:
    return [row.text for row in rows]


# --- encodings ---------------------------------------------------------------------------------

CHINESE = [("苹果", "3.50"), ("香蕉 Banana", "2"), ("北京烤鸭", "88")]


def table(sep: str = ",", newline: str = "\n") -> str:
    lines = [sep.join(("name", "price"))] + [sep.join(pair) for pair in CHINESE]
    return newline.join(lines) + newline


def test_utf8_is_detected() -> None:
    layout, _, rows = read(table().encode("utf-8"))
    assert layout.encoding == "utf-8"
    assert texts(rows) == [name for name, _ in CHINESE]
    assert [row.values for row in rows] == [{"name": n, "price": p} for n, p in CHINESE]


def test_utf8_bom_is_stripped_from_the_header() -> None:
    layout, columns, rows = read(codecs.BOM_UTF8 + table().encode("utf-8"))
    assert layout.header == ["name", "price"]
    assert columns.text == 0
    assert texts(rows) == [name for name, _ in CHINESE]


def test_utf8_bom_without_header_does_not_leak_into_the_first_text() -> None:
    raw = codecs.BOM_UTF8 + "你好\n世界\n".encode()
    for encoding in (None, "utf-8"):
        _, _, rows = read(raw, column=0, has_header=False, encoding=encoding)
        assert texts(rows) == ["你好", "世界"], encoding


def test_gbk_as_excel_writes_it() -> None:
    # Excel in China saves "CSV (comma delimited)" in the ANSI code page 936 with CRLF.
    products = (Path(__file__).resolve().parents[4] / "examples" / "products.csv").read_text("utf-8")
    raw = products.replace("\n", "\r\n").replace("¥", "￥").encode("gbk")  # GBK has the full-width sign
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the fixture really is not UTF-8
    layout, _, rows = read(raw)
    assert layout.encoding.replace("_", "").lower() == "gb18030"
    assert texts(rows)[:3] == ["绿茶 Green Tea 500ml", "乌龙茶 Oolong Tea", "Espresso 意式浓缩咖啡"]


def test_a_few_gbk_characters_are_too_little_evidence() -> None:
    # Eight Chinese characters read cleanly as GB18030 and as EUC-KR alike: refused, not guessed.
    with pytest.raises(BadRequest) as err:
        read(table(newline="\r\n").encode("gbk"))
    assert err.value.field == "encoding" and "gb18030" in err.value.message
    _, _, rows = read(table(newline="\r\n").encode("gbk"), encoding="gbk")
    assert texts(rows) == [name for name, _ in CHINESE]


def test_gb18030_four_byte_characters() -> None:
    names = ["𠮷野家", "😀 smile", "€ price"]
    raw = ("name\n" + "\n".join(names) + "\n").encode("gb18030")
    _, _, rows = read(raw)
    assert texts(rows) == names


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(codec: str) -> None:
    # Excel's "Unicode Text" is UTF-16 LE with a BOM and tabs.
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    raw = bom + table(sep="\t", newline="\r\n").encode(codec)
    assert b"\x00" in raw
    layout, _, rows = read(raw)
    assert layout.delimiter == "\t"
    assert layout.header == ["name", "price"]
    assert texts(rows) == [name for name, _ in CHINESE]


def test_binary_file_is_refused_as_csv() -> None:
    png_head = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"
    with pytest.raises(BadRequest) as err:
        read(png_head)
    assert err.value.field == "csv"
    assert "binary" in err.value.message


def test_empty_file_is_refused() -> None:
    with pytest.raises(BadRequest) as err:
        read(b"")
    assert err.value.field == "csv"


def test_undecodable_file_is_refused_as_encoding() -> None:
    raw = b"name\n\x81\xff\xfe\x81\n"  # reads cleanly in none of the candidates
    with pytest.raises(BadRequest) as err:
        read(raw)
    assert err.value.field == "encoding"
    assert "give its encoding" in err.value.message


def test_explicit_encoding_wins_over_detection() -> None:
    raw = "name\nÃ©\n".encode("cp1252")  # detection reads it as cp1252 ...
    _, _, rows = read(raw, encoding="utf-8")  # ... but the caller knows it is UTF-8
    assert texts(rows) == ["é"]


@pytest.mark.parametrize("encoding", ["no-such-codec", "rot13", "base64"])
def test_unknown_or_non_text_encoding_is_a_bad_request(encoding: str) -> None:
    with pytest.raises(BadRequest) as err:
        read(b"name\nx\n", encoding=encoding)
    assert err.value.field == "encoding"
    assert encoding in err.value.message


def test_forced_encoding_that_does_not_fit_the_head_is_a_bad_request() -> None:
    with pytest.raises(BadRequest) as err:
        read(table().encode("gbk"), encoding="utf-8")
    assert err.value.field == "encoding"


def test_file_that_stops_decoding_midway_raises_source_error() -> None:
    good = "".join(f"item {i}\n" for i in range(20_000))  # well past the sniffed head
    raw = ("name\n" + good).encode() + b"bad \xff\xfe\xfd\n" + b"after\n"
    text, _ = open_text(io.BytesIO(raw), None)
    layout = layout_of(text, has_header=True, delimiter=None)
    assert layout.encoding == "utf-8"
    seen: list[Row] = []
    with pytest.raises(SourceError) as err:
        for row in rows_of(text, layout, SubmitCsv(column="name", csv="-")):
            seen.append(row)
    assert "utf-8" in err.value.message
    # Rows before the bad bytes came through intact (the decoder works in chunks, so a few
    # rows just before the break may not), and the message counts them.
    assert len(seen) > 15_000
    assert texts(seen) == [f"item {i}" for i in range(len(seen))]
    assert f"after {len(seen)} rows" in err.value.message


# --- dialect ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(sep: str) -> None:
    layout, _, rows = read(table(sep=sep).encode())
    assert layout.delimiter == sep
    assert [row.values for row in rows] == [{"name": n, "price": p} for n, p in CHINESE]


def test_semicolon_file_with_decimal_commas() -> None:
    raw = b"name;price\nApfel;1,99\nBirne;2,49\nKiwi;0,50\n"
    layout, _, rows = read(raw)
    assert layout.delimiter == ";"
    assert [row.values["price"] for row in rows if row.values] == ["1,99", "2,49", "0,50"]


def test_tab_file_with_commas_in_the_text() -> None:
    layout, _, rows = read(b"name\tprice\nA, B\t1\nC, D\t2\n")
    assert layout.delimiter == "\t"
    assert texts(rows) == ["A, B", "C, D"]


def test_given_delimiter_is_used() -> None:
    layout, _, rows = read(b"name|id\nx,y|1\n", delimiter="|")
    assert layout.delimiter == "|"
    assert texts(rows) == ["x,y"]


def test_single_column_file_defaults_to_comma() -> None:
    layout, _, rows = read("name\n你好\nworld\n".encode())
    assert layout.delimiter == ","
    assert texts(rows) == ["你好", "world"]


def test_quoted_fields_with_newlines_and_doubled_quotes() -> None:
    raw = b'id,name\n1,"He said ""hi"""\n2,"line one\nline two"\n3,"a, b; c"\n4,plain\n'
    _, _, rows = read(raw)
    assert texts(rows) == ['He said "hi"', "line one\nline two", "a, b; c", "plain"]
    assert all(row.error is None for row in rows)


def test_quoted_fields_with_crlf_newlines_keep_them() -> None:
    raw = b'name\r\n"first\r\nsecond"\r\nnext\r\n'
    _, _, rows = read(raw)
    assert texts(rows) == ["first\r\nsecond", "next"]


# --- header and column --------------------------------------------------------------------------


def test_column_by_index_with_header() -> None:
    _, columns, rows = read(table().encode(), column=1)
    assert (columns.text, columns.text_name) == (1, "price")
    assert texts(rows) == [price for _, price in CHINESE]


def test_no_header_column_by_index_keeps_the_first_line_as_data() -> None:
    layout, _, rows = read("苹果,1\n香蕉,2\n".encode(), column=0, has_header=False)
    assert layout.header is None
    assert texts(rows) == ["苹果", "香蕉"]
    assert [row.index for row in rows] == [0, 1]
    assert [row.row for row in rows] == [1, 2]  # no header: the first line is row 1
    assert all(row.values is None for row in rows)


def test_missing_column_names_the_header() -> None:
    with pytest.raises(BadRequest) as err:
        read(table().encode(), column="title")
    assert err.value.field == "column"
    assert "'title'" in err.value.message
    assert "'name'" in err.value.message and "'price'" in err.value.message


def test_column_index_past_the_end() -> None:
    with pytest.raises(BadRequest) as err:
        read(table().encode(), column=2)
    assert err.value.field == "column"


def test_column_name_without_header_is_refused() -> None:
    with pytest.raises(BadRequest) as err:
        read(table().encode(), column="name", has_header=False)
    assert err.value.field == "column"


def test_header_names_are_trimmed() -> None:
    layout, _, rows = read(b" name , price \nx,1\n")
    assert layout.header == ["name", "price"]
    assert texts(rows) == ["x"]


def test_header_only_file_has_no_rows() -> None:
    _, _, rows = read(b"name,price\n")
    assert rows == []


# --- row-level problems -------------------------------------------------------------------------


def test_ragged_and_empty_rows_become_item_errors() -> None:
    raw = b"name,price\nok,1\nshort\ntoo,many,fields\n,4\n   ,5\nlast,6\n"
    _, _, rows = read(raw)  # never raises
    assert [row.index for row in rows] == list(range(6))
    # Row numbers are the ones a spreadsheet shows: the header is row 1.
    assert [row.row for row in rows] == list(range(2, 8))
    errors = {row.row: row.error for row in rows if row.error}
    assert sorted(errors) == [3, 4, 5, 6]
    assert "1 fields" in (errors[3] or "") and "3 fields" in (errors[4] or "")
    assert "empty" in (errors[5] or "") and "empty" in (errors[6] or "")
    assert rows[0].text == "ok" and rows[0].error is None
    assert rows[5].text == "last" and rows[5].error is None


def test_row_numbers_count_records_not_lines() -> None:
    raw = b'name,price\n"two\nlines",1\nshort\n'
    _, _, rows = read(raw)
    assert rows[0].error is None and rows[0].row == 2
    assert rows[1].error is not None and rows[1].row == 3  # it starts on line 4


def test_blank_lines_are_skipped() -> None:
    raw = b"\n\nname,price\n\na,1\n\n\nb,2\n\n"
    _, _, rows = read(raw)
    assert texts(rows) == ["a", "b"]
    assert [row.index for row in rows] == [0, 1]
    assert [row.row for row in rows] == [5, 8]  # blank lines are rows of a spreadsheet too
    assert all(row.error is None for row in rows)


def test_rows_stream_without_reading_the_whole_file() -> None:
    raw = ("name\n" + "".join(f"row number {i}\n" for i in range(400_000))).encode()
    source = io.BytesIO(raw)
    text, _ = open_text(source, None)
    layout = layout_of(text, has_header=True, delimiter=None)
    first = list(itertools.islice(rows_of(text, layout, SubmitCsv(column="name", csv="-")), 10))
    assert texts(first) == [f"row number {i}" for i in range(10)]
    assert source.tell() < len(raw) // 10


# --- real data and per-row columns ------------------------------------------------------------


def test_real_data_areas_csv() -> None:
    path = DATA / "areas.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        expected = list(csv.DictReader(handle))
    assert len(expected) == 2978
    layout, _, rows = read(path.read_bytes())
    assert layout.delimiter == ","
    assert layout.header == list(expected[0].keys())
    assert len(rows) == len(expected)
    assert [row.error for row in rows if row.error] == []
    assert [row.index for row in rows] == list(range(len(expected)))
    assert texts(rows) == [record["name"] for record in expected]
    assert [dict(row.values or {}) for row in rows] == expected
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in row.text) for row in rows)


def test_filename_and_style_columns_travel_with_each_row() -> None:
    data = b"name,sku,colour,pt\nA,a-1,red,12\nB,,,\nC,c/3, blue ,\n"
    _, _, rows = read(data, filename_column="sku", color_column="colour", style_columns={"size": 3})
    assert [row.filename for row in rows] == ["a-1", "", "c/3"]
    # Empty cells mean "the job's style"; values are trimmed.
    assert [row.style for row in rows] == [{"color": "red", "size": "12"}, None, {"color": "blue"}]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"filename_column": "nope"}, "filename_column"),
        ({"color_column": "nope"}, "color_column"),
        ({"style_columns": {"size": 7}}, "style_columns.size"),
    ],
)
def test_a_missing_override_column_names_the_request_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as info:
        read(b"name,sku\nA,1\n", **options)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("head", "line"),
    [("code,name\r\n", "1,{}\r\n"), ("name\n", "{}\n")],  # the single column too: a mark is one cell
)
def test_an_overlong_line_fails_its_row_unread_and_the_rows_around_it_keep_their_numbers(
    head: str, line: str
) -> None:
    data = head + line.format("东华门街道") + line.format("汉" * 500) + line.format("景山街道")
    text, _ = open_text(io.BytesIO(data.encode("utf-8")), None)
    layout = layout_of(text, has_header=True, delimiter=None)
    records = list(iter_records(text, layout, max_line=100))
    width = len(layout.header or [])
    assert [(number, error is None) for number, _, error in records] == [(2, True), (3, False), (4, True)]
    assert records[0][1][-1] == "东华门街道" and records[2][1][-1] == "景山街道"
    _, cells, error = records[1]
    assert cells == [""] * width
    assert error is not None and "over the 100 a line may take" in error and "characters" in error
    assert "imagegen" not in " ".join(cells)  # the reader's own mark never reaches a row


@pytest.mark.parametrize("cell", ["\x00imagegen:overlong-line:abc", "\x00imagegen:overlong-line:123"])
def test_a_row_spelling_the_readers_overlong_mark_is_an_ordinary_row(cell: str) -> None:
    """The reader's mark for an overlong line cannot be forged by a file: such a cell reads as
    itself (its NUL fails the row later, at ingest), and the rows after it are read."""
    data = f"name\nok\n{cell}\nfine\n".encode()
    text, _ = open_text(io.BytesIO(data), "utf-8")
    layout = layout_of(text, has_header=True, delimiter=",")
    records = list(iter_records(text, layout, max_line=100))
    assert records == [(2, ["ok"], None), (3, [cell], None), (4, ["fine"], None)]
