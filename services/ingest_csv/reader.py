"""Reading a CSV as a stream of rows: encoding detection, dialect sniffing, column lookup.

Memory stays flat: the file is read line by line through `csv.reader`, never loaded whole
(inline text is already in memory, and capped by the request size limit).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from shared.contract.errors import BadRequest, SourceError
from shared.ingest import Row

SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))

csv.field_size_limit(16 * 1024 * 1024)


def detect_encoding(head: bytes) -> str:
    """BOM first; then UTF-8 if the head decodes as it; else GB18030 (what Excel in China writes)."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    if b"\x00" in head:
        raise BadRequest("the file looks binary (it contains NUL bytes)", field="csv")
    try:
        # The head may end inside a multi-byte character: an incremental decoder allows that.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("gb18030")().decode(head, final=False)
        return "gb18030"
    except UnicodeDecodeError as exc:
        raise BadRequest("the file is neither UTF-8, UTF-16 nor GB18030", field="encoding") from exc


def sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


@dataclass(frozen=True, slots=True)
class CsvLayout:
    encoding: str
    delimiter: str
    header: list[str] | None
    column_index: int
    column_name: str
    # Per-row overrides, resolved to positions: the file-name column and {style field: column}.
    filename_index: int | None = None
    style_indices: tuple[tuple[str, int], ...] = ()


def resolve_column(column: str | int, header: list[str] | None, *, field: str = "column") -> tuple[int, str]:
    """The 0-based position and display name of `column`; `field` names it in errors."""
    if isinstance(column, int):
        if header is not None and column >= len(header):
            raise BadRequest(f"index {column} is past the last column ({len(header) - 1})", field=field)
        return column, header[column] if header else str(column)
    if header is None:
        raise BadRequest("a column name needs a header row (or give the column index)", field=field)
    if column not in header:
        shown = ", ".join(repr(name) for name in header[:20])
        raise BadRequest(f"no column {column!r} in the header ({shown})", field=field)
    return header.index(column), column


def open_text(raw: IO[bytes], encoding: str | None) -> io.TextIOWrapper:
    head = raw.read(SNIFF_BYTES)
    if not head:
        raise BadRequest("the file is empty", field="csv")
    enc = encoding or detect_encoding(head)
    try:
        codec = codecs.lookup(enc)
    except LookupError as exc:
        raise BadRequest(f"unknown encoding {enc!r}", field="encoding") from exc
    # Fix: a UTF-8 BOM under an explicit "utf-8" used to stay in the text (the first cell of a
    # header-less file began with U+FEFF); read such a file as utf-8-sig, as detection does.
    if codec.name == "utf-8" and head.startswith(codecs.BOM_UTF8):
        enc = "utf-8-sig"
    raw.seek(0)
    try:
        return io.TextIOWrapper(raw, encoding=enc, newline="", errors="strict")
    except LookupError as exc:
        # Fix: codecs.lookup accepts non-text codecs ("rot13", "base64"), which TextIOWrapper
        # then refuses with a LookupError; that is a bad request too, not a crash.
        raise BadRequest(f"{enc!r} is not a text encoding", field="encoding") from exc


def layout_of(
    text: io.TextIOWrapper,
    *,
    column: str | int,
    has_header: bool,
    delimiter: str | None,
    filename_column: str | int | None = None,
    style_columns: Mapping[str, tuple[str, str | int]] | None = None,
) -> CsvLayout:
    """Read the head of an open file to find dialect, header and the text column.

    `style_columns` maps a style field to (the request field that named it, the column), so a
    missing column is reported against the field the user wrote (`color_column`,
    `style_columns.size`).
    """
    try:
        sample = text.read(SNIFF_BYTES)
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"the file does not decode as {text.encoding}: {exc.reason}", field="encoding"
        ) from exc
    text.seek(0)
    delim = delimiter or sniff_delimiter(sample)
    header = None
    if has_header:
        # Fix: skip blank lines before the header (as csv.DictReader does); a leading blank line
        # used to be reported as "the file has no header row". iter_rows skips the same lines.
        records = csv.reader(io.StringIO(sample, newline=""), delimiter=delim)
        header = next((record for record in records if record), None)
        if not header:
            raise BadRequest("the file has no header row", field="csv")
        header = [name.lstrip("\ufeff").strip() for name in header]
    index, name = resolve_column(column, header)
    filename_index = None
    if filename_column is not None:
        filename_index, _ = resolve_column(filename_column, header, field="filename_column")
    style_indices = tuple(
        (style_field, resolve_column(ref, header, field=request_field)[0])
        for style_field, (request_field, ref) in (style_columns or {}).items()
    )
    return CsvLayout(str(text.encoding), delim, header, index, name, filename_index, style_indices)


def _overrides(record: list[str], layout: CsvLayout) -> dict[str, str] | None:
    """The row's non-empty style cells: an empty cell means "use the job's style"."""
    found = {
        style_field: record[i].strip()
        for style_field, i in layout.style_indices
        if i < len(record) and record[i].strip()
    }
    return found or None


def iter_rows(text: io.TextIOWrapper, layout: CsvLayout, *, with_values: bool = True) -> Iterator[Row]:
    """Each data row as a `Row`; a ragged or empty row becomes an item error, not a job error.

    `with_values=False` skips the per-row {column: value} mapping when no name template needs
    it (it is most of ingest's per-row cost on wide files)."""
    reader = csv.reader(text, delimiter=layout.delimiter)
    width = len(layout.header) if layout.header else None
    index = 0
    try:
        if layout.header is not None:
            # Fix: the header is the first non-blank record (see layout_of), not the first line.
            next((record for record in reader if record), None)
        for record in reader:
            if not record:  # a blank line is not a row
                continue
            line = reader.line_num
            values = dict(zip(layout.header, record, strict=False)) if with_values and layout.header else None
            filename = None
            if layout.filename_index is not None and layout.filename_index < len(record):
                filename = record[layout.filename_index]
            style = _overrides(record, layout) if layout.style_indices else None
            if width is not None and len(record) != width:
                error = f"row {index + 1} (line {line}): {len(record)} fields, expected {width}"
                text_value = record[layout.column_index] if layout.column_index < len(record) else ""
                yield Row(index, text_value, values, error, filename, style)
            elif not record[layout.column_index].strip() if layout.column_index < len(record) else True:
                yield Row(
                    index,
                    "",
                    values,
                    f"row {index + 1} (line {line}): empty text in column {layout.column_name!r}",
                    filename,
                    style,
                )
            else:
                yield Row(index, record[layout.column_index], values, None, filename, style)
            index += 1
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"the file stops decoding as {layout.encoding} after row {index}: {exc.reason}"
        ) from exc
    except csv.Error as exc:
        raise SourceError(f"malformed CSV after row {index}: {exc}") from exc


def open_source(csv_text: str | None, path: Path | None) -> IO[bytes]:
    if csv_text is not None:
        return io.BytesIO(csv_text.encode("utf-8"))
    assert path is not None
    try:
        return path.open("rb")
    except OSError as exc:
        raise BadRequest(f"cannot open {path.name!r}: {exc.strerror}", field="path") from exc
