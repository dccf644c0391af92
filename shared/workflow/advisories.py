"""MAX_DELIVERIES advisories: a work-queue message that no consumer survived becomes a recorded
failure instead of a job that waits for ever.

When every delivery of a message ends without an ack (the process holding it died each time:
the OOM killer, a native crash), the server stops delivering it, keeps it in the work-queue
stream and announces `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>` with its
sequence. The `IMAGEGEN_ADVISORIES` stream keeps those announcements; result-notifier pulls them
here. The message is read back by sequence: a render task's items are published as failed
results (so the ledger, the manifest and `jobs retry` see them like any other failure), a
request fails its job; then the message is deleted from the work queue. A message the stream no
longer holds is logged with what the advisory says; its job then ends through the watchdog.
"""

from __future__ import annotations

import contextlib

from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from shared.contract.codec import decode_json, decode_msgpack
from shared.contract.errors import BadRequest
from shared.contract.messages import BatchResult, IngestRequest, MaxDeliveries, RenderTask, failed_item
from shared.contract.subjects import STREAM_REQUESTS, STREAM_TASKS, results_subject
from shared.runtime.bus.limits import encode_result, payload_budget
from shared.runtime.bus.publish import publish
from shared.runtime.ledger import Ledger
from shared.runtime.logging import get_logger
from shared.workflow.active import ActiveJobs
from shared.workflow.cancellation import Cancellations
from shared.workflow.failure import fail_job

log = get_logger(__name__)


def reason_of(advisory: MaxDeliveries, what: str) -> str:
    return (
        f"the {what} was delivered {advisory.deliveries} times and its {advisory.consumer} consumer "
        "never finished it (the process died each time: MAX_DELIVERIES)"
    )


class Undelivered:
    """Turns MAX_DELIVERIES advisories into recorded failures."""

    def __init__(
        self,
        js: JetStreamContext,
        ledger: Ledger,
        active: ActiveJobs,
        cancellations: Cancellations,
        instance: str,
    ) -> None:
        self.js = js
        self.ledger = ledger
        self.active = active
        self.cancellations = cancellations
        self.instance = instance

    async def handle(self, advisory: MaxDeliveries) -> None:
        """Record the failure the advisory means, then delete the message it names."""
        where = {"stream": advisory.stream, "consumer": advisory.consumer, "seq": advisory.stream_seq}
        if advisory.stream not in (STREAM_TASKS, STREAM_REQUESTS):
            log.warning("advisory.ignored", **where)
            return
        try:
            stored = await self.js.get_msg(advisory.stream, advisory.stream_seq)
        except NotFoundError:
            log.error("advisory.message_gone", deliveries=advisory.deliveries, **where)
            return
        data = stored.data or b""
        try:
            if advisory.stream == STREAM_TASKS:
                await self._task(decode_msgpack(data, RenderTask), advisory)
            else:
                await self._request(decode_json(data, IngestRequest), advisory)
        except BadRequest as exc:
            log.error("advisory.message_malformed", error=str(exc), **where)
        with contextlib.suppress(NotFoundError):
            await self.js.delete_msg(advisory.stream, advisory.stream_seq)

    async def _task(self, task: RenderTask, advisory: MaxDeliveries) -> None:
        """Publish the task's items as failed, under the id its renderer's result would carry:
        if a renderer did publish one before dying, the stream keeps that one."""
        reason = reason_of(advisory, "render task")
        log.error("advisory.task_failed", job_id=task.job_id, batch=task.batch, items=len(task.items))
        result = BatchResult(
            job_id=task.job_id,
            attempt=task.attempt,
            batch=task.batch,
            items=[failed_item(item, reason) for item in task.items],
            renderer=self.instance,
            delivery=advisory.deliveries,
        )
        await publish(
            self.js,
            results_subject(task.job_id),
            encode_result(result, payload_budget(self.js._nc)),  # the context's connection
            headers={"Nats-Msg-Id": f"{task.job_id}:{task.attempt}:{task.batch}"},
        )

    async def _request(self, request: IngestRequest, advisory: MaxDeliveries) -> None:
        log.error("advisory.request_failed", job_id=request.job_id, attempt=request.attempt)
        await fail_job(
            self.js,
            self.ledger,
            self.active,
            request.job_id,
            request.attempt,
            reason_of(advisory, "ingest request"),
            cancellations=self.cancellations,
        )
