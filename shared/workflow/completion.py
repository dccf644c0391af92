"""Completing a job: write its manifest beside the images, then announce `completed`.

A job completes in whichever service records the last count (result-notifier for the last result,
or ingest when the totals arrive after every result); both call `complete_job` here. The manifest
has one CSV row per item (row, text, file, width, height, status, error); it is stored through the
deployment's image store (a file in the job's folder, or an object beside the images in the
bucket) and the `completed` event names it (`JobEvent.manifest`). The rows are read back from
the job's results stream (`imagegen.results.<job_id>`) through a short-lived pull consumer.

Rows are in the source's order (by item index, which follows the source's rows) whatever order
the results arrived in, and after a retry each item appears once, with its latest attempt. Rows
are sorted on disk, in an SQLite file beside the manifest's temporary copy, so memory stays flat
whatever the job's size; a result published twice changes nothing.

The file is UTF-8 with a BOM, so spreadsheet programs (Excel in China in particular) show
Chinese text correctly; read it with `encoding="utf-8-sig"`. A cell that a spreadsheet would take
for a formula (it starts with = + - @, a tab or a carriage return) is written with a leading '.
"""

from __future__ import annotations

import asyncio
import csv
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

import msgspec
from nats.js.client import JetStreamContext

from shared.contract.messages import ItemResult, JobEvent, JobInfo, item_status, missing_reason
from shared.runtime.logging import get_logger
from shared.storage import MANIFEST_NAME, ImageStore
from shared.workflow.active import ActiveJobs
from shared.workflow.events import event_from_job, publish_event
from shared.workflow.results import Heartbeat, last_result_seq, stored_results

log = get_logger(__name__)

COLUMNS = ("row", "text", "file", "width", "height", "status", "error")


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    location: str
    rows: int
    ok: int
    incomplete: int
    failed: int


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
    with tempfile.TemporaryDirectory(prefix="imagegen-manifest-") as tmp:
        rows = _SortedRows(Path(tmp) / "rows.sqlite")
        try:
            if last_seq:
                async for result in stored_results(js, job_id, last_seq, heartbeat):
                    if result.attempt <= attempt:
                        rows.add(result.attempt, result.items, replaces=result.replaces)
            local = Path(tmp) / MANIFEST_NAME
            counts = await asyncio.to_thread(rows.write_csv, local)
        finally:
            rows.close()
        location = await store.put_manifest(job_id, local)
    return ManifestSummary(
        location, sum(counts.values()), counts["ok"], counts["incomplete"], counts["failed"]
    )


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

    def add(self, attempt: int, items: list[ItemResult], *, replaces: bool = False) -> None:
        """Add a result's items; `replaces` (result-notifier's stand-in for a result the ledger
        could not hold) wins over the earlier rows of its own attempt too."""
        newer = "excluded.attempt >= rows.attempt" if replaces else "excluded.attempt > rows.attempt"
        self.db.executemany(
            f"""INSERT INTO rows VALUES (?, ?, ?, ?) ON CONFLICT (idx) DO UPDATE
                  SET attempt = excluded.attempt, status = excluded.status, line = excluded.line
                WHERE {newer}""",
            [
                (item.index, attempt, item_status(item), msgspec.json.encode(manifest_row(item)))
                for item in items
            ],
        )

    def write_csv(self, path: Path) -> dict[str, int]:
        """Write the manifest in index order; returns the count of each status."""
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            for (line,) in self.db.execute("SELECT line FROM rows ORDER BY idx"):
                writer.writerow(msgspec.json.decode(line))
        counts = {"ok": 0, "incomplete": 0, "failed": 0}
        counts |= dict(self.db.execute("SELECT status, count(*) FROM rows GROUP BY status").fetchall())
        return counts

    def close(self) -> None:
        self.db.close()


async def complete_job(
    js: JetStreamContext,
    job: JobInfo,
    store: ImageStore,
    active: ActiveJobs,
    *,
    heartbeat: Heartbeat | None = None,
) -> JobEvent:
    """End a completed job (no task of it is rendered any more), write its manifest, then
    publish its `completed` event naming it."""
    await active.end(job.job_id)
    event = event_from_job(job, "completed")
    try:
        summary = await write_manifest(js, job.job_id, store, attempt=job.attempt, heartbeat=heartbeat)
        log.info("manifest.written", job_id=job.job_id, location=summary.location, rows=summary.rows)
        note = f"manifest written: {summary.rows} rows"
        if job.incomplete:
            note += f"; {job.incomplete} items lack characters no font covers (status incomplete)"
        event = msgspec.structs.replace(event, manifest=summary.location, message=event.message or note)
    except Exception as exc:
        # A manifest is a report: failing to write it must not hold back the job's completion.
        log.exception("manifest.failed", job_id=job.job_id)
        event = msgspec.structs.replace(
            event, message=event.message or f"the manifest could not be written: {exc}"
        )
    await publish_event(js, event)
    return event
