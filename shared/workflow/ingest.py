"""The ingest worker: an accepted job in, render tasks out, for every registered source.

A source plug-in supplies the rows (`Source.rows`); this loop does the rest: the job's state
changes and events, output names, batching, heartbeats on the request message while a long
source streams, cancellation, and failing the job with a clear reason when the source breaks.
The request that runs is the one stored in the ledger when the job was accepted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

import structlog
from nats.aio.msg import Msg

from shared.contract.codec import decode_json
from shared.contract.errors import BadRequest, ImagegenError
from shared.contract.messages import IngestRequest, RenderItem
from shared.contract.states import EventKind
from shared.contract.subjects import STREAM_REQUESTS
from shared.contract.submit import SubmitBase
from shared.runtime.bus.consumer import heartbeat_every, keep_alive, pull_decoded
from shared.runtime.bus.limits import TaskBudget
from shared.runtime.bus.poison import settle
from shared.runtime.bus.service import ServiceContext
from shared.runtime.ledger import Ledger
from shared.runtime.logging import get_logger
from shared.runtime.stalls import report_stalls
from shared.runtime.tasks import TaskSet
from shared.sources import Row, Source, SourceSpec
from shared.storage import ImageStore, NameTemplate
from shared.workflow.active import ActiveJobs
from shared.workflow.cancellation import Cancellations, CancelWatch
from shared.workflow.carriable import carriable_rows
from shared.workflow.completion import complete_job
from shared.workflow.events import announce
from shared.workflow.failure import fail_job
from shared.workflow.publisher import TaskPublisher
from shared.workflow.results import Rendered, rendered_before

log = get_logger(__name__)

CANCEL_CHECK_SECONDS = 0.5
REPORT_STALLS_AFTER = 120.0

# `filename_column` reuses the template machinery (sanitising, collisions) through one
# placeholder fed with the row's file-name cell.
_FILENAME_KEY = "filename"
_FILENAME_TEMPLATE = "{row[filename]}"


def items_of(
    chunk: list[Row], template: NameTemplate, by_filename: bool, max_row_bytes: int, rendered: Rendered | None
) -> list[RenderItem]:
    """The render items of a chunk of source rows: checked (`carriable_rows`), named, less what
    `rendered` holds. A chunk at a time, in comprehensions: ingest runs this for every row of
    every job (bench/bench_ingest.py)."""
    rows = carriable_rows(chunk, max_row_bytes)
    # Generators: the default template takes only the row numbers, the others take them all.
    values: Iterable[Mapping[str, str] | None]
    if by_filename:
        values = ({_FILENAME_KEY: row.filename or ""} for row in rows)
    else:
        values = (row.values for row in rows)
    # Named even when skipped: a repeated name's suffix depends on the names before it.
    names = template.render_many((row.index for row in rows), [row.row for row in rows], values)
    return [
        RenderItem(row.index, row.text, name, row.error, row.style, row.row)
        for row, name in zip(rows, names, strict=True)
        if rendered is None or row.index not in rendered
    ]


def name_template_for(request: SubmitBase) -> NameTemplate:
    """The request's output-name template: `filename_column` wins over `name_template`."""
    if request.filename_column is not None:
        return NameTemplate(_FILENAME_TEMPLATE, field="filename_column")
    return NameTemplate(request.name_template)


class IngestWorker:
    """Pulls one source's accepted jobs and publishes their render tasks."""

    def __init__(
        self,
        ctx: ServiceContext,
        ledger: Ledger,
        store: ImageStore,
        active: ActiveJobs,
        spec: SourceSpec[Any],
        source: Source[Any],
    ) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.store = store
        self.active = active
        self.spec = spec
        self.source = source
        # Asked at every watch interval: a cancelled job's query stops within one.
        self.cancellations = Cancellations(ctx.js, cache_seconds=CANCEL_CHECK_SECONDS)

    async def run(self) -> None:
        """Pull requests until the service stops, several jobs at a time: a big job that is being
        fed in at the renderers' pace (the fairness cap) must not hold up the next job's ingest.
        Each job runs in its own task (and so its own logging context)."""
        running = TaskSet(self.ctx.settings.ingest_concurrency)
        async for batch in pull_decoded(
            self.ctx.js,
            STREAM_REQUESTS,
            self.spec.durable,
            lambda data: decode_json(data, IngestRequest),
            kind="request",
            batch=1,
            stop=self.ctx.stop,
        ):
            for msg, request in batch:
                await running.spawn(self._guarded(msg, request))
            # Do not fetch (and so hold) a request we have no slot for: another replica may.
            await running.wait_for_slot()
        await running.join()

    async def _guarded(self, msg: Msg, request: IngestRequest) -> None:
        """`ingest`, retried with back-off when it raises; the last failure fails the job."""

        async def give_up(reason: str) -> None:
            await fail_job(
                self.ctx.js, self.ledger, self.active, request.job_id, request.attempt, f"ingest {reason}"
            )

        await settle(
            msg,
            partial(self.ingest, msg, request),
            give_up,
            kind="request",
            attempts=self.ctx.settings.max_deliver,
        )

    async def _stored_request(self, request: IngestRequest) -> SubmitBase:
        """The request the job was accepted with; a job whose stored request no longer decodes
        (an incompatible upgrade) fails with the reason rather than loop."""
        raw = await self.ledger.job_request(request.job_id)
        try:
            submit: SubmitBase = decode_json(raw, self.spec.request)
        except BadRequest as exc:
            raise ImagegenError(f"the stored request no longer decodes: {exc}") from exc
        return submit

    async def ingest(self, msg: Msg, request: IngestRequest) -> None:
        """Handle one accepted job completely (ack included)."""
        structlog.contextvars.bind_contextvars(job_id=request.job_id)
        if request.source != self.spec.name:
            log.error("ingest.wrong_source", source=request.source)
            await msg.term()
            return
        rendered = None
        if request.resume:
            # A resumed job renders what earlier attempts did not (their results say what that is).
            rendered = await rendered_before(self.ctx.js, request.job_id, request.attempt)
        already = (rendered.done, rendered.incomplete) if rendered else None
        job = await self.ledger.start_ingest(request.job_id, request.attempt, already=already)
        if job is None:
            log.info("ingest.skipped", reason="job no longer active")
            await msg.ack()
            return
        note = f"resuming: {rendered.done} items were rendered before" if rendered else None
        await announce(self.ctx.js, job, EventKind.STARTED, message=note)
        skip = rendered.done if rendered else 0
        settings = self.ctx.settings
        publisher: TaskPublisher | None = None
        cancelled = False
        async with keep_alive(msg, heartbeat_every(settings.ack_wait_seconds)):
            try:
                submit = await self._stored_request(request)
                publisher = TaskPublisher(
                    self.ctx.js,
                    request.job_id,
                    request.attempt,
                    submit.style,
                    batch_size=submit.batch_size or settings.batch_size,
                    budget=TaskBudget.of(self.ctx.nc, settings.batch_max_bytes),
                    # A batch size the client chose is used as it is; the default ramps up to it.
                    ramp_from=None if submit.batch_size else 8,
                    max_queued=settings.max_queued_batches_per_job,
                )
                async with self._report_stalls(publisher):
                    cancelled = await self._publish_rows(request, submit, publisher, rendered)
                    total_items, total_batches = await publisher.close()
                total_items += skip
            except ImagegenError as exc:
                # What was read before the failure is published and will still be counted.
                published = 0
                if publisher:
                    async with self._report_stalls(publisher):
                        published = (await publisher.close())[0]
                log.warning("ingest.source_failed", error=str(exc), published=published)
                await fail_job(
                    self.ctx.js,
                    self.ledger,
                    self.active,
                    request.job_id,
                    request.attempt,
                    str(exc),
                    total_items=skip + published,
                )
                await msg.ack()
                return
            finished, completed = await self.ledger.finish_ingest(
                request.job_id, request.attempt, total_items, total_batches
            )
            log.info("ingest.done", items=total_items, batches=total_batches, cancelled=cancelled)
            if finished and completed:
                # Every result was counted before the totals were known: completion is ours.
                await complete_job(self.ctx.js, finished, self.store, self.active)
        await msg.ack()

    @staticmethod
    def _report_stalls(publisher: TaskPublisher) -> AbstractAsyncContextManager[None]:
        """Say where the job's handler waits if neither a row nor a stored batch comes for
        `REPORT_STALLS_AFTER` seconds (twice, a handler waited minutes with nothing logged)."""
        return report_stalls(
            lambda: (publisher.items_added, publisher.batches_stored),
            after=REPORT_STALLS_AFTER,
            event="ingest.no_progress",
        )

    async def _publish_rows(
        self, request: IngestRequest, submit: SubmitBase, publisher: TaskPublisher, rendered: Rendered | None
    ) -> bool:
        """Stream the source into `publisher`, leaving out what `rendered` holds; True if the job
        was cancelled meanwhile."""
        template = name_template_for(submit)
        by_filename = submit.filename_column is not None
        max_row_bytes = self.ctx.settings.max_row_bytes
        watch = CancelWatch(
            self.cancellations, request.job_id, request.attempt, interval=CANCEL_CHECK_SECONDS
        )
        async with watch, contextlib.aclosing(self.source.chunks(submit)) as chunks:
            while (chunk := await watch.read(chunks)) is not None:
                if publisher.put_many(items_of(chunk, template, by_filename, max_row_bytes, rendered)):
                    await publisher.publish_ready()
        if watch.cancelled:
            publisher.discard_pending()
        return watch.cancelled
