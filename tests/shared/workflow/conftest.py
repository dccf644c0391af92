"""A throwaway nats-server with the whole topology declared, that a test may stop or restart
(the shared one must never be), connections to it that reconnect as a service's do, and a
renderer's watch of the active-jobs bucket running for the length of a block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS

from devstack import NatsServer
from shared.runtime.settings import Settings
from shared.workflow.active import ActiveJobs
from shared.workflow.topology import declare_all
from tests.waiting import eventually


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


@pytest.fixture
async def connections(server: NatsServer) -> AsyncIterator[Callable[[], Awaitable[NATS]]]:
    """Opens connections to `server`, as separate processes would hold them; all closed after."""
    opened: list[NATS] = []

    async def open_one() -> NATS:
        opened.append(await connect(server))
        return opened[-1]

    try:
        yield open_one
    finally:
        for nc in opened:
            await nc.close()


@contextlib.asynccontextmanager
async def following(active: ActiveJobs, nc: NATS) -> AsyncIterator[ActiveJobs]:
    """`active` following its bucket on `nc` (as a renderer's worker does) for the block, from
    the moment its watch has delivered every key."""
    stop = asyncio.Event()
    follow = asyncio.create_task(active.follow(nc, stop))

    async def up() -> bool:
        return active.following

    try:
        await eventually(up, "the watch delivering every key")
        yield active
    finally:
        stop.set()
        await asyncio.wait_for(follow, 10)
