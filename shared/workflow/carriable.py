"""What a source row may carry into messages and the ledger, checked at ingest, row by row.

A row's text travels in a render task, comes back in its result and, if it fails, is stored in
Postgres for a retry. Postgres text cannot hold NUL (U+0000) and no encoder can write a lone
surrogate (a JSON Lines `"\\ud800"` decodes to one), so such a row used to be accepted and then
break whoever touched it next. Here it fails as its own item with the reason, naming the cell,
and its text is left out (it cannot be stored); the job goes on. A row larger than
`IMAGEGEN_MAX_ROW_BYTES` fails the same way, so one huge cell never becomes a huge message.
"""

from __future__ import annotations

import re

from msgspec.structs import replace

from shared.runtime.bus.limits import CHUNK_TEXT_CHARS
from shared.sources.base import Row, oversized_row

# NUL and the UTF-16 surrogates, which only appear in a str as lone (broken) halves of a pair.
_UNCARRIABLE = re.compile("[\x00\ud800-\udfff]")


def _problem(value: str, what: str) -> str | None:
    found = _UNCARRIABLE.search(value)
    if found is None:
        return None
    char = found.group()
    kind = "a NUL character" if char == "\x00" else "a lone surrogate"
    return (
        f"{what} holds {kind} (U+{ord(char):04X}) at position {found.start() + 1}, "
        "which Postgres and NATS messages cannot carry; remove it from the source"
    )


def _clean(text: str) -> bool:
    """No NUL and no surrogate in `text`: what `_UNCARRIABLE` finds, several times faster than
    its search on CJK text and far faster on ASCII (ingest checks every row's text)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")  # the one thing strict UTF-8 refuses in a str is a surrogate
    except UnicodeEncodeError:
        return False
    return True


def _size(row: Row) -> int:
    size = len(row.text.encode("utf-8", "surrogatepass"))
    if row.filename:
        size += len(row.filename.encode("utf-8", "surrogatepass"))
    for key, value in (row.style or {}).items():
        size += len(key.encode("utf-8", "surrogatepass")) + len(value.encode("utf-8", "surrogatepass"))
    return size


def row_problem(row: Row, max_bytes: int) -> str | None:
    """Why `row` cannot travel as it is, or None."""
    # UTF-8 takes at most 4 bytes a character (3 for a lone surrogate): a row of few enough
    # characters is within the limit without being encoded (most rows; every row is checked).
    chars = len(row.text) + (len(row.filename) if row.filename else 0)
    if row.style:
        chars += sum(len(key) + len(value) for key, value in row.style.items())
    if chars * 4 > max_bytes and (size := _size(row)) > max_bytes:
        return oversized_row(size, max_bytes)
    problem = _problem(row.text, "the text")
    if problem is None and row.filename:
        problem = _problem(row.filename, "the file-name cell")
    for key, value in (row.style or {}).items():
        problem = problem or _problem(value, f"the {key} cell")
    return problem


def carriable(row: Row, max_bytes: int) -> Row:
    """`row` as it may travel: unchanged, or failed with the reason and without its cells."""
    if (
        row.filename is None
        and not row.style
        and row.error is None
        and len(row.text) * 4 <= max_bytes
        and _clean(row.text)
    ):
        return row  # most rows, once per row: the checks of `row_problem` for a bare text cell
    problem = row_problem(row, max_bytes)
    if problem is None:
        if row.error is not None and _UNCARRIABLE.search(row.error):
            return replace(row, error=_UNCARRIABLE.sub("\ufffd", row.error))
        return row
    return replace(row, text="", error=problem, style=None, filename=None, values=None)


def carriable_rows(rows: list[Row], max_bytes: int) -> list[Row]:
    """`carriable` of every row of a chunk, checked for the chunk at once when it is what most
    chunks are (bare text cells, none long, none holding NUL or a surrogate, no error): then the
    rows go as they are (ingest checks every row)."""
    texts = [row.text for row in rows if row.filename is None and not row.style and row.error is None]
    lengths = list(map(len, texts))
    if (
        len(texts) == len(rows)
        and max(lengths, default=0) * 4 <= max_bytes
        and sum(lengths) <= CHUNK_TEXT_CHARS
        # The separator is neither NUL nor a surrogate: what is found is in one of the texts.
        and _clean("\n".join(texts))
    ):
        return rows
    return [carriable(row, max_bytes) for row in rows]
