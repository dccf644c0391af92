"""Reading a CSV as a stream of records: encoding detection, dialect sniffing, the header.

Memory stays flat: the file is read line by line through `csv.reader`, never loaded whole.
"""

from __future__ import annotations

import codecs
import csv
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from shared.contract.errors import BadRequest, SourceError
from shared.sources.csv.encoding import Detected, detect_encoding
from shared.sources.files import Overlong, bounded_lines

SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"

csv.field_size_limit(16 * 1024 * 1024)


def sniff_delimiter(sample: str) -> str:
    """The sample's delimiter among `DELIMITERS`; "," when it shows none. A sample without any
    candidate is answered at once: csv.Sniffer would find none either, after counting 127
    characters in every line (~0.3 s for 64 KiB of a one-column Chinese file, per job, twice)."""
    if not any(delimiter in sample for delimiter in DELIMITERS):
        return ","
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


@dataclass(frozen=True, slots=True)
class CsvLayout:
    """How a file is written: its encoding, delimiter and header (None: no header row)."""

    encoding: str
    delimiter: str
    header: list[str] | None


def open_text(raw: IO[bytes], encoding: str | None) -> tuple[io.TextIOWrapper, Detected]:
    """The file as text in `encoding`, or in the one its head shows; and which it is, how sure."""
    head = raw.read(SNIFF_BYTES)
    if not head:
        raise BadRequest("the file is empty", field="csv")
    detected = Detected(encoding, 1.0, "given") if encoding else detect_encoding(head)
    enc = detected.encoding
    try:
        codec = codecs.lookup(enc)
    except LookupError as exc:
        raise BadRequest(f"unknown encoding {enc!r}", field="encoding") from exc
    # A UTF-8 BOM under an explicit "utf-8" would stay in the first cell: read it as utf-8-sig.
    if codec.name == "utf-8" and head.startswith(codecs.BOM_UTF8):
        enc = "utf-8-sig"
    raw.seek(0)
    try:
        text = io.TextIOWrapper(raw, encoding=enc, newline="", errors="strict")
    except LookupError as exc:
        # codecs.lookup accepts non-text codecs ("rot13", "base64"), which TextIOWrapper refuses.
        raise BadRequest(f"{enc!r} is not a text encoding", field="encoding") from exc
    return text, detected


def layout_of(text: io.TextIOWrapper, *, has_header: bool, delimiter: str | None) -> CsvLayout:
    """Read the head of an open file to find its dialect and header."""
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
        # The header is the first non-blank record, as for csv.DictReader; iter_records skips the
        # same blank lines.
        records = csv.reader(io.StringIO(sample, newline=""), delimiter=delim)
        try:
            header = next((record for record in records if record), None)
        except csv.Error as exc:
            raise BadRequest(f"the header row is not valid CSV: {exc}", field="csv") from exc
        if not header:
            raise BadRequest("the file has no header row", field="csv")
        header = [name.lstrip("\ufeff").strip() for name in header]
    return CsvLayout(str(text.encoding), delim, header)


def iter_records(
    text: io.TextIOWrapper, layout: CsvLayout, *, max_line: int | None = None
) -> Iterator[tuple[int, list[str], str | None]]:
    """Each data record as (its row number, cells, error).

    The row number is the one a spreadsheet shows for the file: records counted from 1, the
    header and blank lines included, a quoted field's line breaks not. A record with the wrong
    number of fields carries an error (it fails as its own item); blank lines are skipped.
    """
    # What `csv.reader` reads in place of an overlong line (never read whole): a record no file
    # can spell (a NUL and this call's own random token), read back below as that line's error.
    mark = f"\x00imagegen:overlong-line:{secrets.token_hex(8)}:"
    lines = text if max_line is None else bounded_lines(text, max_line, lambda size: f"{mark}{size}\n")
    reader = csv.reader(lines, delimiter=layout.delimiter)
    width = len(layout.header) if layout.header else None
    header_pending = layout.header is not None
    number = count = 0
    try:
        for record in reader:
            number += 1
            if not record:  # a blank line is not a row
                continue
            if header_pending:
                header_pending = False
                continue
            error = None
            if max_line is not None and len(record) == 1 and record[0].startswith(mark):
                size = int(record[0].removeprefix(mark))
                yield number, [""] * (width or 1), Overlong(size).reason(max_line, "characters")
                count += 1
                continue
            if width is not None and len(record) != width:
                error = f"{len(record)} fields, expected {width}"
            yield number, record, error
            count += 1
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"the file stops decoding as {layout.encoding} after {count} rows: {exc.reason}"
        ) from exc
    except csv.Error as exc:
        raise SourceError(f"malformed CSV after {count} rows (line {reader.line_num}): {exc}") from exc
