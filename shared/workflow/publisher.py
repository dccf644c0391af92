"""Batching rows into render tasks and publishing them with flow control.

Items are grouped `batch_size` to a message (the messaging cost per item then all but vanishes)
and never more than the per-batch byte budget allows (`shared/runtime/bus/limits.py`: a task
and its result both fit the server's max_payload; a row too large for any message fails as its
own item with the reason). Each task carries `Nats-Msg-Id` = job:attempt:batch so a re-ingest
after a crash is deduplicated, and at most `window` publishes, and `IN_FLIGHT_BATCHES` budgets
of bytes, are in flight: ingest never outruns JetStream and its memory per job stays a few
budgets whatever the row size. A publish the server refuses (a stream at its limit, a restart)
is retried until it lands: stall, never drop.
"""

from __future__ import annotations

import asyncio

import msgspec
from nats.js.client import JetStreamContext
from nats.js.errors import APIError

from shared.contract.codec import encode_msgpack
from shared.contract.messages import RenderItem, RenderTask
from shared.contract.style import Style
from shared.contract.subjects import tasks_subject
from shared.runtime import metrics
from shared.runtime.bus.limits import TaskBudget, item_sizes, items_sizes
from shared.runtime.bus.publish import JS_UNAVAILABLE
from shared.runtime.logging import get_logger
from shared.workflow.fairness import QueueCap

log = get_logger(__name__)

IN_FLIGHT_BATCHES = 4  # byte budgets being published at once, per job

# A stream without a leader, and one at its limit (discard new: an APIError): wait, never drop.
_RETRYABLE: tuple[type[Exception], ...] = (*JS_UNAVAILABLE, APIError)


class TaskPublisher:
    """Collects items and publishes them as `RenderTask` batches for one job attempt."""

    def __init__(
        self,
        js: JetStreamContext,
        job_id: str,
        attempt: int,
        style: Style,
        *,
        batch_size: int,
        budget: TaskBudget,
        ramp_from: int | None = 8,
        max_queued: int = 0,
        window: int = 64,
        cancelled: asyncio.Event | None = None,
    ) -> None:
        self.js = js
        self.job_id = job_id
        self.attempt = attempt
        self.style = style
        self.batch_size = batch_size
        # Batches start small and double up to `batch_size`: a small job still spreads over
        # every replica at once, a large one soon pays the per-message cost once per
        # `batch_size` items (bench/bench_pipeline.py: the CPU per row of nats-server,
        # result-notifier, ingest and the renderer's parent halves again from 128 to 512).
        self._size = min(batch_size, ramp_from) if ramp_from else batch_size
        self.subject = tasks_subject(job_id)
        self.cap = QueueCap(js, job_id, self.subject, max_queued, _RETRYABLE)  # fairness between jobs
        self.items_published = 0
        self.batches_published = 0
        self.items_added = self.batches_stored = 0  # progress, as a stall report sees it
        self.budget = budget
        self._pending: list[RenderItem] = []
        self._ready: list[tuple[list[RenderItem], int]] = []  # sealed batches and their item bytes
        self._pending_bytes = self._pending_result = 0
        self._overhead = (
            len(encode_msgpack(RenderTask(job_id=job_id, attempt=attempt, batch=0, items=[], style=style)))
            + 16
        )
        self._slots = asyncio.Semaphore(window)
        self._bytes_free = asyncio.Condition()
        self._in_flight_bytes = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    async def add(self, item: RenderItem) -> None:
        """Queue `item` and publish the batch it completes."""
        if self.put(item):
            await self.publish_ready()

    def put(self, item: RenderItem) -> bool:
        """Queue `item` (no await: ingest puts every row); True when a batch is ready, for
        `publish_ready`."""
        self.items_added += 1
        size, result = item_sizes(item)
        if not self.budget.fits_alone(self._overhead, size, result):
            # No message could carry it: it fails alone, without its text, the job goes on.
            reason = self.budget.too_large_reason(self._overhead + size, result)
            item = msgspec.structs.replace(item, text="", error=reason, style=None)
            size, result = item_sizes(item)
        if self._pending and not self._fits(size, result):
            self._seal()
        self._queue([item], size, result)
        return bool(self._ready)

    def put_many(self, items: list[RenderItem]) -> bool:
        """Queue `items` in order, making the very batches `put` would make one item at a time,
        but sized together (`items_sizes`) wherever all of them fit the batch being filled;
        True when a batch is ready, for `publish_ready`."""
        at = 0
        while at < len(items):
            part = items[at : at + self._size - len(self._pending)]  # up to the count's cut
            at += len(part)
            if not self._take(part):
                for item in part:
                    self.put(item)
        return bool(self._ready)

    def _take(self, part: list[RenderItem]) -> bool:
        """Queue `part` whole if it fits the batch being filled (then every item of it would
        have, one at a time, and no cut by bytes falls inside it); False: nothing queued."""
        size, result = items_sizes(part)
        if not self._fits(size, result):
            return False
        self.items_added += len(part)
        self._queue(part, size, result)
        return True

    def _fits(self, size: int, result: int) -> bool:
        """Whether items of `size` task bytes and `result` bound still fit the batch being filled."""
        return (
            self._overhead + self._pending_bytes + size <= self.budget.bytes
            and self._pending_result + result <= self.budget.result_bytes
        )

    def _queue(self, items: list[RenderItem], size: int, result: int) -> None:
        """Add `items` to the batch being filled; seal it at the count (which doubles up to
        `batch_size`)."""
        self._pending.extend(items)
        self._pending_bytes += size
        self._pending_result += result
        if len(self._pending) >= self._size:
            self._size = min(self._size * 2, self.batch_size)
            self._seal()

    def _seal(self) -> None:
        """The pending items become a batch ready to publish."""
        self._ready.append((self._pending, self._pending_bytes))
        self._pending = []
        self._pending_bytes = self._pending_result = 0

    async def publish_ready(self) -> None:
        """Publish the batches `put` made ready, in order (waiting for room as `_flush` does)."""
        while self._ready:
            items, size = self._ready.pop(0)
            await self._publish_batch(items, size)

    async def _flush(self) -> None:
        """Publish every ready batch and what is pending."""
        if self._pending:
            self._seal()
        await self.publish_ready()

    async def _publish_batch(self, items: list[RenderItem], size: int) -> None:
        if self._failure:
            raise self._failure
        task = RenderTask(
            job_id=self.job_id,
            attempt=self.attempt,
            batch=self.batches_published,
            items=items,
            style=self.style,
        )
        weight = self._overhead + size
        await self.cap.wait(self.batches_published)
        self.batches_published += 1
        self.items_published += len(task.items)
        await self._slots.acquire()
        async with self._bytes_free:
            limit = IN_FLIGHT_BATCHES * self.budget.bytes
            await self._bytes_free.wait_for(
                lambda: self._in_flight_bytes + weight <= limit or not self._in_flight_bytes
            )
            self._in_flight_bytes += weight
        publish = asyncio.create_task(self._publish(task, weight))
        self._in_flight.add(publish)
        publish.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() and self._failure is None:
            self._failure = task.exception()

    async def _publish(self, task: RenderTask, weight: int) -> None:
        try:
            await self._publish_until_stored(task)
        finally:
            async with self._bytes_free:
                self._in_flight_bytes -= weight
                self._bytes_free.notify_all()

    async def _publish_until_stored(self, task: RenderTask) -> None:
        payload = encode_msgpack(task)
        headers = {"Nats-Msg-Id": f"{task.job_id}:{task.attempt}:{task.batch}"}
        delay = 0.1
        while True:
            try:
                await self.js.publish(self.subject, payload, headers=headers, timeout=10)
                self.batches_stored += 1
                return
            except _RETRYABLE as exc:
                # A full work queue (discard=new) or a server restart: wait for room.
                log.warning(
                    "tasks.publish_retry",
                    job_id=task.job_id,
                    batch=task.batch,
                    error=str(exc) or type(exc).__name__,
                    retry_in=delay,
                )
                metrics.PUBLISH_WAITS.inc()
                metrics.PUBLISH_WAIT_SECONDS.inc(delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def discard_pending(self) -> None:
        """Forget items not yet sent (the job was cancelled); in-flight publishes still land."""
        self._pending = []
        self._ready = []
        self._pending_bytes = self._pending_result = 0

    async def close(self) -> tuple[int, int]:
        """Publish what is left, wait for every publish; return (items, batches)."""
        await self._flush()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._failure:
            raise self._failure
        return self.items_published, self.batches_published
