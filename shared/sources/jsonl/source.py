"""The JSON Lines source: each line a JSON object, its keys the columns.

Lines are read as bytes and decoded one by one, so a line that is not UTF-8 or not a JSON object
fails as its own item (its line number named) and the job goes on. The submit-time check reads
only the head of the file: the first object must parse and hold the text key.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator, Iterable, Iterator
from typing import IO, Any

import msgspec

from shared.contract.errors import BadRequest
from shared.sources.base import Checked, Row, SourceContext, in_chunks
from shared.sources.files import Overlong, bounded_lines, head, line_limit, local_file
from shared.sources.jsonl.request import SubmitJsonl
from shared.sources.table import Columns, check_overrides
from shared.storage.naming import NameTemplate

HEAD_BYTES = 256 * 1024

_decoder = msgspec.json.Decoder()


def keys_of(request: SubmitJsonl) -> list[str]:
    """Every key the request reads, the text key first: the "header" of this table."""
    refs: list[tuple[str, str | int]] = [("column", request.column)]
    if request.filename_column is not None:
        refs.append(("filename_column", request.filename_column))
    refs.extend(check_overrides(request).values())
    keys: list[str] = []
    for field, ref in refs:
        if isinstance(ref, int):
            raise BadRequest("JSON Lines rows are objects: name the key, not a position", field=field)
        if ref not in keys:
            keys.append(ref)
    keys.extend(name for name in NameTemplate(request.name_template).columns if name not in keys)
    return keys


def value_text(value: Any) -> str | None:
    """A JSON value as cell text; None for an object or an array (not text)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return msgspec.json.encode(value).decode()
    return None


def parse_line(line: bytes, keys: list[str]) -> tuple[list[str], str | None]:
    """(cells for `keys`, error) of one line."""
    try:
        obj = _decoder.decode(line)
    except msgspec.DecodeError as exc:
        return [""] * len(keys), f"not valid JSON: {exc}"
    except UnicodeDecodeError:
        return [""] * len(keys), "not UTF-8"
    if not isinstance(obj, dict):
        return [""] * len(keys), f"a JSON {type(obj).__name__}, not an object"
    cells = []
    for key in keys:
        text = value_text(obj.get(key))
        if text is None:
            return [""] * len(keys), f"key {key!r} holds a JSON {type(obj[key]).__name__}, not text"
        cells.append(text)
    return cells, None


def iter_lines(lines: Iterable[bytes | Overlong]) -> Iterator[tuple[int, bytes | Overlong]]:
    """(line number, line) of every non-blank line; a UTF-8 BOM at the start is skipped."""
    for number, line in enumerate(lines, 1):
        if isinstance(line, Overlong):
            yield number, line
            continue
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        if line.strip():
            yield number, line


class JsonlSource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx

    async def close(self) -> None:
        return None

    async def check(self, request: SubmitJsonl) -> Checked:
        keys = keys_of(request)
        data = await head(self.ctx, request, "jsonl", HEAD_BYTES)
        if not data.strip():
            raise BadRequest("the file is empty", field="jsonl" if request.jsonl is not None else "object")
        complete = data.splitlines()[:-1] if len(data) >= HEAD_BYTES else data.splitlines()
        first = next(iter_lines(complete), None)
        if first is None:
            raise BadRequest(f"no complete line in the first {HEAD_BYTES // 1024} KiB", field="object")
        number, line = first
        if isinstance(line, Overlong):  # not in a head, whose lines are split from its bytes
            raise BadRequest(f"line {number} is too long", field="object")
        cells, error = parse_line(line, keys)
        if error is not None:
            raise BadRequest(f"line {number}: {error}", field="jsonl" if request.jsonl else "object")
        if not cells[0].strip():
            raise BadRequest(f"the first row (line {number}) has no text under {keys[0]!r}", field="column")
        return Checked()

    async def chunks(self, request: SubmitJsonl) -> AsyncGenerator[list[Row], None]:
        keys = keys_of(request)
        columns = Columns.resolve(request, keys)
        with_values = bool(NameTemplate(request.name_template).columns)
        limit = line_limit(self.ctx.settings.max_row_bytes)

        def records(
            lines: Iterable[tuple[int, bytes | Overlong]],
        ) -> Iterator[tuple[int, list[str], str | None]]:
            for number, line in lines:
                if isinstance(line, Overlong):
                    yield number, [""] * len(keys), line.reason(limit)
                else:
                    yield number, *parse_line(line, keys)

        async with local_file(self.ctx, request, "jsonl") as path:
            handle: IO[bytes]
            with path.open("rb") as handle:
                lines = iter_lines(bounded_lines(handle, limit))
                async for chunk in in_chunks(columns.rows(records(lines), with_values=with_values)):
                    yield chunk
