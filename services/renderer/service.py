"""The renderer service: one replica of the horizontally scaled render pool.

All replicas bind the one durable `renderer` consumer, so JetStream spreads tasks over them.
Rendering runs in a single dedicated thread per replica (Pillow releases the GIL in its heavy
parts, and one thread per process keeps the replica on one core); the event loop meanwhile
writes the previous batch's files, publishes its results and keeps heartbeats going.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg

from services.renderer.batch import ItemOutcome, render_batch
from shared.bus.consumer import pull_batches
from shared.bus.service import Endpoint, Service
from shared.cancellation import Cancellations
from shared.errors import BadRequest
from shared.logging import get_logger
from shared.messages import (
    BatchResult,
    ItemResult,
    PreviewRequest,
    RenderTask,
    ValidateReply,
    decode_json,
    decode_msgpack,
    encode_json,
)
from shared.render import FontCatalogue, RenderEngine, parse_style
from shared.storage import DirectoryStore
from shared.subjects import CONSUMER_RENDERER, FONTS, PREVIEW, STREAM_TASKS, VALIDATE, results_subject

log = get_logger(__name__)


class Renderer(Service):
    name = "renderer"
    description = "Renders text to transparent PNG images; answers fonts, validate and preview"

    async def start(self) -> None:
        self.catalogue = FontCatalogue.load(self.settings.font_dirs)
        self.engine = RenderEngine(self.catalogue)
        self.store = DirectoryStore(self.settings.output_dir)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self.rendered = 0
        self.cancellations = Cancellations(self.ctx.js)

    async def stop(self) -> None:
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
        loop = asyncio.get_running_loop()
        image = await loop.run_in_executor(self.executor, self.engine.render, request.text, style)
        return image.data

    # --- the task path ----------------------------------------------------------------------

    async def pull_loop(self) -> None:
        prefetch = self.settings.renderer_prefetch
        # Two batches in flight: one rendering in the thread, one storing and publishing.
        slots = asyncio.Semaphore(2)
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
            await msg.term()
            return
        structlog.contextvars.bind_contextvars(job_id=task.job_id, batch=task.batch)
        if await self.cancellations.is_cancelled(task.job_id):
            log.info("task.skipped", reason="job cancelled", items=len(task.items))
            await msg.ack()
            return
        beat = asyncio.create_task(self._heartbeat(msg))
        attempt = msg.metadata.num_delivered if msg.metadata else 1
        try:
            await self._render_store_publish(task, attempt)
            await msg.ack()
        except Exception as exc:
            if attempt >= self.settings.max_deliver:
                # Last delivery: record every item as failed rather than leave it in limbo.
                log.error("task.gave_up", attempt=attempt, error=repr(exc))
                await self._publish(
                    task,
                    [
                        ItemOutcome(item, None, None, f"gave up after {attempt} attempts: {exc!r}")
                        for item in task.items
                    ],
                    {},
                    attempt,
                )
                await msg.ack()
            else:
                log.warning("task.retry", attempt=attempt, error=repr(exc))
                with contextlib.suppress(Exception):
                    await msg.nak(delay=min(2.0**attempt, 30.0))
        finally:
            beat.cancel()

    async def _render_store_publish(self, task: RenderTask, delivery: int) -> None:
        loop = asyncio.get_running_loop()
        outcomes = await loop.run_in_executor(self.executor, render_batch, self.engine, task)
        files = [(o.filename, o.image.data) for o in outcomes if o.filename and o.image]
        stored = await self.store.put_many(task.job_id, files)
        locations = dict(zip((name for name, _ in files), stored, strict=True))
        await self._publish(task, outcomes, locations, delivery)
        self.rendered += len(files)

    async def _publish(
        self, task: RenderTask, outcomes: list[ItemOutcome], locations: dict[str, str], delivery: int
    ) -> None:
        items = []
        for o in outcomes:
            if o.image is None or o.filename is None:
                # Failed items carry their text and name so a retry can re-render them.
                items.append(
                    ItemResult(
                        index=o.item.index, ok=False, error=o.error, text=o.item.text, name=o.item.name
                    )
                )
            else:
                items.append(
                    ItemResult(
                        index=o.item.index,
                        ok=True,
                        file=locations.get(o.filename, o.filename),
                        width=o.image.width,
                        height=o.image.height,
                        bytes=len(o.image.data),
                        missing_glyphs=list(o.image.missing_glyphs),
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
