"""The job manifest: one CSV row per item (row, text, file, width, height, status, error).

When a job completes, result-notifier writes `manifest.csv` into the job's output folder, beside
the images, and the `completed` event names it (`JobEvent.manifest`). The rows are read back from
the job's results stream (`imagegen.results.<job_id>`) through a short-lived pull consumer and
written as they arrive, so memory stays flat whatever the job's size: only the (attempt, batch)
keys already written are remembered, to skip a result that was published twice.

Rows are in the order results arrived (batches interleave across renderer replicas); sort by
`row` for source order. `row` is the 1-based source row, as in error messages. After a retry,
an item's latest attempt wins: the first pass over the stream collects the indices re-rendered
by later attempts (at most the earlier failures), the second writes each item once.

The file is UTF-8 with a BOM, so spreadsheet programs (Excel in China in particular) show
Chinese text correctly; read it with `encoding="utf-8-sig"`.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiofiles
import aiofiles.os
import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from shared.contract.messages import BatchResult, ItemResult, JobEvent, JobInfo
from shared.contract.subjects import STREAM_RESULTS, results_subject
from shared.events import event_from_job, publish_event
from shared.logging import get_logger
from shared.storage import DirectoryStore

log = get_logger(__name__)

MANIFEST_NAME = "manifest.csv"
COLUMNS = ("row", "text", "file", "width", "height", "status", "error")
FETCH = 256  # result messages per pull: ~8,000 items, a few hundred kB at most in hand

Heartbeat = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    path: Path
    rows: int
    ok: int
    failed: int


def manifest_row(item: ItemResult) -> tuple[object, ...]:
    """One manifest line: the file is named relative to the manifest (it sits beside it)."""
    file = item.file.replace("\\", "/").rsplit("/", 1)[-1] if item.file else ""
    return (
        item.index + 1,
        item.text or "",
        file,
        "" if item.width is None else item.width,
        "" if item.height is None else item.height,
        "ok" if item.ok else "failed",
        item.error or "",
    )


async def _results(
    js: JetStreamContext, job_id: str, last_seq: int, heartbeat: Heartbeat | None
) -> AsyncIterator[BatchResult]:
    """The job's results from the first up to stream sequence `last_seq`, pulled in bounded
    batches (a push consumer would buffer the whole job if the writer fell behind)."""
    name = f"manifest-{job_id}-{secrets.token_hex(4)}"
    await js.add_consumer(
        STREAM_RESULTS,
        config=ConsumerConfig(
            name=name,
            filter_subject=results_subject(job_id),
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,  # gone by itself if this process dies mid-way
            mem_storage=True,
        ),
    )
    sub = await js.pull_subscribe_bind(stream=STREAM_RESULTS, name=name)
    try:
        seq = 0
        while seq < last_seq:
            try:
                msgs = await sub.fetch(FETCH, timeout=5)
            except (TimeoutError, nats.errors.TimeoutError):
                # Nothing came (see FIELD-NOTES on fetch stalls): the messages up to last_seq
                # are stored, so simply ask again; the heartbeat keeps the caller's ack alive.
                msgs = []
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > last_seq:
                    break
                try:
                    yield msgspec.json.decode(msg.data, type=BatchResult)
                except msgspec.MsgspecError:
                    continue  # malformed results are terminated by the notifier; skip them here
            if heartbeat:
                await heartbeat()
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        with contextlib.suppress(Exception):
            await js.delete_consumer(STREAM_RESULTS, name)


async def _last_seq(js: JetStreamContext, job_id: str) -> int:
    try:
        return int((await js.get_last_msg(STREAM_RESULTS, results_subject(job_id))).seq or 0)
    except NotFoundError:
        return 0


async def write_manifest(
    js: JetStreamContext,
    job_id: str,
    directory: Path,
    *,
    attempt: int,
    heartbeat: Heartbeat | None = None,
) -> ManifestSummary:
    """Write `directory/manifest.csv` from the job's results up to `attempt`; returns counts."""
    last_seq = await _last_seq(js, job_id)
    latest: dict[int, int] = {}  # index -> latest attempt, only for items re-rendered by a retry
    if attempt > 1 and last_seq:
        async for result in _results(js, job_id, last_seq, heartbeat):
            if 1 < result.attempt <= attempt:
                for item in result.items:
                    latest[item.index] = max(latest.get(item.index, 1), result.attempt)

    await aiofiles.os.makedirs(directory, exist_ok=True)
    path = directory / MANIFEST_NAME
    # Written under a temporary name and renamed: a reader never sees half a manifest, and a
    # second writer (a redelivered completion) replaces it whole.
    tmp = directory / f".{MANIFEST_NAME}.{secrets.token_hex(4)}.tmp"
    seen: set[tuple[int, int]] = set()
    rows = ok = failed = 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    try:
        async with aiofiles.open(tmp, "w", encoding="utf-8-sig", newline="") as handle:
            writer.writerow(COLUMNS)
            if last_seq:
                async for result in _results(js, job_id, last_seq, heartbeat):
                    if result.attempt > attempt or (result.attempt, result.batch) in seen:
                        continue
                    seen.add((result.attempt, result.batch))
                    for item in result.items:
                        if latest.get(item.index, 1) != result.attempt:
                            continue  # a later attempt re-rendered this item
                        writer.writerow(manifest_row(item))
                        rows += 1
                        ok += item.ok
                        failed += not item.ok
                    if buffer.tell() > 64 * 1024:
                        await handle.write(buffer.getvalue())
                        buffer.seek(0)
                        buffer.truncate()
            await handle.write(buffer.getvalue())
        await aiofiles.os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            await aiofiles.os.remove(tmp)
        raise
    return ManifestSummary(path, rows, ok, failed)


_finishing: set[asyncio.Task[None]] = set()


def finish_job(js: JetStreamContext, job: JobInfo, msg: Msg, output_dir: Path) -> None:
    """Write the manifest of a completed job in a task, then announce `completed` and ack `msg`.

    The caller's result loop goes on meanwhile. The result that completed the job is acked only
    at the end, so a crash in between redelivers it and the completion (manifest and event,
    whose `Nats-Msg-Id` keeps one copy in the stream) happens again.
    """
    task = asyncio.create_task(_finish(js, job, msg, output_dir))
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


async def _finish(js: JetStreamContext, job: JobInfo, msg: Msg, output_dir: Path) -> None:
    async def beat() -> None:
        with contextlib.suppress(Exception):
            await msg.in_progress()

    try:
        await complete_job(js, job, output_dir, heartbeat=beat)
        await msg.ack()
    except Exception:
        # Unacked: the result is redelivered after ack_wait and the completion runs again.
        log.exception("job.complete_failed", job_id=job.job_id)


async def complete_job(
    js: JetStreamContext, job: JobInfo, output_dir: Path, *, heartbeat: Heartbeat | None = None
) -> JobEvent:
    """Write the manifest of a completed job, then publish its `completed` event naming it."""
    event = event_from_job(job, "completed")
    try:
        directory = DirectoryStore(output_dir).job_dir(job.job_id)
        summary = await write_manifest(js, job.job_id, directory, attempt=job.attempt, heartbeat=heartbeat)
        log.info("manifest.written", job_id=job.job_id, path=str(summary.path), rows=summary.rows)
        event = msgspec.structs.replace(
            event, manifest=str(summary.path), message=event.message or f"manifest: {summary.path}"
        )
    except Exception as exc:
        # A manifest is a report: failing to write it must not hold back the job's completion.
        log.exception("manifest.failed", job_id=job.job_id)
        event = msgspec.structs.replace(
            event, message=event.message or f"the manifest could not be written: {exc}"
        )
    await publish_event(js, event)
    return event
