"""Previews, isolated like batches: rendered in a render child of their own, never in the replica.

A preview is one text rendered on request, and its style may ask for a 6,300 x 6,300 canvas with
a blur: seconds of CPU and a gigabyte of memory. Rendered in the replica's own process it once
held the event loop's thread pool, grew the replica past its container limit and never gave the
memory back. Here it runs in a separate child process (`RenderWorker`, as batches do) that:

- has the item timeout (`IMAGEGEN_ITEM_TIMEOUT_SECONDS`): a render past it kills and replaces
  the child, and the preview is answered with the reason;
- may allocate at most `IMAGEGEN_PREVIEW_MEMORY_MB` beyond its started size (RLIMIT_AS): a
  render that needs more fails with the reason instead of growing the replica;
- is restarted when its resident memory stays above its started size plus that cap, so the
  replica returns to its baseline;
- runs at a lower CPU priority than the batch child, `IMAGEGEN_PREVIEW_CONCURRENCY` at a time
  with a short queue (`Busy` beyond it): previews cannot starve job rendering.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from services.renderer.worker import RenderWorker, WorkerLost
from shared.contract.codec import encode_msgpack
from shared.contract.errors import Busy, RenderError, TooLarge
from shared.contract.messages import RenderItem, RenderTask
from shared.contract.style import Style
from shared.runtime.logging import get_logger
from shared.runtime.settings import Settings

log = get_logger(__name__)

_JOB = "preview"  # a task needs a job id; previews belong to no job
_QUEUE_PER_SLOT = 2  # previews that may wait, per concurrent one, before `Busy`
PREVIEW_NICE = 10  # below the batch child: job rendering gets the CPU first
RECYCLE_ABOVE_MB = 128  # a child this far above its started size is replaced after a preview
# A preview is answered within the clients' and the gateway's default 10 s request timeout.
PREVIEW_REPLY_SECONDS = 8.0


class PreviewPool:
    """`concurrency` preview children, each driven from its own thread."""

    def __init__(self, settings: Settings, *, font_dirs: list[Path], faults: bool = False) -> None:
        self.timeout = min(settings.item_timeout_seconds, PREVIEW_REPLY_SECONDS)
        self.memory_mb = settings.preview_memory_mb
        self.concurrency = settings.preview_concurrency
        self._idle: asyncio.Queue[tuple[RenderWorker, ThreadPoolExecutor]] = asyncio.Queue()
        self._waiting = 0
        self._workers = [
            RenderWorker(
                font_dirs=font_dirs,
                output_dir=None,
                faults=faults,
                memory_mb=self.memory_mb,
                nice=PREVIEW_NICE,
                warm=False,  # a preview's style says nothing about the next one
            )
            for _ in range(self.concurrency)
        ]
        self._executors = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview") for _ in self._workers
        ]

    async def start(self) -> None:
        """Start the children (in their threads: a child takes seconds to load its fonts)."""
        loop = asyncio.get_running_loop()
        for worker, executor in zip(self._workers, self._executors, strict=True):
            loop.run_in_executor(executor, worker.start)
            self._idle.put_nowait((worker, executor))

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for worker, executor in zip(self._workers, self._executors, strict=True):
            await loop.run_in_executor(executor, worker.stop)
            executor.shutdown(wait=True)

    async def render(self, text: str, style: Style) -> bytes:
        """The image of `text` in `style`; `RenderError` (422) with the reason when it fails or
        times out, `TooLarge` (413) over the memory cap, `Busy` (503) when full."""
        if self._waiting >= self.concurrency * _QUEUE_PER_SLOT:
            raise Busy(f"{self._waiting} previews are waiting; try again shortly")
        deadline = time.monotonic() + self.timeout  # waiting counts against the preview's time
        self._waiting += 1
        try:
            worker, executor = await self._idle.get()
        finally:
            self._waiting -= 1
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, self._render_blocking, worker, text, style, deadline)
        finally:
            if not worker.started:
                # Replaced after this answer, not before it; the next preview waits for it.
                loop.run_in_executor(executor, worker.start)
            self._idle.put_nowait((worker, executor))

    def _render_blocking(self, worker: RenderWorker, text: str, style: Style, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining < 0.5:
            raise Busy("the previews ahead of this one took its time; try again shortly")
        task = RenderTask(job_id=_JOB, attempt=1, batch=0, items=[RenderItem(0, text, _JOB)], style=style)
        try:
            outcome = worker.run(encode_msgpack(task), remaining, restart=False)
        except WorkerLost as exc:
            log.warning("preview.lost", error=str(exc))
            raise RenderError(f"the preview could not be rendered: {exc}") from exc
        worker.recycle_above(RECYCLE_ABOVE_MB)
        items = outcome.decoded()
        item = items[0] if items else None
        if item is None or not item.ok or not outcome.images:
            reason = item.error if item is not None and item.error else outcome.error or "no image"
            if "MemoryError" in reason:
                raise TooLarge(
                    f"the preview needs more memory than a preview may use ({self.memory_mb} MB, "
                    "IMAGEGEN_PREVIEW_MEMORY_MB); make it smaller"
                )
            raise RenderError(reason)
        return outcome.images[0]


__all__ = ["PreviewPool"]
