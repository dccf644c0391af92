"""The JSON Lines source's reading on its own: keys as columns, one bad line failing alone with its
line number, values as text."""

from __future__ import annotations

import codecs

import pytest

from shared.contract.errors import BadRequest
from shared.sources.jsonl import SubmitJsonl
from shared.sources.jsonl.source import iter_lines, keys_of, parse_line
from shared.sources.table import Columns


def read(data: bytes, **options: object) -> list[tuple[int, str, str | None]]:
    request = SubmitJsonl(column="name", jsonl="-", **options)  # type: ignore[arg-type]
    keys = keys_of(request)
    columns = Columns.resolve(request, keys)
    out = []
    for index, (number, line) in enumerate(iter_lines(data.splitlines(keepends=True))):
        cells, error = parse_line(line, keys)
        row = columns.row(index, number, cells, error=error)
        out.append((row.row, row.text, row.error))
    return out


def test_objects_by_key_with_line_numbers() -> None:
    data = (
        codecs.BOM_UTF8
        + '{"name": "苹果", "price": 3.5}\n'.encode()
        + b"\n"
        + '{"name": "Peking duck 北京烤鸭", "extra": [1, 2]}\n'.encode()
        + b'{"name": 42}\n'
        + b'{"name": true}\n'
    )
    assert read(data) == [
        (1, "苹果", None),
        (3, "Peking duck 北京烤鸭", None),
        (4, "42", None),
        (5, "true", None),
    ]


def test_a_bad_line_fails_alone() -> None:
    data = (
        b'{"name": "ok"}\n{"name": \n["a list"]\n{"name": {"nested": 1}}\n'
        b'\xff\xfe\n{"other": 1}\n{"name": "last"}\n'
    )
    rows = read(data)
    assert [(number, error is None) for number, _, error in rows] == [
        (1, True),
        (2, False),
        (3, False),
        (4, False),
        (5, False),
        (6, False),
        (7, True),
    ]
    errors = {number: error or "" for number, _, error in rows}
    assert "not valid JSON" in errors[2]
    assert "not an object" in errors[3]
    assert "holds a JSON dict" in errors[4]
    assert "not valid JSON" in errors[5] or "UTF-8" in errors[5]
    assert "empty text" in errors[6]  # a missing key is an empty cell


def test_other_keys_feed_file_names_and_styles() -> None:
    request = SubmitJsonl(column="name", jsonl="-", filename_column="sku", color_column="colour")
    keys = keys_of(request)
    assert keys == ["name", "sku", "colour"]
    cells, error = parse_line(b'{"name": "x", "sku": "A-1", "colour": "red"}', keys)
    row = Columns.resolve(request, keys).row(0, 1, cells, error=error)
    assert (row.filename, row.style) == ("A-1", {"color": "red"})


def test_positions_are_refused_keys_must_be_named() -> None:
    with pytest.raises(BadRequest) as err:
        keys_of(SubmitJsonl(column=0, jsonl="-"))
    assert err.value.field == "column"


async def test_a_line_over_the_line_limit_fails_alone_unread() -> None:
    from shared.runtime.settings import Settings
    from shared.sources.base import SourceContext
    from shared.sources.jsonl.source import JsonlSource

    source = JsonlSource(SourceContext(Settings(max_row_bytes=1024), js=None))  # type: ignore[arg-type]
    data = '{"name": "a"}\n{"name": "' + "长" * 20_000 + '"}\n{"name": "c"}\n'
    rows = [row async for chunk in source.chunks(SubmitJsonl(column="name", jsonl=data)) for row in chunk]
    assert [(row.row, row.text) for row in rows] == [(1, "a"), (2, ""), (3, "c")]
    assert rows[1].error is not None and "60013 bytes" in rows[1].error and "8192" in rows[1].error
