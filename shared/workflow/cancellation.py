"""Job cancellation as ingest sees it: a key per cancelled job in a NATS KV bucket.

result-notifier writes the key when a job is cancelled, holding the attempt it cancelled (a
resumed job's next attempt is not cancelled by it); ingest watches it while it streams rows
(`CancelWatch`, which also interrupts a source blocked in a read). Renderers need not: a cancelled
job leaves the active-jobs bucket (`shared.workflow.active`). Reads are cached for a second per
job, so the check costs at most one round trip per job per second per process, whatever the
batch rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from nats.js.client import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from shared.contract.subjects import BUCKET_CANCELLED, validate_job_id
from shared.runtime.tasks import cancel_and_wait

CACHE_SECONDS = 1.0

T = TypeVar("T")


class Cancellations:
    def __init__(self, js: JetStreamContext, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self.js = js
        self.cache_seconds = cache_seconds
        self._kv: KeyValue | None = None
        self._cache: dict[str, tuple[float, int]] = {}  # job -> (when asked, cancelled attempt or 0)

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.js.key_value(BUCKET_CANCELLED)
        return self._kv

    async def cancel(self, job_id: str, attempt: int) -> None:
        kv = await self._bucket()
        await kv.put(validate_job_id(job_id), str(attempt).encode())
        self._cache[job_id] = (time.monotonic(), attempt)

    async def is_cancelled(self, job_id: str, attempt: int) -> bool:
        now = time.monotonic()
        cached = self._cache.get(job_id)
        if cached and (cached[1] >= attempt or now - cached[0] < self.cache_seconds):
            return cached[1] >= attempt  # a cancelled attempt stays cancelled: no need to ask
        try:
            kv = await self._bucket()
            entry = await kv.get(job_id)
            cancelled_attempt = int(entry.value or b"0") if (entry.value or b"").isdigit() else 0
        except (KeyNotFoundError, KeyDeletedError, NotFoundError):
            cancelled_attempt = 0
        except Exception:
            # NATS unreachable: keep working on what we know; the next check will ask again.
            return cached[1] >= attempt if cached else False
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[job_id] = (now, cancelled_attempt)
        return cancelled_attempt >= attempt


class CancelWatch:
    """Watches one job's cancellation while its source is read, and interrupts a read.

    A source can block for a long time inside one read (a query that computes before its first
    row, a cursor fetch of a slow expression), so a check between rows would only see the
    cancellation once the read returns. The watch polls beside the reader every `interval`
    seconds and cancels the reading task, but only while it waits inside the source: never in
    the publisher, whose counts must stay exact. Use it as `async with` in the reading task.
    """

    def __init__(self, cancellations: Cancellations, job_id: str, attempt: int, *, interval: float) -> None:
        self.cancellations = cancellations
        self.job_id = job_id
        self.attempt = attempt
        self.interval = interval
        self.cancelled = False
        self._reading = False
        self._interrupted = False
        self._stopped = False
        self._reader: asyncio.Task[Any] | None = None
        self._poller: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CancelWatch:
        self._reader = asyncio.current_task()
        self._poller = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stopped = True  # a poller that lost its cancellation still ends at its next look
        if self._poller is not None:
            await cancel_and_wait(self._poller)

    async def _poll(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self.interval)
            if await self.cancellations.is_cancelled(self.job_id, self.attempt):
                self.cancelled = True
                if self._reading and self._reader is not None:
                    self._interrupted = True
                    self._reader.cancel()
                return

    async def read(self, rows: AsyncIterator[T]) -> T | None:
        """The next item of `rows`; None at the end or when the job was cancelled meanwhile."""
        if self.cancelled:
            return None
        self._reading = True
        try:
            return await anext(rows)
        except StopAsyncIteration:
            return None
        except asyncio.CancelledError:
            # Ours alone (nobody else cancelled the task too): the job stops, the task goes on.
            if self._interrupted and self._reader is not None and self._reader.uncancel() == 0:
                return None
            raise
        finally:
            self._reading = False
