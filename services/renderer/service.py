"""The renderer service: one replica of the horizontally scaled render pool.

All replicas bind the one durable `renderer` consumer, so JetStream spreads tasks over them.
Each replica renders in one child process (`worker.py`: a hung or crashing render costs one
item, not the replica) and talks to it from one thread; the event loop meanwhile publishes the
previous batch's results, fetches the next tasks and keeps heartbeats going.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg

from services.renderer.worker import RenderWorker, WorkerLost, WorkerOutcome
from shared import metrics
from shared.bus.consumer import pull_batches
from shared.bus.service import Endpoint, Service
from shared.cancellation import Cancellations
from shared.contract.codec import decode_json, decode_msgpack, encode_json
from shared.contract.errors import BadRequest
from shared.contract.messages import BatchResult, ItemResult, PreviewRequest, RenderTask, ValidateReply
from shared.contract.subjects import (
    CONSUMER_RENDERER,
    FONTS,
    PREVIEW,
    STREAM_TASKS,
    VALIDATE,
    results_subject,
)
from shared.logging import get_logger
from shared.render import FontCatalogue, RenderEngine
from shared.render.styles import parse_style
from shared.storage.objectstore import ObjectImageStore

log = get_logger(__name__)


class Renderer(Service):
    name = "renderer"
    description = "Renders text to transparent PNG images; answers fonts, validate and preview"

    async def start(self) -> None:
        self.catalogue = FontCatalogue.load(self.settings.font_dirs)
        self.engine = RenderEngine(self.catalogue)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self.rendered = 0
        self.cancellations = Cancellations(self.ctx.js)
        by_object = self.settings.output_store == "object"
        self.object_store = ObjectImageStore(self.ctx.js) if by_object else None
        self.worker = RenderWorker(
            font_dirs=self.settings.font_dirs,
            output_dir=None if by_object else self.settings.output_dir,
            faults=self.settings.fault_injection,
        )
        await asyncio.get_running_loop().run_in_executor(self.executor, self.worker.start)

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self.worker.stop)
        self.executor.shutdown(wait=True)

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("fonts", FONTS, self.fonts),
            Endpoint("validate", VALIDATE, self.validate),
            Endpoint("preview", PREVIEW, self.preview),
        ]

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        return [self.pull_loop()]

    # --- request/reply ----------------------------------------------------------------------

    async def fonts(self, payload: bytes) -> bytes:
        return encode_json(self.catalogue.describe())

    async def validate(self, payload: bytes) -> bytes:
        try:
            raw = msgspec.json.decode(payload) if payload.strip() else {}
        except msgspec.DecodeError as exc:
            raise BadRequest(f"malformed JSON: {exc}", field="style") from exc
        style = parse_style(raw, catalogue=self.catalogue)
        return encode_json(ValidateReply(ok=True, style=msgspec.to_builtins(style)))

    async def preview(self, payload: bytes) -> bytes:
        request = decode_json(payload, PreviewRequest)
        style = parse_style(request.style, catalogue=self.catalogue)
        # Not through the worker: a preview must not wait behind a queue of batches.
        image = await asyncio.to_thread(self.engine.render, request.text, style)
        return image.data

    # --- the task path ----------------------------------------------------------------------

    async def pull_loop(self) -> None:
        prefetch = self.settings.renderer_prefetch
        # Up to `prefetch` batches in hand (at least two): one rendering in the thread, the next
        # ones queued behind it, finished ones publishing. Queued work keeps the render thread
        # busy while the event loop waits for publish acks and the next fetch, which on a
        # loaded machine can take longer than one batch's render (measured: with only two slots
        # the render thread sat idle ~8% of a 20k-row job).
        slots = asyncio.Semaphore(max(2, prefetch))
        in_flight: set[asyncio.Task[None]] = set()
        async for msgs in pull_batches(
            self.ctx.js, STREAM_TASKS, CONSUMER_RENDERER, batch=prefetch, stop=self.ctx.stop
        ):
            for msg in msgs:
                await slots.acquire()
                task = asyncio.create_task(self.handle(msg))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                task.add_done_callback(lambda _: slots.release())
        # Stopping: finish and ack what is in hand; what was fetched but not started is
        # finished too (it is already ours until ack_wait), then we return.
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
        log.info("renderer.drained", rendered=self.rendered)

    async def _heartbeat(self, msg: Msg) -> None:
        every = max(self.settings.ack_wait_seconds / 3, 0.5)
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def handle(self, msg: Msg) -> None:
        try:
            task = decode_msgpack(msg.data, RenderTask)
        except BadRequest as exc:
            log.error("task.malformed", subject=msg.subject, error=str(exc))
            metrics.MESSAGES_REJECTED.labels(kind="task").inc()
            await msg.term()
            return
        structlog.contextvars.bind_contextvars(job_id=task.job_id, batch=task.batch)
        if await self.cancellations.is_cancelled(task.job_id):
            log.info("task.skipped", reason="job cancelled", items=len(task.items))
            await msg.ack()
            return
        beat = asyncio.create_task(self._heartbeat(msg))
        attempt = msg.metadata.num_delivered if msg.metadata else 1
        started = time.perf_counter()
        metrics.TASKS_IN_FLIGHT.inc()
        try:
            await self._render_store_publish(task, attempt)
            await msg.ack()
            metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        except Exception as exc:
            if attempt >= self.settings.max_deliver:
                # Last delivery: record every item as failed rather than leave it in limbo.
                log.error("task.gave_up", attempt=attempt, error=repr(exc))
                await self._publish(
                    task,
                    [
                        WorkerOutcome(item.index, False, error=f"gave up after {attempt} attempts: {exc!r}")
                        for item in task.items
                    ],
                    attempt,
                )
                await msg.ack()
            else:
                log.warning("task.retry", attempt=attempt, error=repr(exc))
                with contextlib.suppress(Exception):
                    await msg.nak(delay=min(2.0**attempt, 30.0))
        finally:
            metrics.TASKS_IN_FLIGHT.dec()
            beat.cancel()

    async def _render_store_publish(self, task: RenderTask, delivery: int) -> None:
        loop = asyncio.get_running_loop()
        # One hop to the worker per batch: the child renders and writes the files.
        outcomes = await loop.run_in_executor(self.executor, self._render, task, delivery)
        if self.object_store is not None:
            outcomes = await self._store_objects(task.job_id, outcomes)
        await self._publish(task, outcomes, delivery)
        self._observe(outcomes)

    def _observe(self, outcomes: list[WorkerOutcome]) -> None:
        rendered = 0
        for o in outcomes:
            if o.ok:
                rendered += 1
                metrics.RENDER_SECONDS.observe(o.render_seconds)
                metrics.ENCODE_SECONDS.observe(o.encode_seconds)
            else:
                metrics.ITEMS_FAILED.labels(stage="render").inc()
        metrics.ITEMS_RENDERED.inc(rendered)
        self.rendered += rendered

    def _render(self, task: RenderTask, delivery: int) -> list[WorkerOutcome]:
        item_timeout = self.settings.item_timeout_seconds
        if delivery == 1:
            try:
                return self.worker.run(task, item_timeout * max(1.0, len(task.items) / 8))
            except WorkerLost as exc:
                log.error("render.worker_lost", error=str(exc), items=len(task.items))
        # A batch that hung or killed the worker, or that comes back after its replica died:
        # render item by item so only the poison item fails.
        return self.worker.run_isolated(task, item_timeout)

    async def _store_objects(self, job_id: str, outcomes: list[WorkerOutcome]) -> list[WorkerOutcome]:
        assert self.object_store is not None
        ok = [o for o in outcomes if o.ok and o.data is not None and o.file]
        names = await self.object_store.put_many(job_id, [(o.file or "", o.data or b"") for o in ok])
        for outcome, name in zip(ok, names, strict=True):
            outcome.file, outcome.data = name, None
        return outcomes

    async def _publish(self, task: RenderTask, outcomes: list[WorkerOutcome], delivery: int) -> None:
        by_index = {item.index: item for item in task.items}
        items = []
        for o in outcomes:
            if not o.ok:
                # Failed items carry their text and name so a retry can re-render them.
                item = by_index[o.index]
                items.append(
                    ItemResult(
                        index=o.index,
                        ok=False,
                        error=o.error,
                        text=item.text,
                        name=item.name,
                        style=item.style,
                    )
                )
            else:
                items.append(
                    ItemResult(
                        index=o.index,
                        ok=True,
                        text=by_index[o.index].text,
                        file=o.file,
                        width=o.width,
                        height=o.height,
                        bytes=o.size,
                        missing_glyphs=o.missing_glyphs,
                    )
                )
        result = BatchResult(
            job_id=task.job_id,
            attempt=task.attempt,
            batch=task.batch,
            items=items,
            renderer=self.ctx.instance,
            delivery=delivery,
        )
        await self.ctx.js.publish(
            results_subject(task.job_id),
            encode_json(result),
            headers={"Nats-Msg-Id": f"{task.job_id}:{task.attempt}:{task.batch}"},
        )
