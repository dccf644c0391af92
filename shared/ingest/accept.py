"""The submit edge both ingest services share: record the job, queue it durably, reply.

Order matters for "loses nothing": the job row is written first, then the request is published
to the work-queue stream with `Nats-Msg-Id` = job id, and only then does the client hear
`Accepted`. A re-submit with the same client job id finds the row and gets the same job back.
"""

from __future__ import annotations

from collections.abc import Callable

import nats.errors
from nats.js.client import JetStreamContext
from nats.js.errors import APIError

from shared import metrics
from shared.errors import Busy
from shared.events import announce
from shared.ledger import Ledger
from shared.logging import get_logger
from shared.messages import Accepted, IngestRequest, SubmitCsv, SubmitDb, encode_json
from shared.subjects import (
    REQUESTS_CSV,
    REQUESTS_DB,
    events_filter,
    new_job_id,
    results_subject,
    validate_job_id,
)

log = get_logger(__name__)


async def accept_submit(
    js: JetStreamContext,
    ledger: Ledger,
    submit: SubmitCsv | SubmitDb,
    *,
    output_for: Callable[[str], str],
) -> bytes:
    """Create (or find) the job for a validated submit and hand it to ingest. Returns the reply."""
    source = "csv" if isinstance(submit, SubmitCsv) else "db"
    job_id = validate_job_id(submit.job_id) if submit.job_id else new_job_id()
    job, created = await ledger.create_job(job_id, source, encode_json(submit), output_for(job_id))
    log.info("job.submitted", job_id=job_id, source=source, created=created)
    if created:
        request = (
            IngestRequest(job_id=job_id, attempt=job.attempt, csv=submit)
            if isinstance(submit, SubmitCsv)
            else IngestRequest(job_id=job_id, attempt=job.attempt, db=submit)
        )
        try:
            await js.publish(
                REQUESTS_CSV if source == "csv" else REQUESTS_DB,
                encode_json(request),
                headers={"Nats-Msg-Id": f"{job_id}:{job.attempt}"},
                timeout=5,
            )
        except (APIError, nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            await ledger.fail_job(job_id, job.attempt, f"could not queue the request: {exc}")
            raise Busy(f"the request queue is not accepting work right now ({exc})") from exc
        metrics.JOBS.labels(state="accepted").inc()
        await announce(js, job, "accepted")
    return encode_json(
        Accepted(
            job_id=job_id,
            status=job.status,
            results_subject=results_subject(job_id),
            events_subject=events_filter(job_id),
            duplicate=not created,
        )
    )
