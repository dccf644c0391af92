"""Completing a job: write its manifest beside the images, then announce `completed`.

A job completes in whichever service records the last count (result-notifier for the last result,
or ingest when the totals arrive after every result); both call `complete_job` here. The manifest
(one CSV row per item, built from the job's results: `shared/workflow/manifest.py`) is
stored through the deployment's image store (a file in the job's folder, or an object beside
the images in the bucket) and the `completed` event names it (`JobEvent.manifest`).
"""

from __future__ import annotations

import msgspec
from nats.js.client import JetStreamContext

from shared.contract.messages import JobEvent, JobInfo
from shared.runtime.logging import get_logger
from shared.storage import ImageStore
from shared.workflow.active import ActiveJobs
from shared.workflow.events import event_from_job, publish_event
from shared.workflow.manifest import Spool, write_manifest
from shared.workflow.results import Heartbeat

log = get_logger(__name__)


async def complete_job(
    js: JetStreamContext,
    job: JobInfo,
    store: ImageStore,
    active: ActiveJobs,
    *,
    heartbeat: Heartbeat | None = None,
    recorded: Spool | None = None,
) -> JobEvent:
    """End a completed job (no task of it is rendered any more), write its manifest (from
    `recorded`, the lines spooled as its results were counted, when they hold the job), then
    publish its `completed` event naming it."""
    await active.end(job.job_id)
    event = event_from_job(job, "completed")
    try:
        summary = await write_manifest(js, job, store, heartbeat=heartbeat, recorded=recorded)
        log.info(
            "manifest.written",
            job_id=job.job_id,
            location=summary.location,
            rows=summary.rows,
            built=summary.built,
        )
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
