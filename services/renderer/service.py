"""The renderer service: one replica of the horizontally scaled render pool.

All replicas bind the one durable `renderer` consumer, so JetStream spreads tasks over them.
Each replica renders in one child process (`worker.py`: a hung or crashing render costs one
item, not the replica) and talks to it from one thread; the event loop meanwhile publishes the
previous batch's results, fetches the next tasks and keeps heartbeats going. The parent reads
only a task's header (job, attempt, batch): the items go to the child as the bytes that arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated, Any, cast

import msgspec
import structlog
from msgspec import Meta
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig

from services.renderer.batch import BatchOutcome
from services.renderer.preview import PreviewPool
from services.renderer.worker import RenderWorker, WorkerLost
from shared.contract.codec import decode_json, decode_msgpack, encode_json
from shared.contract.errors import BadRequest, TooLarge
from shared.contract.messages import (
    BatchResult,
    ItemResult,
    PreviewRequest,
    RenderTask,
    ValidateReply,
    failed_item,
)
from shared.contract.subjects import (
    CONSUMER_RENDERER,
    FONTS,
    PREVIEW,
    STREAM_TASKS,
    VALIDATE,
    results_subject,
)
from shared.contract.submit import JobId
from shared.render import FontCatalogue, parse_style
from shared.runtime import metrics
from shared.runtime.bus.consumer import heartbeat_every, keep_alive, pull_decoded
from shared.runtime.bus.limits import check_reply, encode_result, payload_budget
from shared.runtime.bus.poison import delivery_of, settle
from shared.runtime.bus.publish import publish
from shared.runtime.bus.service import Endpoint, Service
from shared.runtime.bus.streams import renderer_consumer
from shared.runtime.logging import get_logger
from shared.runtime.settings import Settings
from shared.runtime.tasks import TaskSet
from shared.storage import DirectoryStore, open_store
from shared.workflow.active import ActiveJobs

log = get_logger(__name__)


class TaskHeader(msgspec.Struct):
    """What the parent reads of a `RenderTask`: the items stay undecoded (`Raw`), to be counted
    and handed to the child as they are."""

    job_id: JobId
    attempt: Annotated[int, Meta(ge=1)]
    batch: Annotated[int, Meta(ge=0)]
    items: list[msgspec.Raw]


class Renderer(Service):
    name = "renderer"
    description = "Renders text to transparent PNG images; answers fonts, validate and preview"

    async def start(self) -> None:
        self.catalogue = FontCatalogue.load(self.settings.font_dirs)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self.rendered = 0
        self.active = ActiveJobs(self.ctx.js)
        self.store = open_store(self.settings, self.ctx.js)
        # A directory store is written by the child itself; an object store by this process.
        local = self.store.root if isinstance(self.store, DirectoryStore) else None
        self.worker = RenderWorker(
            font_dirs=self.settings.font_dirs, output_dir=local, faults=self.settings.fault_injection
        )
        await asyncio.get_running_loop().run_in_executor(self.executor, self.worker.start)
        self.previews = PreviewPool(
            self.settings, font_dirs=self.settings.font_dirs, faults=self.settings.fault_injection
        )
        await self.previews.start()

    @classmethod
    def consumers(cls, settings: Settings) -> list[tuple[str, ConsumerConfig]]:
        return [renderer_consumer(settings)]

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self.worker.stop)
        self.executor.shutdown(wait=True)
        await self.previews.stop()

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("fonts", FONTS, self.fonts),
            Endpoint("validate", VALIDATE, self.validate),
            Endpoint("preview", PREVIEW, self.preview),
        ]

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        # The active-jobs watch lets most tasks be rendered without a key read each.
        return [self.pull_loop(), self.active.follow(self.ctx.nc, self.ctx.stop)]

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
        # Its own render child (services/renderer/preview.py): not behind a queue of batches,
        # and not in this process.
        return await self.previews.render(request.text, style)

    # --- the task path ----------------------------------------------------------------------

    async def pull_loop(self) -> None:
        prefetch = self.settings.renderer_prefetch
        # Up to `prefetch` batches in hand (at least two): one rendering in the thread, the next
        # ones queued behind it, finished ones publishing. Queued work keeps the render thread
        # busy while the event loop waits for publish acks and the next fetch, which on a
        # loaded machine can take longer than one batch's render (measured: with only two slots
        # the render thread sat idle ~8% of a 20k-row job).
        in_flight = TaskSet(max(2, prefetch))
        async for batch in pull_decoded(
            self.ctx.js,
            STREAM_TASKS,
            CONSUMER_RENDERER,
            lambda data: decode_msgpack(data, TaskHeader),
            kind="task",
            batch=prefetch,
            stop=self.ctx.stop,
        ):
            for msg, header in batch:
                await in_flight.spawn(self.handle(msg, header))
        # Stopping: finish and ack what is in hand; what was fetched but not started is
        # finished too (it is already ours until ack_wait), then we return.
        await in_flight.join()
        log.info("renderer.drained", rendered=self.rendered)

    async def handle(self, msg: Msg, task: TaskHeader) -> None:
        """Render one task; one that keeps raising ends as recorded item failures (`settle`)."""
        structlog.contextvars.bind_contextvars(job_id=task.job_id, batch=task.batch)
        metrics.TASKS_IN_FLIGHT.inc()
        try:
            await settle(
                msg,
                partial(self._handle, msg, task),
                partial(self._give_up, msg, task),
                kind="task",
                attempts=self.settings.max_deliver,
            )
        finally:
            metrics.TASKS_IN_FLIGHT.dec()

    async def _handle(self, msg: Msg, task: TaskHeader) -> None:
        if not await self.active.may_render(task.job_id, task.attempt):
            # Cancelled, ended, unknown, or an older attempt: whoever published it, not rendered.
            log.info("task.skipped", attempt=task.attempt, reason="the job is not active at this attempt")
            await msg.ack()
            return
        delivery = delivery_of(msg)
        started = time.perf_counter()
        async with keep_alive(msg, heartbeat_every(self.settings.ack_wait_seconds)):
            outcome = await self._render(msg.data, len(task.items), delivery)
            if outcome.error is not None:
                log.error("task.malformed", error=outcome.error)
                metrics.MESSAGES_REJECTED.labels(kind="task").inc()
                await msg.term()
                return
            await self._store_and_publish(task, outcome, delivery)
        await msg.ack()
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _give_up(self, msg: Msg, task: TaskHeader, reason: str) -> None:
        """Every delivery raised: record every item as failed rather than leave it in limbo."""
        full = decode_msgpack(msg.data, RenderTask)
        failed = [failed_item(item, reason) for item in full.items]
        await self._publish(task, encode_json(failed), delivery_of(msg))

    async def _render(self, data: bytes, items: int, delivery: int) -> BatchOutcome:
        # One hop to the worker per batch: the child renders and writes the files.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._render_blocking, data, items, delivery)

    def _render_blocking(self, data: bytes, items: int, delivery: int) -> BatchOutcome:
        item_timeout = self.settings.item_timeout_seconds
        if delivery == 1:
            # The batch's timeout scales with its size: a generous bound, not a budget.
            try:
                return self.worker.run(data, item_timeout * max(1.0, items / 8))
            except WorkerLost as exc:
                log.error("render.worker_lost", error=str(exc))
        # A batch that hung or killed the worker, or that comes back after its replica died:
        # render item by item so only the poison item fails.
        return self.worker.run_isolated(decode_msgpack(data, RenderTask), item_timeout)

    async def _store_and_publish(self, task: TaskHeader, outcome: BatchOutcome, delivery: int) -> None:
        if outcome.images:
            await self.store.put_many(task.job_id, list(zip(outcome.files, outcome.images, strict=True)))
        await self._publish(task, outcome.items, delivery)
        metrics.RENDER_SECONDS.observe_many(outcome.render_seconds)
        metrics.ENCODE_SECONDS.observe_many(outcome.encode_seconds)
        rendered = len(outcome.render_seconds)
        metrics.ITEMS_RENDERED.inc(rendered)
        metrics.ITEMS_FAILED.labels(stage="render").inc(outcome.count - rendered)
        self.rendered += rendered

    def _message(self, task: TaskHeader, items: bytes, delivery: int) -> bytes:
        """The result message of `task` whose items are `items`, a JSON array of `ItemResult`s,
        encoded to fit a message. Ingest sized the task by `item_sizes`, so its result fits
        once its failed items' reasons are clipped to the room that keeps for them
        (`encode_result`: only long reasons in non-Latin scripts need it); should it still not
        (a server with a smaller max_payload than ingest saw), the items go without their texts,
        names and styles rather than never arrive."""
        result = BatchResult(
            job_id=task.job_id,
            attempt=task.attempt,
            batch=task.batch,
            # Encoded as they are: a Raw in the Struct is written verbatim, so the render child's
            # encoding of the items is the message's (the Struct stays the wire format's one
            # definition; its fields are not checked on construction).
            items=cast(list[ItemResult], msgspec.Raw(items)),
            renderer=self.ctx.instance,
            delivery=delivery,
        )
        payload = encode_json(result)
        budget = payload_budget(self.ctx.nc)
        if len(payload) <= budget:
            return payload
        decoded = msgspec.structs.replace(result, items=decode_json(items, list[ItemResult]))
        with contextlib.suppress(TooLarge):
            return encode_result(decoded, budget)  # its failed items' reasons clipped
        log.error("result.too_large", bytes=len(payload), budget=budget)
        slim = [
            msgspec.structs.replace(
                item, text=None, name=None, style=None, missing_glyphs=item.missing_glyphs[:16]
            )
            for item in decoded.items
        ]
        payload = encode_json(msgspec.structs.replace(result, items=slim))
        check_reply(payload, budget)
        return payload

    async def _publish(self, task: TaskHeader, items: bytes, delivery: int) -> None:
        """Publish the result of `task` whose items are `items`, a JSON array of `ItemResult`s."""
        # Retried in place through a leader election (the batch is not rendered again).
        await publish(
            self.ctx.js,
            results_subject(task.job_id),
            self._message(task, items, delivery),
            headers={"Nats-Msg-Id": f"{task.job_id}:{task.attempt}:{task.batch}"},
        )
