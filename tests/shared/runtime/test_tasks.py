"""`cancel_and_wait` ends a task that loses cancellations, which a plain cancel would not."""

from __future__ import annotations

import asyncio
import sys

from shared.runtime.tasks import cancel_and_wait


async def test_a_task_that_swallows_cancellations_is_cancelled_until_it_ends() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 3:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await cancel_and_wait(task, within=5)
    assert task.cancelled() and swallowed == 3


async def test_a_reply_racing_the_cancel_is_handled_like_nats_requests_meet_it() -> None:
    """The shape of a nats-py request: `wait_for` on a reply future, in a polling loop. On
    Python 3.11 a reply that lands in the cancel's loop iteration makes `wait_for` return it and
    drop the cancel; the loop then polls on."""
    replies: list[asyncio.Future[int]] = []

    async def poller() -> None:
        while True:
            reply: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            replies.append(reply)
            await asyncio.wait_for(reply, 10)
            await asyncio.sleep(0.01)

    task = asyncio.create_task(poller())
    await asyncio.sleep(0)
    replies[-1].set_result(1)  # the reply and the cancel in one iteration
    task.cancel()
    await asyncio.wait({task}, timeout=0.2)
    if sys.version_info < (3, 12):  # the hazard itself: that one cancel was lost
        assert not task.done() and len(replies) >= 2
    assert await cancel_and_wait(task, within=5)
    assert task.done()


async def test_a_task_that_never_ends_is_reported_not_awaited_for_ever() -> None:
    done = False

    async def immortal() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if done:
                    raise

    task = asyncio.create_task(immortal())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await cancel_and_wait(task, within=1.2)
    assert 1.1 <= loop.time() - started < 3
    assert not task.done()
    done = True  # the test's own clean-up
    assert await cancel_and_wait(task, within=5)
