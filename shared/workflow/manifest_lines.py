"""A manifest's lines: the columns, the cells of one item, and a result's items as CSV text.

Every cell a spreadsheet would take for a formula (it starts with = + - @, a tab or a carriage
return) is written with a leading ', as OWASP recommends against CSV injection.

`format_lines` writes a result's items through the csv module, except for the common result:
every item rendered whole and no cell that the csv module would quote or `safe_cell` would
change. Those lines are joined directly, which takes about a third of the time (the notifier
formats every item of every job). Tests hold both ways to the same bytes.
"""

from __future__ import annotations

import _csv
import csv
import io
from collections import Counter
from collections.abc import Sequence

from shared.contract.messages import ItemResult, ItemStatus, item_status, missing_reason

COLUMNS = ("row", "text", "file", "width", "height", "status", "error")
STATUSES: tuple[ItemStatus, ...] = ("ok", "incomplete", "failed")

# A cell a spreadsheet would run as a formula (CSV injection): OWASP's list of first characters.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What makes a cell other than plain in a run of cells joined by _SEPARATOR: a character the csv
# module quotes for (the delimiter, the quote, a line break), or a formula's first character at a
# cell's start. A cell holding _SEPARATOR itself can only add a false alarm, never hide a cell.
_SEPARATOR = "\x1f"
_NOT_PLAIN = (",", '"', "\r", "\n", *(_SEPARATOR + start for start in _FORMULA_START))


def safe_cell(text: str) -> str:
    """`text` as a spreadsheet will show it but never run it: a cell that would start a formula
    is prefixed with a single quote, as OWASP recommends (a program reading the manifest strips a
    leading ' from such cells)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def manifest_row(item: ItemResult) -> tuple[object, ...]:
    """One manifest line: the file is named relative to the manifest (it sits beside it); an
    incomplete item says which characters its image lacks. Text cells are safe to open."""
    status = item_status(item)
    error = missing_reason(item) if status == "incomplete" else (item.error or "")
    return (
        item.row,
        safe_cell(item.text or ""),
        safe_cell(item.file or ""),
        "" if item.width is None else item.width,
        "" if item.height is None else item.height,
        status,
        safe_cell(error),
    )


def csv_writer(handle: io.StringIO | io.TextIOWrapper) -> _csv.Writer:
    # CRLF, as RFC 4180 has it: the csv module quotes a cell holding a character of the line
    # terminator, and with "\n" alone a carriage return in a text went out unquoted and split
    # its line for every reader.
    return csv.writer(handle, lineterminator="\r\n")


def _plain(cells: list[str]) -> bool:
    """True when no cell needs quoting or a leading ' (one scan of all cells for each mark)."""
    joined = _SEPARATOR + _SEPARATOR.join(cells)
    return not any(mark in joined for mark in _NOT_PLAIN)


def _plain_lines(items: Sequence[ItemResult]) -> str | None:
    """The lines of `items` when all rendered whole with plain cells, else None."""
    texts: list[str] = []
    files: list[str] = []
    for item in items:
        if not item.ok or item.missing_glyphs or item.text is None or item.file is None:
            return None
        if item.width is None or item.height is None:
            return None
        texts.append(item.text)
        files.append(item.file)
    if not (_plain(texts) and _plain(files)):
        return None
    return "".join([f"{i.row},{i.text},{i.file},{i.width},{i.height},ok,\r\n" for i in items])


def format_lines(items: Sequence[ItemResult]) -> tuple[bytes, Counter[str]]:
    """The manifest lines of `items` (UTF-8 CSV, in their order) and the count of each status."""
    plain = _plain_lines(items)
    if plain is not None:
        return plain.encode("utf-8"), Counter({"ok": len(items)})
    text = io.StringIO()
    rows = [manifest_row(item) for item in items]
    csv_writer(text).writerows(rows)
    return text.getvalue().encode("utf-8"), Counter(str(row[5]) for row in rows)
