"""Pulling from a durable JetStream consumer without the known nats-py stalls killing a worker.

`fetch` raises (never returns []) when idle, sometimes as a bare `asyncio.TimeoutError`, and has
been seen to hang past its timeout: both are absorbed here, with a watchdog on every fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import nats.errors
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from shared.logging import get_logger

log = get_logger(__name__)

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


async def bind_pull(js: JetStreamContext, stream: str, durable: str) -> JetStreamContext.PullSubscription:
    """Bind to an existing durable, waiting while the server is unreachable."""
    delay = 0.2
    while True:
        try:
            return await js.pull_subscribe_bind(durable=durable, stream=stream)
        except _TRANSIENT as exc:
            log.warning("consumer.bind_failed", consumer=durable, error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def pull_batches(
    js: JetStreamContext,
    stream: str,
    durable: str,
    *,
    batch: int,
    stop: asyncio.Event,
    timeout: float = 1.0,
) -> AsyncIterator[list[Msg]]:
    """Yield lists of messages from `durable` until `stop` is set.

    Transient connection errors back off and retry; they never end the iteration, so a NATS
    restart stalls work and resumes it.
    """
    sub = await bind_pull(js, stream, durable)
    backoff = 0.2
    while not stop.is_set():
        try:
            # The watchdog bounds a fetch that outlives its own timeout (nats.py #933, #986).
            msgs = await asyncio.wait_for(sub.fetch(batch, timeout=timeout), timeout + 5.0)
        except _IDLE:
            continue
        except _TRANSIENT as exc:
            log.warning("consumer.fetch_failed", consumer=durable, error=str(exc) or type(exc).__name__)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
            continue
        backoff = 0.2
        yield msgs
    with contextlib.suppress(Exception):  # the connection may already be closed at shutdown
        await sub.unsubscribe()
