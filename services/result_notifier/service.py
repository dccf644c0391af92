"""The result-notifier service: results stream in, ledger rows and lifecycle events out.

Each result is acked only after its batch is committed in Postgres, so when Postgres is away
results wait in the stream (nak with a delay, no loss) and are recorded when it returns. The
ledger counts each (job, attempt, batch) once, so a redelivered result never counts twice.
Each counted result's manifest lines are spooled then (`shared/workflow/recorded.py`), so a job's
completion writes its manifest without reading its results back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine
from functools import partial
from typing import Any

import asyncpg
import msgspec
import structlog
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig

from services.result_notifier.progress import ProgressThrottle
from shared.contract.codec import decode_json, encode_json
from shared.contract.errors import BadRequest
from shared.contract.messages import (
    BatchResult,
    IngestRequest,
    JobInfo,
    JobRef,
    JobsGet,
    JobsList,
    JobsListReply,
    MaxDeliveries,
    RenderItem,
)
from shared.contract.states import COMPLETED_STATUSES, EventKind, JobStatus
from shared.contract.subjects import (
    CONSUMER_ADVISORIES,
    CONSUMER_NOTIFIER,
    JOBS_CANCEL,
    JOBS_GET,
    JOBS_LIST,
    JOBS_RETRY,
    STREAM_ADVISORIES,
    STREAM_RESULT_QUEUE,
    requests_subject,
    results_subject,
)
from shared.runtime import metrics
from shared.runtime.bus.consumer import heartbeat_every, keep_alive, pull_decoded
from shared.runtime.bus.limits import TaskBudget, encode_result, payload_budget
from shared.runtime.bus.poison import describe, settle
from shared.runtime.bus.publish import publish
from shared.runtime.bus.service import Endpoint, Service
from shared.runtime.bus.streams import advisories_consumer, notifier_consumer
from shared.runtime.ledger import BatchOutcome, Ledger
from shared.runtime.logging import get_logger
from shared.runtime.settings import Settings
from shared.runtime.tasks import TaskSet
from shared.sources import source
from shared.storage import open_store
from shared.workflow.active import ActiveJobs
from shared.workflow.advisories import Undelivered
from shared.workflow.cancellation import Cancellations
from shared.workflow.completion import complete_job
from shared.workflow.events import announce
from shared.workflow.failure import fail_job, failed_copy, still_rendering
from shared.workflow.manifest import Spool
from shared.workflow.publisher import TaskPublisher
from shared.workflow.recorded import RecordedRuns
from shared.workflow.watchdog import watch_stalls

log = get_logger(__name__)

_DB_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    TimeoutError,
)


def _subject_of(result: BatchResult) -> str | None:
    """The subject a renderer publishes `result` on (None for a job id no subject can hold)."""
    try:
        return results_subject(result.job_id)
    except BadRequest:
        return None


class ResultNotifier(Service):
    name = "result-notifier"
    description = "Keeps the job ledger from results and publishes job lifecycle events"
    ledger: Ledger

    async def start(self) -> None:
        self.ledger = await Ledger.open(self.settings.database_url)
        self.progress = ProgressThrottle(self.settings.progress_interval_seconds)
        self.cancellations = Cancellations(self.ctx.js)
        self.active = ActiveJobs(self.ctx.js)
        self.store = open_store(self.settings, self.ctx.js)
        self.finishing = TaskSet()
        # Each counted result's manifest lines, so a job's completion need not read them back.
        self.recorded = RecordedRuns()

    @classmethod
    def consumers(cls, settings: Settings) -> list[tuple[str, ConsumerConfig]]:
        return [notifier_consumer(settings), advisories_consumer(settings)]

    async def stop(self) -> None:
        await self.ledger.close()
        self.recorded.close()

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("jobs-get", JOBS_GET, self.jobs_get),
            Endpoint("jobs-list", JOBS_LIST, self.jobs_list),
            Endpoint("jobs-cancel", JOBS_CANCEL, self.jobs_cancel),
            Endpoint("jobs-retry", JOBS_RETRY, self.jobs_retry),
        ]

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        return [
            self.pull_loop(),
            self.advisory_loop(),
            watch_stalls(
                self.ctx.js,
                self.ledger,
                self.active,
                self.cancellations,
                stall_seconds=self.settings.job_stall_seconds,
                stop=self.ctx.stop,
            ),
        ]

    async def jobs_get(self, payload: bytes) -> bytes:
        query = decode_json(payload, JobsGet)
        return encode_json(await self.ledger.get_job(query.job_id, failures_limit=query.failures_limit))

    async def jobs_list(self, payload: bytes) -> bytes:
        query = decode_json(payload or b"{}", JobsList)
        jobs = await self.ledger.list_jobs(
            status=query.status, limit=query.limit, before=query.before, since=query.since
        )
        return encode_json(JobsListReply(jobs=jobs))

    async def jobs_cancel(self, payload: bytes) -> bytes:
        """Record the cancellation, then tell ingest (the cancel bucket) and renderers (the job
        leaves the active-jobs bucket)."""
        job_id = decode_json(payload, JobRef).job_id
        job, changed = await self.ledger.cancel_job(job_id)  # NotFound for an unknown job
        await self.cancellations.cancel(job_id, job.attempt)
        await self.active.end(job_id)
        log.info("audit.cancel", job_id=job_id, changed=changed)
        if changed:
            metrics.JOBS.labels(state="cancelled").inc()
            await announce(self.ctx.js, job, EventKind.CANCELLED)
            self.progress.forget(job_id)
        self.recorded.drop(job_id)
        return encode_json(job)

    async def jobs_retry(self, payload: bytes) -> bytes:
        """A job's next attempt: a job that completed with failed items re-renders only those; a
        cancelled or failed one resumes, rendering what earlier attempts did not."""
        job_id = decode_json(payload, JobRef).job_id
        current = await self.ledger.get_job(job_id)  # NotFound for an unknown job
        if current.status in (JobStatus.CANCELLED, JobStatus.FAILED):
            return encode_json(await self.resume(job_id))
        job, items = await self.ledger.retry_job(job_id)
        log.info("audit.retry", job_id=job_id, attempt=job.attempt, items=len(items))
        await self.active.start(job_id, job.attempt)  # before its first task exists
        submit = decode_json(await self.ledger.job_request(job_id), source(job.source).request)
        publisher = TaskPublisher(
            self.ctx.js,
            job_id,
            job.attempt,
            submit.style,
            batch_size=submit.batch_size or self.settings.batch_size,
            budget=TaskBudget.of(self.ctx.nc, self.settings.batch_max_bytes),
        )
        for item in items:
            await publisher.add(RenderItem(item.index, item.text, item.name, None, item.style, item.row))
        _, batches = await publisher.close()
        await self.ledger.set_batches(job_id, job.attempt, batches)
        await announce(self.ctx.js, job, EventKind.STARTED, message=f"retrying {len(items)} failed items")
        return encode_json(job)

    async def resume(self, job_id: str) -> JobInfo:
        """Start the job again through ingest, which skips the items already rendered."""
        job = await self.ledger.resume_job(job_id)
        log.info("audit.resume", job_id=job_id, attempt=job.attempt)
        await self.active.start(job_id, job.attempt)  # before its first task exists
        request = IngestRequest(job_id=job_id, attempt=job.attempt, source=job.source, resume=True)
        await publish(
            self.ctx.js,
            requests_subject(job.source),
            encode_json(request),
            headers={"Nats-Msg-Id": f"{job_id}:{job.attempt}"},
            timeout=5,
            retry_for=10,
        )
        return job

    async def pull_loop(self) -> None:
        async for batch in pull_decoded(
            self.ctx.js,
            STREAM_RESULT_QUEUE,
            CONSUMER_NOTIFIER,
            lambda data: decode_json(data, BatchResult),
            kind="result",
            batch=64,
            stop=self.ctx.stop,
        ):
            for msg, result in batch:
                await settle(
                    msg,
                    partial(self.handle, msg, result),
                    partial(self.unrecordable, result),
                    kind="result",
                    attempts=self.settings.max_deliver,
                )
        await self.finishing.join(timeout=self.settings.shutdown_grace_seconds)

    async def advisory_loop(self) -> None:
        """MAX_DELIVERIES advisories in, recorded failures out (`shared.workflow.advisories`)."""
        undelivered = Undelivered(
            self.ctx.js, self.ledger, self.active, self.cancellations, self.ctx.instance
        )

        async def handle(msg: Msg, advisory: MaxDeliveries) -> None:
            await undelivered.handle(advisory)
            await msg.ack()

        async def give_up(advisory: MaxDeliveries, reason: str) -> None:
            # Nothing more to record: the job ends through the stall watchdog.
            log.error("advisory.unhandled", stream=advisory.stream, seq=advisory.stream_seq, reason=reason)

        async for batch in pull_decoded(
            self.ctx.js,
            STREAM_ADVISORIES,
            CONSUMER_ADVISORIES,
            lambda data: decode_json(data, MaxDeliveries),
            kind="advisory",
            batch=16,
            stop=self.ctx.stop,
        ):
            for msg, advisory in batch:
                await settle(
                    msg,
                    partial(handle, msg, advisory),
                    partial(give_up, advisory),
                    kind="advisory",
                    attempts=self.settings.max_deliver,
                )

    async def handle(self, msg: Msg, result: BatchResult) -> None:
        structlog.contextvars.bind_contextvars(job_id=result.job_id, batch=result.batch)
        if msg.subject != _subject_of(result):
            # Renderers publish a job's results on that job's subject; anything else is forged.
            await self.refuse(msg, result, f"published on {msg.subject}, not its job's subject")
            return
        try:
            outcome = await self.ledger.record_batch(result)
        except _DB_DOWN as exc:
            log.warning("result.ledger_unavailable", error=str(exc) or type(exc).__name__)
            with contextlib.suppress(Exception):
                await msg.nak(delay=1.0)
            return
        finally:
            structlog.contextvars.unbind_contextvars("job_id", "batch")
        if outcome.refused is not None:
            await self.refuse(msg, result, outcome.refused)
            return
        if outcome.recorded:
            self.recorded.add(result)
        await self.counted(outcome, msg)

    async def counted(self, outcome: BatchOutcome, msg: Msg | None) -> None:
        """After a batch was counted: the progress event, or the job's completion; then ack
        `msg` (None: the caller settles it)."""
        metrics.RESULTS_RECORDED.labels(outcome="recorded" if outcome.recorded else "duplicate").inc()
        if outcome.completed and outcome.job is not None:
            metrics.JOBS.labels(state=outcome.job.status).inc()
        job = outcome.job
        assert job is not None  # a result of an unknown job is refused before this
        if outcome.completed or (not outcome.recorded and job.status in COMPLETED_STATUSES):
            # On a redelivery the earlier attempt may have committed but failed to announce;
            # the event's Nats-Msg-Id keeps a second announcement out of the stream.
            # The manifest is written by a task (this loop goes on with other results); the
            # task then announces `completed`, naming the manifest, and acks this message.
            self.progress.forget(job.job_id)
            await self.finishing.spawn(self.finish(job, msg, self.recorded.take(job.job_id)))
            return
        elif outcome.recorded and job.status == JobStatus.FAILED and not still_rendering(job):
            # A job failed by its source once its published items are all counted: stop.
            await self.active.end(job.job_id)
            self.recorded.drop(job.job_id)
        elif outcome.recorded and self.progress.due(job.job_id):
            await announce(self.ctx.js, job, EventKind.PROGRESS)
        if msg is not None:
            await msg.ack()

    async def unrecordable(self, result: BatchResult, reason: str) -> None:
        """A result the ledger refused on every attempt (e.g. text Postgres cannot hold): its
        items are recorded as failed with the reason; if even that fails, the job fails."""
        copy = failed_copy(result, f"the result could not be recorded: {reason}")
        # Into the results stream first, so the manifest shows what the ledger counts.
        await publish(
            self.ctx.js,
            results_subject(result.job_id),
            encode_result(msgspec.structs.replace(copy, replaces=True), payload_budget(self.ctx.nc)),
            headers={"Nats-Msg-Id": f"{result.job_id}:{result.attempt}:{result.batch}:replaced"},
        )
        try:
            outcome = await self.ledger.record_batch(copy)
        except _DB_DOWN:
            raise  # retried by `settle`
        except Exception as exc:
            await fail_job(
                self.ctx.js,
                self.ledger,
                self.active,
                result.job_id,
                result.attempt,
                f"batch {result.batch}: {copy.items[0].error}; recording its items as failed also "
                f"failed: {describe(exc)}",
                cancellations=self.cancellations,
            )
            return
        if outcome.refused is None:
            if outcome.recorded:
                self.recorded.add(copy)
            await self.counted(outcome, None)

    async def refuse(self, msg: Msg, result: BatchResult, reason: str) -> None:
        """A result that does not fit its job, from a broken or hostile renderer: logged with
        who sent it, counted, and terminated (a redelivery would be refused again)."""
        log.error(
            "result.refused",
            job_id=result.job_id,
            attempt=result.attempt,
            batch=result.batch,
            items=len(result.items),
            renderer=result.renderer,
            reason=reason,
        )
        metrics.RESULTS_RECORDED.labels(outcome="refused").inc()
        with contextlib.suppress(Exception):
            await msg.term()

    async def finish(self, job: JobInfo, msg: Msg | None, recorded: Spool | None) -> None:
        """Complete `job` (manifest, then the `completed` event), then ack the result that
        completed it: a crash in between redelivers it and the completion runs again.
        `recorded` holds the manifest lines of the results this process counted."""
        try:
            if msg is None:
                await complete_job(self.ctx.js, job, self.store, self.active, recorded=recorded)
                return
            async with keep_alive(msg, heartbeat_every(self.settings.ack_wait_seconds)):
                await complete_job(self.ctx.js, job, self.store, self.active, recorded=recorded)
            await msg.ack()
        except Exception:
            log.exception("job.complete_failed", job_id=job.job_id)
        finally:
            if recorded is not None:
                recorded.close()
