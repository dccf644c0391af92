"""A job's events as Server-Sent Events: replayed from the first, then live, until its attempt ends.

The NATS subscription runs in its own task feeding a queue, so keep-alive comments can go out
while no event arrives without cancelling the subscription's iterator mid-read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request

from services.gateway.public import public_event
from shared.client import Client
from shared.contract.codec import encode_json
from shared.contract.messages import JobEvent, JobInfo
from shared.contract.states import TERMINAL_EVENTS
from shared.runtime.logging import get_logger
from shared.runtime.tasks import cancel_and_wait

log = get_logger(__name__)


def last_event_id(request: Request) -> int:
    value = request.headers.get("last-event-id") or request.query_params.get("last_event_id") or "0"
    return int(value) if value.isdigit() else 0


async def event_stream(
    client: Client, job: JobInfo, last_seen: int, keepalive: float, root: str = ""
) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[JobEvent | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in client.watch(job.job_id, attempt=job.attempt):
                await queue.put(event)
        except Exception as exc:
            log.warning("gateway.sse_failed", job_id=job.job_id, error=repr(exc))
        finally:
            await queue.put(None)

    task = asyncio.create_task(pump())
    try:
        yield b"retry: 2000\n\n"
        seq = 0
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if event is None:
                return
            seq += 1
            if seq <= last_seen:
                continue
            # Every field, defaults too: a browser reading `failed` should not meet `undefined`.
            shown = public_event(event, root)
            data = encode_json({name: getattr(shown, name) for name in shown.__struct_fields__})
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event.kind.encode(), data)
            if event.kind in TERMINAL_EVENTS and event.attempt >= job.attempt:
                return
    finally:
        await cancel_and_wait(task)
