"""The result-notifier service: results stream in, ledger rows and lifecycle events out.

Each result is acked only after its batch is committed in Postgres, so when Postgres is away
results wait in the stream (nak with a delay, no loss) and are recorded when it returns. The
ledger counts each (job, attempt, batch) once, so a redelivered result never counts twice.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Coroutine
from typing import Any

import asyncpg
import structlog
from nats.aio.msg import Msg

from services.result_notifier.progress import ProgressThrottle
from shared import metrics
from shared.bus.consumer import pull_batches
from shared.bus.service import Endpoint, Service
from shared.cancellation import Cancellations
from shared.contract.codec import decode_json, encode_json
from shared.contract.errors import BadRequest
from shared.contract.messages import BatchResult, JobRef, JobsGet, JobsList, JobsListReply, RenderItem
from shared.contract.states import COMPLETED_STATUSES
from shared.contract.subjects import (
    CONSUMER_NOTIFIER,
    JOBS_CANCEL,
    JOBS_GET,
    JOBS_LIST,
    JOBS_RETRY,
    STREAM_RESULTS,
)
from shared.events import announce
from shared.ingest.publisher import TaskPublisher
from shared.ledger import Ledger
from shared.logging import get_logger
from shared.manifest import finish_job
from shared.render.styles import parse_style

log = get_logger(__name__)

_DB_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    TimeoutError,
)


class ResultNotifier(Service):
    name = "result-notifier"
    description = "Keeps the job ledger from results and publishes job lifecycle events"
    ledger: Ledger

    async def start(self) -> None:
        self.ledger = await Ledger.open(self.settings.database_url)
        self.progress = ProgressThrottle(self.settings.progress_interval_seconds)
        self.cancellations = Cancellations(self.ctx.js)

    async def stop(self) -> None:
        await self.ledger.close()

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("jobs-get", JOBS_GET, self.jobs_get),
            Endpoint("jobs-list", JOBS_LIST, self.jobs_list),
            Endpoint("jobs-cancel", JOBS_CANCEL, self.jobs_cancel),
            Endpoint("jobs-retry", JOBS_RETRY, self.jobs_retry),
        ]

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        return [self.pull_loop()]

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
        """Record the cancellation, then tell ingest and renderers through the KV bucket."""
        job_id = decode_json(payload, JobRef).job_id
        job, changed = await self.ledger.cancel_job(job_id)
        await self.cancellations.cancel(job_id)
        log.info("audit.cancel", job_id=job_id, changed=changed)
        if changed:
            metrics.JOBS.labels(state="cancelled").inc()
            await announce(self.ctx.js, job, "cancelled")
            self.progress.forget(job_id)
        return encode_json(job)

    async def jobs_retry(self, payload: bytes) -> bytes:
        """Re-render only the failed items of a finished job, as its next attempt."""
        job_id = decode_json(payload, JobRef).job_id
        job, items = await self.ledger.retry_job(job_id)
        log.info("audit.retry", job_id=job_id, attempt=job.attempt, items=len(items))
        request = json.loads(await self.ledger.job_request(job_id))
        style = parse_style(request.get("style") or {})
        batch_size = request.get("batch_size") or self.settings.batch_size
        publisher = TaskPublisher(self.ctx.js, job_id, job.attempt, style, batch_size=batch_size)
        for item in items:
            await publisher.add(RenderItem(item.index, item.text, item.name, None, item.style))
        _, batches = await publisher.close()
        await self.ledger.set_batches(job_id, job.attempt, batches)
        await announce(self.ctx.js, job, "started", message=f"retrying {len(items)} failed items")
        return encode_json(job)

    async def pull_loop(self) -> None:
        async for msgs in pull_batches(
            self.ctx.js, STREAM_RESULTS, CONSUMER_NOTIFIER, batch=64, stop=self.ctx.stop
        ):
            for msg in msgs:
                await self.handle(msg)

    async def handle(self, msg: Msg) -> None:
        try:
            result = decode_json(msg.data, BatchResult)
        except BadRequest as exc:
            log.error("result.malformed", subject=msg.subject, error=str(exc))
            metrics.MESSAGES_REJECTED.labels(kind="result").inc()
            await msg.term()
            return
        structlog.contextvars.bind_contextvars(job_id=result.job_id, batch=result.batch)
        try:
            outcome = await self.ledger.record_batch(result)
        except _DB_DOWN as exc:
            log.warning("result.ledger_unavailable", error=str(exc) or type(exc).__name__)
            with contextlib.suppress(Exception):
                await msg.nak(delay=1.0)
            return
        finally:
            structlog.contextvars.unbind_contextvars("job_id", "batch")
        metrics.RESULTS_RECORDED.labels(outcome="recorded" if outcome.recorded else "duplicate").inc()
        if outcome.completed and outcome.job is not None:
            metrics.JOBS.labels(state=outcome.job.status).inc()
        job = outcome.job
        if job is None:
            log.warning("result.unknown_job", job_id=result.job_id)
        elif outcome.completed or (not outcome.recorded and job.status in COMPLETED_STATUSES):
            # On a redelivery the earlier attempt may have committed but failed to announce;
            # the event's Nats-Msg-Id keeps a second announcement out of the stream.
            # The manifest is written by a task (this loop goes on with other results); the
            # task then announces `completed`, naming the manifest, and acks this message.
            self.progress.forget(job.job_id)
            finish_job(self.ctx.js, job, msg, self.settings.output_dir)
            return
        elif outcome.recorded and self.progress.due(job.job_id):
            await announce(self.ctx.js, job, "progress")
        await msg.ack()
