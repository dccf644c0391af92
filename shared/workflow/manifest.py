"""A job's manifest: one CSV row per item, in the source's order, from the job's results.

The manifest has one row per item (row, text, file, width, height, status, error), in item-index
order (which follows the source's rows) whatever order the results arrived in; after a retry each
item appears once, with its latest attempt, and a result published twice changes nothing.

Three ways to build it, all with memory flat in the job's size:
- `Spool`, the common case (one attempt, every item in one result): each result's rows are
  formatted as CSV as it arrives and appended to a scratch file; at the end the results' runs
  are copied out in index order. About one CSV write per result instead of a database row per
  item.
- `Spool` as results were recorded: result-notifier spools each result it counts
  (`shared/workflow/recorded.py`). When that spool holds exactly the rows the ledger counts
  (`Spool.holds`), the manifest is written from it and the results stream is not read at all.
- `_SortedRows`, for everything else (retries and resumes, which overlap earlier attempts; a
  result that replaces another; a result seen twice): each item's line is keyed by its index in
  an SQLite file, the latest attempt winning, and written out sorted.
`write_manifest` uses the recorded spool if it holds the job, else reads the results once into a
spool and, only if the spool cannot hold them, a second time into the sorted rows.

The file is UTF-8 with a BOM, so spreadsheet programs (Excel in China in particular) show
Chinese text correctly; read it with `encoding="utf-8-sig"`. Its lines are formatted in
`shared/workflow/manifest_lines.py`, which keeps cells from running as formulas.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import sqlite3
import tempfile
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO, Literal

import msgspec
from nats.js.client import JetStreamContext

from shared.contract.messages import BatchResult, JobInfo, item_status
from shared.storage import MANIFEST_NAME, ImageStore
from shared.workflow.manifest_lines import COLUMNS, STATUSES, csv_writer, format_lines, manifest_row
from shared.workflow.results import Heartbeat, last_result_seq, stored_results


class Spool:
    """The results of a job with one attempt, each item in one result: every result's rows as
    CSV text in a scratch file, copied out in index order at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
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
        data, counts = format_lines(items)
        self.runs.append((indexes[0], indexes[-1], self.file.tell(), len(data)))
        self.file.write(data)
        self.counts.update(counts)
        return True

    def holds(self, job: JobInfo) -> bool:
        """Whether these are exactly the rows of `job` (its first attempt) as its ledger row
        counts them: one row for each of its `total` items, and as many of each status."""
        if job.attempt != 1 or self.attempt not in (None, 1) or job.total is None:
            return False
        self.runs.sort()
        if self.runs and (self.runs[0][0] < 0 or self.runs[-1][1] >= job.total):
            return False
        if any(prev[1] >= run[0] for prev, run in pairwise(self.runs)):
            return False
        return (
            self.counts["ok"] + self.counts["incomplete"] == job.done
            and self.counts["incomplete"] == job.incomplete
            and self.counts["failed"] == job.failed
            and job.done + job.failed == job.total
        )

    def write_csv(self, path: Path) -> dict[str, int] | None:
        """Write the manifest in index order and return the count of each status; None (and
        nothing written) when two results hold overlapping indexes."""
        self.runs.sort()
        if any(prev[1] >= run[0] for prev, run in pairwise(self.runs)):
            return None
        with path.open("wb") as out:
            out.write(codecs.BOM_UTF8)
            header = io.StringIO()
            csv_writer(header).writerow(COLUMNS)
            out.write(header.getvalue().encode("utf-8"))
            for _, _, offset, length in self.runs:
                self.file.seek(offset)
                out.write(self.file.read(length))
        return {status: self.counts[status] for status in STATUSES}

    def close(self) -> None:
        """Close and delete the scratch file (a write it can no longer flush, on a full disk,
        is of no use to anyone: the file goes either way)."""
        with contextlib.suppress(OSError):
            self.file.close()
        self.path.unlink(missing_ok=True)


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
            writer = csv_writer(handle)
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
    built: Built


# How a manifest was built: from the rows spooled as its results were recorded, from a spool of
# its results read back, or from its results read back and sorted item by item.
Built = Literal["recorded", "spooled", "sorted"]


async def build_manifest(
    read: Callable[[], AsyncGenerator[BatchResult, None]], attempt: int, path: Path, scratch: Path
) -> tuple[dict[str, int], bool]:
    """Write to `path` the manifest of the results `read()` yields (those of attempts up to
    `attempt`), using files in `scratch`; returns the count of each status, and whether the spool
    held the results. `read` is called a second time when the spool cannot hold them."""
    spool = Spool(scratch / "runs.csv")
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
    job: JobInfo,
    store: ImageStore,
    *,
    heartbeat: Heartbeat | None = None,
    recorded: Spool | None = None,
) -> ManifestSummary:
    """Write the manifest of `job` from its results up to its attempt into `store`; returns
    counts. `recorded` is the spool of the results counted by this process, used when it holds
    every row of the job; otherwise the results are read back from their stream.

    It is written to a local temporary file first and then handed to the store, which replaces
    any earlier manifest whole.
    """
    with tempfile.TemporaryDirectory(prefix="imagegen-manifest-") as tmp:
        local = Path(tmp) / MANIFEST_NAME
        built: Built
        if recorded is not None and recorded.holds(job):
            counts = await asyncio.to_thread(recorded.write_csv, local)
            assert counts is not None  # `holds` checked that no runs overlap
            built = "recorded"
        else:
            last_seq = await last_result_seq(js, job.job_id)

            async def read() -> AsyncGenerator[BatchResult, None]:
                if last_seq:
                    async for result in stored_results(js, job.job_id, last_seq, heartbeat):
                        yield result

            counts, spooled = await build_manifest(read, job.attempt, local, Path(tmp))
            built = "spooled" if spooled else "sorted"
        location = await store.put_manifest(job.job_id, local)
    return ManifestSummary(
        location, sum(counts.values()), counts["ok"], counts["incomplete"], counts["failed"], built
    )
