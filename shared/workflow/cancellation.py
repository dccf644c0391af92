"""Job cancellation as ingest sees it: a key per cancelled job in a NATS KV bucket.

result-notifier writes the key when a job is cancelled; ingest checks it while it streams rows.
(Renderers need not: a cancelled job leaves the active-jobs bucket, `shared.workflow.active`.)
Reads are cached for a second per job, so the check costs at most one round trip per job per
second per process, whatever the batch rate.
"""

from __future__ import annotations

import time

from nats.js.client import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from shared.contract.subjects import BUCKET_CANCELLED, validate_job_id

CACHE_SECONDS = 1.0


class Cancellations:
    def __init__(self, js: JetStreamContext, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self.js = js
        self.cache_seconds = cache_seconds
        self._kv: KeyValue | None = None
        self._cache: dict[str, tuple[float, bool]] = {}

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.js.key_value(BUCKET_CANCELLED)
        return self._kv

    async def cancel(self, job_id: str, reason: str = "cancelled") -> None:
        kv = await self._bucket()
        await kv.put(validate_job_id(job_id), reason.encode("utf-8"))
        self._cache[job_id] = (time.monotonic(), True)

    async def is_cancelled(self, job_id: str) -> bool:
        now = time.monotonic()
        cached = self._cache.get(job_id)
        if cached and (cached[1] or now - cached[0] < self.cache_seconds):
            return cached[1]  # a cancellation is final: no need to ask again
        try:
            kv = await self._bucket()
            await kv.get(job_id)
            cancelled = True
        except (KeyNotFoundError, KeyDeletedError, NotFoundError):
            cancelled = False
        except Exception:
            # NATS unreachable: keep working on what we know; the next check will ask again.
            return cached[1] if cached else False
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[job_id] = (now, cancelled)
        return cancelled
