"""Which jobs a renderer may render (shared/workflow/active.py), on a throwaway nats-server of
its own that a test may restart: answers at each attempt, what a follower (the KV watch) lets it
render without a read, how fast a job's end or a retry reaches it, and what it trusts after its
connection dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from nats.aio.client import Client as NATS

from devstack import NatsServer
from shared.workflow.active import ActiveJobs, _Known
from tests.shared.workflow.conftest import following
from tests.waiting import eventually

# Long enough that nothing a test sees can come from the trust window running out: a cached
# answer that should have changed would still be given, and the test would fail.
LONG_TRUST = 600.0


Connect = Callable[[], Awaitable[NATS]]


@pytest.fixture
async def writer(connections: Connect) -> ActiveJobs:
    """Ingest's or result-notifier's side, on a connection of its own."""
    return ActiveJobs((await connections()).jetstream(timeout=2))


@pytest.fixture
async def follower_nc(connections: Connect) -> NATS:
    return await connections()


@pytest.fixture
async def follower(follower_nc: NATS) -> AsyncIterator[ActiveJobs]:
    """A renderer's side: following the bucket, trusting an answer for LONG_TRUST seconds."""
    async with following(
        ActiveJobs(follower_nc.jetstream(timeout=2), trust_seconds=LONG_TRUST), follower_nc
    ) as active:
        yield active


async def _true(value: bool) -> bool:
    return value


async def test_a_task_renders_only_at_its_jobs_current_attempt(
    writer: ActiveJobs, connections: Connect
) -> None:
    # Not following: every answer is a read.
    reader = ActiveJobs((await connections()).jetstream(timeout=2))
    assert not await reader.may_render("never-started", 1)
    await writer.start("job-a", 1)
    assert await reader.may_render("job-a", 1)
    assert not await reader.may_render("job-a", 2)
    await writer.start("job-a", 2)  # a retry
    assert not await reader.may_render("job-a", 1)
    assert await reader.may_render("job-a", 2)
    await writer.end("job-a")
    assert not await reader.may_render("job-a", 2)
    assert await reader.current_attempt("job-a") is None
    assert reader.reads == 6  # every may_render asked


async def test_a_follower_renders_an_active_jobs_tasks_without_a_read_each(
    writer: ActiveJobs, follower: ActiveJobs
) -> None:
    await writer.start("job-b", 1)
    for _ in range(50):
        assert await follower.may_render("job-b", 1)
    assert follower.reads <= 1  # none once the watch has shown the key, one if the task came first


async def test_an_answer_is_trusted_only_for_the_trust_window(
    writer: ActiveJobs, connections: Connect
) -> None:
    nc = await connections()
    async with following(ActiveJobs(nc.jetstream(timeout=2), trust_seconds=0.3), nc) as active:
        await writer.start("job-c", 1)
        assert await active.may_render("job-c", 1)
        before = active.reads
        await asyncio.sleep(0.4)
        assert await active.may_render("job-c", 1)
        assert active.reads == before + 1  # asked again once the window had passed


async def test_a_jobs_end_reaches_a_follower_without_waiting_out_the_trust(
    writer: ActiveJobs, follower: ActiveJobs
) -> None:
    await writer.start("job-d", 1)
    assert await follower.may_render("job-d", 1)
    ended = time.monotonic()
    await writer.end("job-d")

    async def skipped() -> bool:
        return not await follower.may_render("job-d", 1)

    await eventually(skipped, "the follower skipping the ended job's tasks", timeout=10)
    assert time.monotonic() - ended < LONG_TRUST


async def test_a_retrys_first_task_is_read_not_skipped_on_the_caches_word(
    writer: ActiveJobs, follower: ActiveJobs
) -> None:
    await writer.start("job-e", 1)
    assert await follower.may_render("job-e", 1)
    await writer.start("job-e", 2)
    # Whether or not the watch has shown attempt 2 yet, its task renders and attempt 1's do not.
    assert await follower.may_render("job-e", 2)
    assert not await follower.may_render("job-e", 1)


async def test_an_answer_from_an_older_revision_never_replaces_a_newer_one(follower: ActiveJobs) -> None:
    # A read that was under way while the job ended comes back after the watch showed the end.
    follower._learn("job-f", _Known(None, revision=9, at=time.monotonic()))
    follower._learn("job-f", _Known(1, revision=8, at=time.monotonic()))
    reads = follower.reads
    assert not await follower.may_render("job-f", 1)  # not trusted: asked, and the bucket has no key
    assert follower.reads == reads + 1


async def test_after_a_reconnect_nothing_is_trusted_until_the_watch_is_back(
    writer: ActiveJobs, follower: ActiveJobs, follower_nc: NATS, server: NatsServer
) -> None:
    await writer.start("job-g", 1)
    assert await follower.may_render("job-g", 1)
    reads = follower.reads
    server.restart()  # the same store: the key is still there
    await eventually(lambda: _true(follower_nc.stats["reconnects"] == 1), "the follower's reconnect")
    # Not from the cache, whether the watch has been started again yet or not (its answers are
    # forgotten then); while the connection is still down the read fails and the task renders.
    assert await follower.may_render("job-g", 1)
    assert follower.reads == reads + 1
    await eventually(lambda: _true(follower.following), "a new watch delivering every key", timeout=30)
    await writer.end("job-g")  # an update the new watch must show

    async def skipped() -> bool:
        return not await follower.may_render("job-g", 1)

    await eventually(skipped, "the new watch showing the end", timeout=10)
