"""Fairness between jobs in the task queue: a job keeps at most `max_queued` batches in it.

The queue is FIFO, so a job that queued all its batches at once would make every job submitted
after it wait for its whole duration; capped, a big job is fed in as it is consumed and a later
small job's batches sit behind at most `max_queued` of them.

Every look at the queue is a stream-info request, parsed by ingest and answered by the server,
so how often to look matters: a job past the cap looks once every `CHECK_EVERY` batches, and
while its share of the queue is full it sleeps about as long as the renderers take to consume
the batches over the cap, at the rate they consumed its batches over the last few seconds. The
renderers' consumer is asked too (is anything waiting for a renderer at all?) only while no such
rate is known: a check is then two looks, the count before and after the sleep. (A backoff from
50 ms, asking the consumer at every look, cost about ten requests per check when a batch takes
0.1 s to render; asking it at every check's first look, three.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from nats.js.client import JetStreamContext

from shared.contract.subjects import CONSUMER_RENDERER, STREAM_TASKS
from shared.runtime.logging import get_logger

log = get_logger(__name__)

CHECK_EVERY = 4  # batches published between looks once the cap is reached
MIN_SLEEP = 0.05
MAX_SLEEP = 1.0
RATE_WINDOW = 5.0  # seconds of looks the consumption rate is measured over
# The longest one check holds a job back: fairness is a preference, a job's progress is not. (A
# job's last batch once waited here for minutes while the server reported none of its batches
# queued to another connection; the cause is not known.)
MAX_WAIT = 30.0


class QueueCap:
    """The cap of one job's batches in the task queue (`max_queued`; 0: no cap)."""

    def __init__(
        self,
        js: JetStreamContext,
        job_id: str,
        subject: str,
        max_queued: int,
        unavailable: tuple[type[Exception], ...],
        *,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self.js = js
        self.job_id = job_id
        self.subject = subject
        self.max_queued = max_queued
        self.unavailable = unavailable  # errors that mean "cannot tell now": publish, let it retry
        self.max_wait = max_wait
        self.looks = 0  # requests made to look at the queue (tests)
        self._seen: deque[tuple[float, int]] = deque()  # (when, batches consumed) at each look

    async def wait(self, published: int) -> None:
        """Return once the job, with `published` batches published so far, may publish one more."""
        if not self.max_queued or published < self.max_queued or published % CHECK_EVERY:
            return
        sleep, waited, started = MIN_SLEEP, 0.0, time.monotonic()
        while True:
            try:
                queued = await self._queued()
                rate = self._consumption_rate(published - queued)
                if queued < self.max_queued:
                    return
                # Asked only while no rate is known (the first check, a count that has not
                # moved): with one, the sleep below ends before the renderers, which hold at
                # most the count, can run out of this job's batches.
                if rate is None and await self._nothing_pending():
                    if rate is None and waited >= MAX_SLEEP:
                        log.warning("tasks.queue_count_ignored", job_id=self.job_id, queued=queued)
                    return
            except self.unavailable:
                return  # cannot tell now: the publish path has its own retry
            if time.monotonic() - started >= self.max_wait:
                await self._give_up(queued, time.monotonic() - started)
                return
            if rate:
                sleep = (queued - self.max_queued + 1) / rate  # until the excess is consumed
            elif waited:
                sleep *= 2
            sleep = min(max(sleep, MIN_SLEEP), MAX_SLEEP)
            await asyncio.sleep(sleep)
            waited += sleep

    async def _give_up(self, queued: int, seconds: float) -> None:
        """Publish after all, saying what the queue looked like (for the cause, still unknown)."""
        pending: int | None = None
        with contextlib.suppress(Exception):
            pending = (await self.js.consumer_info(STREAM_TASKS, CONSUMER_RENDERER)).num_pending
        log.warning(
            "tasks.fairness_wait_ended",
            job_id=self.job_id,
            queued=queued,
            renderers_pending=pending,
            seconds=round(seconds, 1),
            looks=self.looks,
        )

    async def _queued(self) -> int:
        self.looks += 1
        info = await self.js.stream_info(STREAM_TASKS, subjects_filter=self.subject)
        return (info.state.subjects or {}).get(self.subject, 0)

    def _consumption_rate(self, consumed: int) -> float | None:
        """Batches of this job consumed per second over the last `RATE_WINDOW` seconds of looks
        (None: none were, or the looks are too close together to tell). Looks a few
        milliseconds apart (the end of one wait, the start of the next) say nothing on their own."""
        now = time.monotonic()
        self._seen.append((now, consumed))
        while len(self._seen) > 2 and now - self._seen[1][0] >= RATE_WINDOW:
            self._seen.popleft()
        then, before = self._seen[0]
        if consumed <= before or now - then < MIN_SLEEP:
            return None
        return (consumed - before) / (now - then)

    async def _nothing_pending(self) -> bool:
        """No task waits for delivery to a renderer: the renderers hold all there is, so no job
        is behind this one and publishing is fair. This also unwedges a job whose count never
        falls: the per-subject count is the server's bookkeeping, which has drifted after
        removals in several nats-server releases (e.g. nats-server #5214, #6226)."""
        self.looks += 1
        consumer = await self.js.consumer_info(STREAM_TASKS, CONSUMER_RENDERER)
        return not consumer.num_pending
