"""Publishing job lifecycle events on `imagegen.events.<job_id>.<kind>`.

Terminal and one-off events carry a `Nats-Msg-Id` of (job, attempt, kind), so when two writers
or a redelivery announce the same transition the stream keeps one copy. A publish waits out a
stream without a leader (`shared.runtime.bus.publish`).
"""

from __future__ import annotations

from nats.js.client import JetStreamContext

from shared.contract.codec import encode_json
from shared.contract.messages import JobEvent, JobInfo, clip
from shared.contract.subjects import events_subject
from shared.runtime.bus.publish import publish
from shared.runtime.logging import get_logger

log = get_logger(__name__)

MAX_EVENT_MESSAGE = 4000  # characters: an event stays small whatever a reason quotes


def event_from_job(job: JobInfo, kind: str, message: str | None = None) -> JobEvent:
    return JobEvent(
        job_id=job.job_id,
        kind=kind,  # type: ignore[arg-type]  # checked by events_subject below
        status=job.status,
        attempt=job.attempt,
        total=job.total,
        done=job.done,
        failed=job.failed,
        incomplete=job.incomplete,
        output=job.output,
        message=clip(message if message is not None else job.error or "", MAX_EVENT_MESSAGE) or None,
    )


async def publish_event(js: JetStreamContext, event: JobEvent) -> None:
    headers = None
    if event.kind != "progress":
        headers = {"Nats-Msg-Id": f"{event.job_id}:{event.attempt}:{event.kind}"}
    await publish(js, events_subject(event.job_id, event.kind), encode_json(event), headers=headers)
    log.info("job.event", job_id=event.job_id, kind=event.kind, done=event.done, failed=event.failed)


async def announce(js: JetStreamContext, job: JobInfo, kind: str, message: str | None = None) -> None:
    """Publish the event of kind `kind` for `job`'s current state."""
    await publish_event(js, event_from_job(job, kind, message))
