"""A throwaway nats-server with the whole topology declared, that a test may stop or restart
(the shared one must never be), and connections to it that reconnect as a service's do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS

from devstack import NatsServer
from shared.runtime.settings import Settings
from shared.workflow.topology import declare_all


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    own = NatsServer.start(tmp_path / "nats")
    try:
        nc = await connect(own)
        await declare_all(nc.jetstream(), Settings(nats_url=own.url))
        await nc.close()
        yield own
    finally:
        own.stop(kill=True)


async def connect(server: NatsServer) -> NATS:
    """Like a service: reconnect for ever."""
    return await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
