"""A throwaway nats-server with one stream and one durable consumer, for tests of consumers."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import nats
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig, StreamConfig

from devstack import NatsServer


@contextlib.asynccontextmanager
async def one_consumer(stream: str, subjects: list[str], consumer: ConsumerConfig) -> AsyncIterator[NATS]:
    """A connection to a new nats-server holding `stream` and its durable `consumer`."""
    with tempfile.TemporaryDirectory(prefix="imagegen-consumer-") as tmp:
        server = NatsServer.start(Path(tmp))
        client = await nats.connect(server.url)
        try:
            await client.jetstream().add_stream(StreamConfig(name=stream, subjects=subjects))
            await client.jetstream().add_consumer(stream, consumer)
            yield client
        finally:
            await client.close()
            server.stop()
