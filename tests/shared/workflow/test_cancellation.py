"""Job cancellation as ingest sees it (shared/workflow/cancellation.py), on a throwaway
nats-server of its own that a test may stop: the KV record per attempt, the read cache, what a
check answers while NATS is unreachable, and the watch that interrupts a blocked source read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS

from devstack import NatsServer
from shared.contract.errors import BadRequest
from shared.contract.subjects import BUCKET_CANCELLED
from shared.workflow.cancellation import Cancellations, CancelWatch
from tests.shared.workflow.conftest import connect
from tests.waiting import eventually

# A JetStream call on a connection that is down fails after this long (nats-py buffers it).
JS_TIMEOUT = 1.0


@pytest.fixture
async def ncs(server: NatsServer) -> AsyncIterator[list[NATS]]:
    """Two connections, as two processes would have: one cancels, the other checks."""
    opened = [await connect(server), await connect(server)]
    try:
        yield opened
    finally:
        for nc in opened:
            await nc.close()


def cancellations(nc: NATS, cache_seconds: float) -> Cancellations:
    return Cancellations(nc.jetstream(timeout=JS_TIMEOUT), cache_seconds=cache_seconds)


async def test_a_cancellation_holds_for_its_attempt_not_the_next(ncs: list[NATS]) -> None:
    notifier, ingest = cancellations(ncs[0], 0), cancellations(ncs[1], 0)
    assert not await ingest.is_cancelled("job-1", 1)
    await notifier.cancel("job-1", 1)
    assert await ingest.is_cancelled("job-1", 1)
    assert not await ingest.is_cancelled("job-1", 2)  # the resumed attempt goes on
    assert not await ingest.is_cancelled("job-2", 1)  # and other jobs are untouched
    kv = await ncs[0].jetstream().key_value(BUCKET_CANCELLED)
    assert (await kv.get("job-1")).value == b"1"


async def test_a_job_id_that_is_not_a_key_is_refused(ncs: list[NATS]) -> None:
    with pytest.raises(BadRequest):
        await cancellations(ncs[0], 0).cancel("../job", 1)


async def test_an_unreadable_record_means_not_cancelled(ncs: list[NATS]) -> None:
    kv = await ncs[0].jetstream().key_value(BUCKET_CANCELLED)
    await kv.put("job-junk", b"not a number")
    assert not await cancellations(ncs[1], 0).is_cancelled("job-junk", 1)


async def test_answers_are_cached_for_the_interval(ncs: list[NATS]) -> None:
    notifier = cancellations(ncs[0], 0)
    ingest = cancellations(ncs[1], cache_seconds=3600)
    assert not await ingest.is_cancelled("job-3", 1)  # asked once, remembered
    await notifier.cancel("job-3", 1)
    # Within the interval the cached "not cancelled" stands: the check did not ask again.
    assert not await ingest.is_cancelled("job-3", 1)
    ingest.cache_seconds = 0  # the interval is over
    assert await ingest.is_cancelled("job-3", 1)


async def test_a_cancelled_attempt_stays_cancelled_without_asking(ncs: list[NATS]) -> None:
    notifier, ingest = cancellations(ncs[0], 0), cancellations(ncs[1], 0)
    await notifier.cancel("job-4", 1)
    assert await ingest.is_cancelled("job-4", 1)
    kv = await ncs[0].jetstream().key_value(BUCKET_CANCELLED)
    await kv.delete("job-4")  # the record goes away (a resume clears nothing, but a purge might)
    assert await ingest.is_cancelled("job-4", 1)  # known cancelled: not asked again
    assert not await cancellations(ncs[1], 0).is_cancelled("job-4", 1)  # a fresh reader asks


async def test_with_nats_unreachable_checks_answer_from_what_is_known(
    server: NatsServer, ncs: list[NATS]
) -> None:
    notifier, ingest = cancellations(ncs[0], 0), cancellations(ncs[1], 0)
    await notifier.cancel("job-gone", 1)
    assert await ingest.is_cancelled("job-gone", 1)
    assert not await ingest.is_cancelled("job-on", 1)

    server.stop()

    async def disconnected() -> bool:
        return not ncs[1].is_connected

    await eventually(disconnected, "the checking connection noticing the server is gone")
    # No exception: a cancelled job stays stopped, a running one keeps running, an unknown one
    # is taken as running (work goes on; the next check asks again).
    assert await ingest.is_cancelled("job-gone", 1)
    assert not await ingest.is_cancelled("job-on", 1)
    assert not await ingest.is_cancelled("job-unknown", 1)

    server.restart()  # same port and store: the bucket and its records are back

    async def reconnected() -> bool:
        return all(nc.is_connected for nc in ncs)

    await eventually(reconnected, "both connections back")
    await notifier.cancel("job-on", 1)
    # The failed checks cached nothing: the next one asks, and sees the new cancellation.
    assert await ingest.is_cancelled("job-on", 1)
    assert await ingest.is_cancelled("job-gone", 1)


# --- the watch beside a source read ---------------------------------------------------------


class Source:
    """Rows of a source whose second read blocks until the task reading it is cancelled."""

    def __init__(self) -> None:
        self.first_read = asyncio.Event()
        self.reads = 0

    async def rows(self) -> AsyncIterator[str]:
        self.reads += 1
        yield "row 1"
        self.first_read.set()
        self.reads += 1
        await asyncio.Event().wait()  # a query computing before its next row, for ever
        yield "never"


async def test_the_watch_interrupts_a_read_blocked_in_the_source(ncs: list[NATS]) -> None:
    source = Source()
    watch = CancelWatch(cancellations(ncs[1], 0), "job-w1", 1, interval=0.05)

    async def read_all() -> list[str | None]:
        rows = source.rows()
        async with watch:
            return [await watch.read(rows), await watch.read(rows)]

    reader = asyncio.create_task(read_all())
    await asyncio.wait_for(source.first_read.wait(), 60)
    assert not reader.done()  # blocked in the second read
    await cancellations(ncs[0], 0).cancel("job-w1", 1)
    assert await asyncio.wait_for(reader, 60) == ["row 1", None]  # ended, not cancelled
    assert watch.cancelled


async def test_the_watch_never_interrupts_work_outside_a_read(ncs: list[NATS]) -> None:
    """Between reads (publishing, whose counts must stay exact) the task is left alone; the
    next read ends the rows without touching the source."""
    source = Source()
    watch = CancelWatch(cancellations(ncs[1], 0), "job-w2", 1, interval=0.05)
    publishing = asyncio.Event()
    published = asyncio.Event()

    async def read_and_publish() -> str | None:
        rows = source.rows()
        async with watch:
            publishing.set()
            await published.wait()  # outside a read when the cancellation arrives
            return await watch.read(rows)

    reader = asyncio.create_task(read_and_publish())
    await asyncio.wait_for(publishing.wait(), 60)
    await cancellations(ncs[0], 0).cancel("job-w2", 1)

    async def noticed() -> bool:
        return watch.cancelled

    await eventually(noticed, "the watch noticing the cancellation")
    assert not reader.done()
    published.set()
    assert await asyncio.wait_for(reader, 60) is None
    assert source.reads == 0  # the source was not read at all


async def test_someone_elses_cancellation_of_the_reader_goes_through(ncs: list[NATS]) -> None:
    source = Source()
    watch = CancelWatch(cancellations(ncs[1], 0), "job-w3", 1, interval=0.05)

    async def read_all() -> list[str | None]:
        rows = source.rows()
        async with watch:
            return [await watch.read(rows), await watch.read(rows)]

    reader = asyncio.create_task(read_all())
    await asyncio.wait_for(source.first_read.wait(), 60)
    reader.cancel()  # a service stopping, not a job cancelled
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert not watch.cancelled


class _LosesACancel(Cancellations):
    """Checks that lose one cancellation, as a nats-py request does on Python 3.11 when its reply
    lands in the same loop iteration as the cancel (`asyncio.wait_for` returns the reply)."""

    def __init__(self) -> None:
        super().__init__(js=None)  # type: ignore[arg-type]  # never asks NATS
        self.lost = 0

    async def is_cancelled(self, job_id: str, attempt: int) -> bool:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.lost += 1
        return False


async def test_a_watch_whose_poller_lost_its_cancellation_still_ends() -> None:
    """An ingest handler once waited minutes in the watch's exit for a poller that had lost its
    cancellation and polled on: the exit must end whatever the poller does with a cancel."""
    cancellations = _LosesACancel()

    async def read_then_leave() -> None:
        async with CancelWatch(cancellations, "job-1", 1, interval=0.001):
            await asyncio.sleep(0.02)  # the poller is inside a check now

    task = asyncio.create_task(read_then_leave())
    await asyncio.wait({task}, timeout=5)  # not wait_for: the old exit swallowed its cancel too
    assert task.done(), "the watch's exit waits for a poller that polls on"
    task.result()
    assert cancellations.lost >= 1
