"""Pulling from a durable JetStream consumer: decoded messages in, malformed ones terminated.

`fetch` raises when idle, sometimes as a bare `asyncio.TimeoutError`, returns [] when a late
status of an earlier poll reaches its inbox first, and has been seen to hang past its timeout
(nats.py #933, #986): all are absorbed here, with a watchdog on every fetch. A message that does
not decode is terminated and counted here, once for every consumer, so no service can crash or
loop on one. `keep_alive` sends `in_progress` while a long
piece of work holds a message, so JetStream does not redeliver it meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import nats.errors
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from shared.contract.errors import BadRequest
from shared.runtime import metrics
from shared.runtime.logging import get_logger
from shared.runtime.retry import Backoff, retrying
from shared.runtime.tasks import cancel_and_wait

log = get_logger(__name__)

T = TypeVar("T")

_IDLE = (nats.errors.TimeoutError, asyncio.TimeoutError, TimeoutError)
_TRANSIENT = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.APIError,
)


# An idle consumer's long poll grows from `timeout` to this: every fetch that expires costs the
# service and nats-server a round of work, so a service set at rest should barely wake.
# A fetch answers as soon as a message arrives, so the length costs no latency.
IDLE_FETCH_SECONDS = 5.0


async def pull_batches(
    js: JetStreamContext,
    stream: str,
    durable: str,
    *,
    batch: int,
    stop: asyncio.Event,
    timeout: float = 1.0,
    idle_timeout: float = IDLE_FETCH_SECONDS,
) -> AsyncIterator[list[Msg]]:
    """Yield lists of messages from `durable` until `stop` is set.

    Each empty fetch doubles the next one's wait, up to `idle_timeout`; a fetch still waiting
    when `stop` is set is abandoned (a message it was handed is redelivered after the
    consumer's ack wait). Transient connection errors back off and retry; they never end the
    iteration, so a NATS restart stalls work and resumes it.
    """
    sub = await retrying(
        lambda: js.pull_subscribe_bind(durable=durable, stream=stream),
        on=_TRANSIENT,
        what="consumer.bind",
    )
    backoff = Backoff()
    wait = timeout
    size = batch
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            # The watchdog bounds a fetch that outlives its own timeout.
            fetch = asyncio.ensure_future(asyncio.wait_for(sub.fetch(size, timeout=wait), wait + 5.0))
            await asyncio.wait((fetch, stopping), return_when=asyncio.FIRST_COMPLETED)
            if not fetch.done():
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, *_IDLE, *_TRANSIENT):
                    await fetch
                break
            try:
                msgs = fetch.result()
            except _IDLE:
                msgs = []
            except _TRANSIENT as exc:
                log.warning("consumer.fetch_failed", consumer=durable, error=str(exc) or type(exc).__name__)
                await backoff.sleep()
                continue
            if not msgs:  # idle: the next poll waits longer
                wait = min(wait * 2, max(idle_timeout, timeout))
                continue
            backoff.reset()
            wait = timeout
            size = batch if _pending_after(msgs[-1]) else 1
            yield msgs
    finally:
        stopping.cancel()
        with contextlib.suppress(Exception):  # the connection may already be closed at shutdown
            await sub.unsubscribe()


def _pending_after(msg: Msg) -> bool:
    """Whether the consumer held more messages when `msg` was delivered (its ack subject says).
    A fetch of more than one message is two pull requests when fewer are waiting (a no-wait
    probe answered "no messages", then the long poll), so with none waiting the next fetch asks
    for one: a single long poll, answered by the next message to arrive."""
    try:
        return msg.metadata.num_pending > 0
    except (nats.errors.NotJSMessageError, ValueError, IndexError):
        return True


async def pull_decoded(
    js: JetStreamContext,
    stream: str,
    durable: str,
    decode: Callable[[bytes], T],
    *,
    kind: str,
    batch: int,
    stop: asyncio.Event,
) -> AsyncIterator[list[tuple[Msg, T]]]:
    """`pull_batches`, each message decoded by `decode`; one that raises `BadRequest` is
    terminated (no redelivery), logged and counted under `kind`, and never reaches the caller."""
    async for msgs in pull_batches(js, stream, durable, batch=batch, stop=stop):
        decoded: list[tuple[Msg, T]] = []
        for msg in msgs:
            try:
                decoded.append((msg, decode(msg.data)))
            except BadRequest as exc:
                log.error("message.malformed", kind=kind, subject=msg.subject, error=str(exc))
                metrics.MESSAGES_REJECTED.labels(kind=kind).inc()
                with contextlib.suppress(Exception):
                    await msg.term()
        if decoded:
            yield decoded


def heartbeat_every(ack_wait: float) -> float:
    """How often to say "still working" so a message held for long is not redelivered."""
    return max(ack_wait / 3, 0.5)


@contextlib.asynccontextmanager
async def keep_alive(msg: Msg, every: float) -> AsyncIterator[None]:
    """Send `in_progress` on `msg` every `every` seconds while the block runs."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):  # a lost heartbeat costs a redelivery at worst
                await msg.in_progress()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        await cancel_and_wait(task)
