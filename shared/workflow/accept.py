"""The submit edge of every source: record the job, queue it durably, reply.

Order matters for "loses nothing": the job row is written first, then the request is published
to the work-queue stream with `Nats-Msg-Id` = job id, and only then does the client hear
`Accepted`. A re-submit with the same client job id finds the row and gets the same job back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import nats.errors
from nats.js.client import JetStreamContext
from nats.js.errors import APIError

from shared.contract.codec import encode_json
from shared.contract.errors import Busy
from shared.contract.messages import Accepted, IngestRequest
from shared.contract.states import EventKind
from shared.contract.subjects import (
    STREAM_REQUESTS,
    STREAM_TASKS,
    events_filter,
    new_job_id,
    results_subject,
    validate_job_id,
)
from shared.contract.submit import SubmitBase
from shared.runtime import metrics
from shared.runtime.bus.publish import JS_UNAVAILABLE, publish
from shared.runtime.ledger import Ledger
from shared.runtime.logging import get_logger
from shared.sources import SourceSpec
from shared.workflow.active import ActiveJobs
from shared.workflow.events import announce

log = get_logger(__name__)


FULL_AT = 0.9  # share of a work queue's byte or message limit at which submits are refused
# How long a submit waits for the request stream to have a leader (an election on a cluster
# takes a few seconds) before it is answered Busy.
_QUEUE_WAIT = 10.0
_NOT_QUEUED: tuple[type[Exception], ...] = (APIError, *JS_UNAVAILABLE)
_full_until = 0.0


async def refuse_when_full(js: JetStreamContext) -> None:
    """Refuse new work with `Busy` while the task or request queue is near its limits.

    Those streams discard *new* messages when full, so accepted work is never dropped; this
    check turns "the queue is full" into a clear answer at submit time instead of a job that
    stalls. A full verdict is remembered for a second so a burst of submits costs one lookup.
    """
    global _full_until
    loop = asyncio.get_running_loop()
    if loop.time() < _full_until:
        raise Busy("the render queue is full; try again shortly", field=None)
    for stream in (STREAM_TASKS, STREAM_REQUESTS):
        try:
            info = await js.stream_info(stream)
        except (APIError, nats.errors.TimeoutError) as exc:
            raise Busy(f"the queue is not reachable right now ({exc})") from exc
        limits, state = info.config, info.state
        over_bytes = bool(
            limits.max_bytes and limits.max_bytes > 0 and state.bytes >= FULL_AT * limits.max_bytes
        )
        over_msgs = bool(
            limits.max_msgs and limits.max_msgs > 0 and state.messages >= FULL_AT * limits.max_msgs
        )
        if over_bytes or over_msgs:
            _full_until = loop.time() + 1.0
            log.warning("submit.busy", stream=stream, bytes=state.bytes, messages=state.messages)
            raise Busy(
                f"the {'render' if stream == STREAM_TASKS else 'request'} queue is full; try again shortly"
            )


async def accept_submit(
    js: JetStreamContext,
    ledger: Ledger,
    spec: SourceSpec[Any],
    submit: SubmitBase,
    *,
    output_for: Callable[[str], str],
    active: ActiveJobs,
) -> Accepted:
    """Create (or find) the job for a checked submit and hand it to ingest."""
    job_id = validate_job_id(submit.job_id) if submit.job_id else new_job_id()
    await refuse_when_full(js)
    job, created = await ledger.create_job(job_id, spec.name, encode_json(submit), output_for(job_id))
    # The audit line: who asked is bound by the endpoint wrapper (the client's name / user).
    log.info("audit.submit", job_id=job_id, source=spec.name, created=created)
    if created:
        # Active before its first task can exist: renderers render only active jobs' tasks.
        await active.start(job_id, job.attempt)
        request = IngestRequest(job_id=job_id, attempt=job.attempt, source=spec.name)
        try:
            await publish(
                js,
                spec.requests_subject,
                encode_json(request),
                headers={"Nats-Msg-Id": f"{job_id}:{job.attempt}"},
                timeout=5,
                retry_for=_QUEUE_WAIT,
            )
        except _NOT_QUEUED as exc:
            await ledger.fail_job(job_id, job.attempt, f"could not queue the request: {exc}")
            await active.end(job_id)
            raise Busy(f"the request queue is not accepting work right now ({exc})") from exc
        metrics.JOBS.labels(state="accepted").inc()
        await announce(js, job, EventKind.ACCEPTED)
    return Accepted(
        job_id=job_id,
        status=job.status,
        results_subject=results_subject(job_id),
        events_subject=events_filter(job_id),
        duplicate=not created,
    )
