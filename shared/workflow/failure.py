"""Failing a job, or a batch, with a reason: the one path every give-up takes.

A job fails when its source breaks (ingest), when its request cannot be handled on any delivery
(ingest, or the MAX_DELIVERIES advisory), or when it makes no progress for too long (the
watchdog). Failing it records the reason in the ledger, stops ingest (the cancel bucket, where
the caller may write it), stops renderers (the active-jobs bucket) and announces `failed`.
A batch whose result cannot be recorded becomes failed items instead (`failed_copy`).
"""

from __future__ import annotations

from nats.js.client import JetStreamContext

from shared.contract.messages import BatchResult, ItemResult, JobInfo, clip
from shared.contract.states import EventKind
from shared.runtime import metrics
from shared.runtime.ledger import Ledger
from shared.runtime.logging import get_logger
from shared.workflow.active import ActiveJobs
from shared.workflow.cancellation import Cancellations
from shared.workflow.events import MAX_EVENT_MESSAGE, announce

log = get_logger(__name__)


async def job_failed(
    js: JetStreamContext,
    active: ActiveJobs,
    job: JobInfo,
    cancellations: Cancellations | None = None,
    *,
    stop_rendering: bool = True,
) -> None:
    """What follows a job's move to `failed` in the ledger: ingest stops, renderers stop (unless
    `stop_rendering` is False: its published items still render, see `fail_job`), and the
    `failed` event says why. Only result-notifier may write the cancel bucket (`cancellations`)."""
    metrics.JOBS.labels(state="failed").inc()
    log.warning("job.failed", job_id=job.job_id, attempt=job.attempt, error=job.error)
    if cancellations is not None:
        await cancellations.cancel(job.job_id, job.attempt)
    if stop_rendering:
        await active.end(job.job_id)
    await announce(js, job, EventKind.FAILED)


def still_rendering(job: JobInfo) -> bool:
    """A failed job whose published items are not all counted yet: its tasks still render, and
    result-notifier ends it in the active-jobs bucket when the last one is counted."""
    return job.status == "failed" and job.total is not None and job.done + job.failed < job.total


async def fail_job(
    js: JetStreamContext,
    ledger: Ledger,
    active: ActiveJobs,
    job_id: str,
    attempt: int,
    reason: str,
    *,
    cancellations: Cancellations | None = None,
    total_items: int | None = None,
) -> JobInfo | None:
    """Fail attempt `attempt` of `job_id` with `reason` (None if it already ended)."""
    # Stored, announced and shown by `jobs get`: clipped and storable whatever a source said.
    reason = clip(storable(reason) or "", MAX_EVENT_MESSAGE)
    failed = await ledger.fail_job(job_id, attempt, reason, total_items=total_items)
    if failed is not None:
        # With `total_items` (a source that broke after publishing some rows) what was published
        # is still rendered and counted, as the ledger says; otherwise everything stops.
        keep = total_items is not None and still_rendering(failed)
        await job_failed(js, active, failed, cancellations, stop_rendering=not keep)
    return failed


def storable(text: str | None) -> str | None:
    """`text` as Postgres text can hold it: without NUL characters."""
    return None if text is None else text.replace("\x00", "")


def failed_copy(result: BatchResult, reason: str) -> BatchResult:
    """`result` with every item failed for `reason`, its texts fit for the ledger: what is
    recorded when the result itself cannot be."""
    return BatchResult(
        job_id=result.job_id,
        attempt=result.attempt,
        batch=result.batch,
        renderer=result.renderer,
        delivery=result.delivery,
        items=[
            ItemResult(
                index=item.index,
                ok=False,
                row=item.row,
                error=storable(clip(reason)),
                text=storable(item.text),
                name=storable(item.name),
                style={storable(k) or "": storable(v) or "" for k, v in item.style.items()}
                if item.style
                else None,
            )
            for item in result.items
        ],
    )
