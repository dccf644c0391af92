"""The ingest worker loop both ingest services run: request in, render tasks out.

A service supplies a `RowSource` (CSV file, SQL cursor); this loop does the rest: the job's state
changes and events, names from the template, batching, heartbeats on the request message while a
long source streams, and failing the job with a clear reason when the source breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass

import structlog
from nats.aio.msg import Msg

from shared import metrics
from shared.bus.consumer import pull_batches
from shared.bus.service import ServiceContext
from shared.cancellation import Cancellations
from shared.contract.codec import decode_json
from shared.contract.errors import BadRequest, ImagegenError
from shared.contract.messages import IngestRequest, RenderItem, SubmitCsv, SubmitDb
from shared.contract.subjects import STREAM_REQUESTS
from shared.events import announce
from shared.ingest.publisher import TaskPublisher
from shared.ledger import Ledger
from shared.logging import get_logger
from shared.manifest import complete_job
from shared.storage.naming import NameTemplate

log = get_logger(__name__)

CANCEL_CHECK_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Row:
    """One source row: its 0-based index, its text, its values by column (for name templates),
    or the reason it cannot be rendered; `filename` is the file-name column's cell (when the
    request names one) and `style` the row's style overrides {field: cell}."""

    index: int
    text: str
    values: Mapping[str, str] | None = None
    error: str | None = None
    filename: str | None = None
    style: dict[str, str] | None = None


# `filename_column` reuses the template machinery (sanitising, collisions) through one
# placeholder fed with the row's file-name cell.
_FILENAME_KEY = "filename"
_FILENAME_TEMPLATE = "{row[filename]}"


def name_template_for(submit: SubmitCsv | SubmitDb) -> NameTemplate:
    """The request's output-name template: `filename_column` wins over `name_template`."""
    if isinstance(submit, SubmitCsv) and submit.filename_column is not None:
        return NameTemplate(_FILENAME_TEMPLATE, field="filename_column")
    return NameTemplate(submit.name_template)


RowSource = Callable[[IngestRequest, SubmitCsv | SubmitDb], AsyncGenerator[Row, None]]


async def _heartbeat(msg: Msg, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            await msg.in_progress()


async def ingest_one(ctx: ServiceContext, ledger: Ledger, msg: Msg, rows: RowSource) -> None:
    """Handle one `IngestRequest` message completely (ack or term included)."""
    try:
        request = decode_json(msg.data, IngestRequest)
    except BadRequest as exc:
        log.error("ingest.bad_message", subject=msg.subject, error=str(exc))
        metrics.MESSAGES_REJECTED.labels(kind="request").inc()
        await msg.term()
        return
    submit = request.csv or request.db
    if submit is None:
        log.error("ingest.bad_message", subject=msg.subject, error="no csv or db request")
        await msg.term()
        return
    structlog.contextvars.bind_contextvars(job_id=request.job_id)
    job = await ledger.start_ingest(request.job_id, request.attempt)
    if job is None:
        log.info("ingest.skipped", reason="job no longer active")
        await msg.ack()
        return
    await announce(ctx.js, job, "started")
    publisher = TaskPublisher(
        ctx.js,
        request.job_id,
        request.attempt,
        submit.style,
        batch_size=submit.batch_size or ctx.settings.batch_size,
        # A batch size the client chose is used as it is; the default ramps up to it.
        ramp_from=None if submit.batch_size else 8,
        max_queued=ctx.settings.max_queued_batches_per_job,
    )
    template = name_template_for(submit)
    by_filename = isinstance(submit, SubmitCsv) and submit.filename_column is not None
    cancellations = Cancellations(ctx.js)
    beat = asyncio.create_task(_heartbeat(msg, max(ctx.settings.ack_wait_seconds / 3, 0.5)))
    loop = asyncio.get_running_loop()
    next_check = loop.time() + CANCEL_CHECK_SECONDS
    cancelled = False
    try:
        async with contextlib.aclosing(rows(request, submit)) as source:
            async for row in source:
                values = {_FILENAME_KEY: row.filename or ""} if by_filename else row.values
                name = template.render(row.index, values)
                await publisher.add(RenderItem(row.index, row.text, name, row.error, row.style))
                if loop.time() >= next_check:
                    next_check = loop.time() + CANCEL_CHECK_SECONDS
                    if await cancellations.is_cancelled(request.job_id):
                        cancelled = True
                        publisher.discard_pending()
                        break
        total_items, total_batches = await publisher.close()
    except ImagegenError as exc:
        # What was read before the failure is published and will still be counted.
        published, _ = await publisher.close()
        log.warning("ingest.source_failed", error=str(exc), published=published)
        failed = await ledger.fail_job(request.job_id, request.attempt, str(exc), total_items=published)
        if failed:
            metrics.JOBS.labels(state="failed").inc()
            await announce(ctx.js, failed, "failed")
        await msg.ack()
        return
    finally:
        beat.cancel()
    finished, completed = await ledger.finish_ingest(
        request.job_id, request.attempt, total_items, total_batches
    )
    log.info("ingest.done", items=total_items, batches=total_batches, cancelled=cancelled)
    if finished and completed:
        # Every result was counted before the totals were known: completion is ours to announce,
        # manifest first (see shared/manifest.py).
        async def keep_alive() -> None:
            with contextlib.suppress(Exception):
                await msg.in_progress()

        await complete_job(ctx.js, finished, ctx.settings.output_dir, heartbeat=keep_alive)
    await msg.ack()


async def _ingest_guarded(ctx: ServiceContext, ledger: Ledger, msg: Msg, rows: RowSource) -> None:
    try:
        await ingest_one(ctx, ledger, msg, rows)
    except Exception:
        # Leave the message un-acked: it is redelivered after ack_wait, up to max_deliver.
        log.exception("ingest.crashed")


async def ingest_worker(ctx: ServiceContext, ledger: Ledger, durable: str, rows: RowSource) -> None:
    """Pull ingest requests until the service stops, several jobs at a time: a big job that is
    being fed in at the renderers' pace (the fairness cap) must not hold up the next job's
    ingest. Each job runs in its own task (and so its own logging context)."""
    slots = asyncio.Semaphore(ctx.settings.ingest_concurrency)
    running: set[asyncio.Task[None]] = set()
    async for msgs in pull_batches(ctx.js, STREAM_REQUESTS, durable, batch=1, stop=ctx.stop):
        for msg in msgs:
            await slots.acquire()
            task = asyncio.create_task(_ingest_guarded(ctx, ledger, msg, rows))
            running.add(task)
            task.add_done_callback(running.discard)
            task.add_done_callback(lambda _: slots.release())
        # Do not fetch (and so hold) a request we have no slot for: another replica may.
        await slots.acquire()
        slots.release()
    if running:
        await asyncio.gather(*running, return_exceptions=True)
