"""Which jobs may be rendered, and at which attempt: a key per active job in a NATS KV bucket.

A job's key holds its current attempt. It is written before the attempt's first task exists
(ingest when it accepts the job, result-notifier when it starts a retry) and purged when the job
ends (completed, failed or cancelled). A renderer renders a task only while its job's key names
the task's attempt, so a task for a job that does not exist, has ended or belongs to an older
attempt is skipped, whoever published it. Only ingest and result-notifier may write the bucket.

A renderer asks once per task (one key read: a round trip to NATS per batch of items) and caches
nothing: a cached "active" would let a task slip through just after its job ended, and a cached
answer about another attempt would skip a retry's first tasks.
"""

from __future__ import annotations

import nats.errors
from nats.js.client import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from shared.contract.subjects import BUCKET_ACTIVE, validate_job_id
from shared.runtime.logging import get_logger

log = get_logger(__name__)


class ActiveJobs:
    def __init__(self, js: JetStreamContext, *, marker_seconds: float = 3600.0) -> None:
        self.js = js
        # How long the purge marker of an ended job stays (its key then vanishes entirely).
        self.marker_seconds = marker_seconds
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.js.key_value(BUCKET_ACTIVE)
        return self._kv

    async def start(self, job_id: str, attempt: int) -> None:
        """`job_id` may be rendered at `attempt` (and no longer at an earlier one)."""
        kv = await self._bucket()
        await kv.put(validate_job_id(job_id), str(attempt).encode())

    async def end(self, job_id: str) -> None:
        """`job_id` has ended: none of its tasks may be rendered any more."""
        kv = await self._bucket()
        await kv.purge(validate_job_id(job_id), msg_ttl=self.marker_seconds)

    async def current_attempt(self, job_id: str) -> int | None:
        """The attempt `job_id` may be rendered at, or None if it is unknown or has ended."""
        kv = await self._bucket()
        try:
            entry = await kv.get(job_id)
        except (KeyNotFoundError, KeyDeletedError, NotFoundError):
            return None
        try:
            return int(entry.value or b"")
        except ValueError:
            return None

    async def may_render(self, job_id: str, attempt: int) -> bool:
        """True while `job_id` is active at `attempt`. When the bucket cannot be read (NATS
        trouble) the task is rendered: skipping would lose work a renderer was right to do."""
        try:
            return await self.current_attempt(job_id) == attempt
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            log.warning("active.unreadable", job_id=job_id, error=str(exc) or type(exc).__name__)
            return True
