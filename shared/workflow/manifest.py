"""A job's manifest: one CSV row per item, in the source's order, from the job's results.

The manifest has one row per item (row, text, file, width, height, status, error), in item-index
order (which follows the source's rows) whatever order the results arrived in; after a retry each
item appears once, with its latest attempt, and a result published twice changes nothing.

Two ways to build it, both with memory flat in the job's size:
- `_Spool`, the common case (one attempt, every item in one result): each result's rows are
  formatted as CSV as it arrives and appended to a scratch file; at the end the results' runs
  are copied out in index order. About one CSV write per result instead of a database row per
  item.
- `_SortedRows`, for everything else (retries and resumes, which overlap earlier attempts; a
  result that replaces another; a result seen twice): each item's line is keyed by its index in
  an SQLite file, the latest attempt winning, and written out sorted.
`write_manifest` reads the results once into the spool and, only if the spool cannot hold them,
a second time into the sorted rows.

The file is UTF-8 with a BOM, so spreadsheet programs (Excel in China in particular) show
Chinese text correctly; read it with `encoding="utf-8-sig"`. A cell that a spreadsheet would take
for a formula (it starts with = + - @, a tab or a carriage return) is written with a leading '.
"""

from __future__ import annotations

import _csv
import asyncio
import codecs
import contextlib
import csv
import io
import sqlite3
import tempfile
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO

import msgspec
from nats.js.client import JetStreamContext

from shared.contract.messages import BatchResult, ItemResult, ItemStatus, item_status, missing_reason
from shared.storage import MANIFEST_NAME, ImageStore
from shared.workflow.results import Heartbeat, last_result_seq, stored_results

COLUMNS = ("row", "text", "file", "width", "height", "status", "error")
STATUSES: tuple[ItemStatus, ...] = ("ok", "incomplete", "failed")


# A cell a spreadsheet would run as a formula (CSV injection): OWASP's list of first characters.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


def _csv_writer(handle: io.StringIO | io.TextIOWrapper) -> _csv.Writer:
    return csv.writer(handle, lineterminator="\n")


class _Spool:
    """The results of a job with one attempt, each item in one result: every result's rows as
    CSV text in a scratch file, copied out in index order at the end."""

    def __init__(self, path: Path) -> None:
        self.file: BinaryIO = path.open("w+b")
        self.runs: list[tuple[int, int, int, int]] = []  # (first index, last index, offset, length)
        self.counts: Counter[str] = Counter()
        self.attempt: int | None = None
        self.batches: set[int] = set()

    def add(self, result: BatchResult) -> bool:
        """Add `result`; False when only `_SortedRows` can hold this job's results (nothing of
        this result was added then). A replacement carries the batch of the result it replaces,
        so it is a batch seen twice."""
        if self.attempt not in (None, result.attempt) or result.batch in self.batches:
            return False
        items = result.items
        if not items:
            return True
        indexes = [item.index for item in items]
        if any(a >= b for a, b in pairwise(indexes)):
            items = sorted(items, key=lambda item: item.index)
            indexes.sort()
            if any(a == b for a, b in pairwise(indexes)):
                return False  # an index twice in one result: the first must win, item by item
        self.attempt = result.attempt
        self.batches.add(result.batch)
        text = io.StringIO()
        rows = [manifest_row(item) for item in items]
        _csv_writer(text).writerows(rows)
        data = text.getvalue().encode("utf-8")
        self.runs.append((indexes[0], indexes[-1], self.file.tell(), len(data)))
        self.file.write(data)
        self.counts.update(str(row[5]) for row in rows)
        return True

    def write_csv(self, path: Path) -> dict[str, int] | None:
        """Write the manifest in index order and return the count of each status; None (and
        nothing written) when two results hold overlapping indexes."""
        self.runs.sort()
        if any(prev[1] >= run[0] for prev, run in pairwise(self.runs)):
            return None
        with path.open("wb") as out:
            out.write(codecs.BOM_UTF8)
            header = io.StringIO()
            _csv_writer(header).writerow(COLUMNS)
            out.write(header.getvalue().encode("utf-8"))
            for _, _, offset, length in self.runs:
                self.file.seek(offset)
                out.write(self.file.read(length))
        return {status: self.counts[status] for status in STATUSES}

    def close(self) -> None:
        self.file.close()


class _SortedRows:
    """Manifest lines keyed by item index in an SQLite file: sorted on disk, and an item's latest
    attempt wins (an earlier or repeated result for the same index changes nothing)."""

    def __init__(self, path: Path) -> None:
        # Used by one task at a time, the final write in a worker thread.
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = OFF")  # a scratch file: nothing to recover
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute(
            "CREATE TABLE rows (idx INTEGER PRIMARY KEY, attempt INTEGER NOT NULL,"
            " status TEXT NOT NULL, line BLOB NOT NULL)"
        )

    def add(self, result: BatchResult) -> None:
        """Add a result's items; one that `replaces` (result-notifier's stand-in for a result the
        ledger could not hold) wins over the earlier rows of its own attempt too."""
        newer = "excluded.attempt >= rows.attempt" if result.replaces else "excluded.attempt > rows.attempt"
        self.db.executemany(
            f"""INSERT INTO rows VALUES (?, ?, ?, ?) ON CONFLICT (idx) DO UPDATE
                  SET attempt = excluded.attempt, status = excluded.status, line = excluded.line
                WHERE {newer}""",
            [
                (item.index, result.attempt, item_status(item), msgspec.json.encode(manifest_row(item)))
                for item in result.items
            ],
        )

    def write_csv(self, path: Path) -> dict[str, int]:
        """Write the manifest in index order; returns the count of each status."""
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = _csv_writer(handle)
            writer.writerow(COLUMNS)
            for (line,) in self.db.execute("SELECT line FROM rows ORDER BY idx"):
                writer.writerow(msgspec.json.decode(line))
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        counts |= dict(self.db.execute("SELECT status, count(*) FROM rows GROUP BY status").fetchall())
        return counts

    def close(self) -> None:
        self.db.close()


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    location: str
    rows: int
    ok: int
    incomplete: int
    failed: int
    spooled: bool  # built by `_Spool` (True) or by `_SortedRows`


async def build_manifest(
    read: Callable[[], AsyncGenerator[BatchResult, None]], attempt: int, path: Path, scratch: Path
) -> tuple[dict[str, int], bool]:
    """Write to `path` the manifest of the results `read()` yields (those of attempts up to
    `attempt`), using files in `scratch`; returns the count of each status, and whether the spool
    held the results. `read` is called a second time when the spool cannot hold them."""
    spool = _Spool(scratch / "runs.csv")
    try:
        counts: dict[str, int] | None = dict.fromkeys(STATUSES, 0)
        # Closed at once on leaving early: its pull consumer goes now, not when collected.
        async with contextlib.aclosing(read()) as results:
            async for result in results:
                if result.attempt <= attempt and not spool.add(result):
                    counts = None
                    break
        if counts is not None:
            counts = await asyncio.to_thread(spool.write_csv, path)
    finally:
        spool.close()
    if counts is not None:
        return counts, True
    rows = _SortedRows(scratch / "rows.sqlite")
    try:
        async for result in read():
            if result.attempt <= attempt:
                rows.add(result)
        return await asyncio.to_thread(rows.write_csv, path), False
    finally:
        rows.close()


async def write_manifest(
    js: JetStreamContext,
    job_id: str,
    store: ImageStore,
    *,
    attempt: int,
    heartbeat: Heartbeat | None = None,
) -> ManifestSummary:
    """Write the manifest of `job_id` from its results up to `attempt` into `store`; returns counts.

    It is written to a local temporary file first and then handed to the store, which replaces
    any earlier manifest whole.
    """
    last_seq = await last_result_seq(js, job_id)

    async def read() -> AsyncGenerator[BatchResult, None]:
        if last_seq:
            async for result in stored_results(js, job_id, last_seq, heartbeat):
                yield result

    with tempfile.TemporaryDirectory(prefix="imagegen-manifest-") as tmp:
        local = Path(tmp) / MANIFEST_NAME
        counts, spooled = await build_manifest(read, attempt, local, Path(tmp))
        location = await store.put_manifest(job_id, local)
    return ManifestSummary(
        location, sum(counts.values()), counts["ok"], counts["incomplete"], counts["failed"], spooled
    )
