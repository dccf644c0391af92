"""`settle` on a real JetStream consumer: a failing message is retried a bounded number of
times with growing delays, then recorded (give_up) and terminated; nothing loops or raises."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext

from shared.runtime.bus.consumer import pull_batches
from shared.runtime.bus.poison import REDELIVERY, settle
from shared.runtime.retry import Backoff
from tests.jetstream import one_consumer

STREAM, DURABLE = "POISON", "worker"
QUICK = Backoff(first=0.1, most=0.4)


@pytest.fixture
async def js() -> AsyncIterator[JetStreamContext]:
    consumer = ConsumerConfig(
        durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, ack_wait=30, max_deliver=-1
    )
    async with one_consumer(STREAM, ["poison.>"], consumer) as client:
        yield client.jetstream()


async def run(
    js: JetStreamContext, handle_fails: int, give_up_fails: bool = False
) -> dict[str, list[object]]:
    """Pull one message through `settle` (attempts=3) until the consumer holds nothing."""
    seen: dict[str, list[object]] = {"handled": [], "given_up": []}
    await js.publish("poison.one", b"payload")
    stop, started = asyncio.Event(), asyncio.Event()

    async def handle(msg: Msg) -> None:
        seen["handled"].append(msg.metadata.num_delivered)
        started.set()
        if len(seen["handled"]) <= handle_fails:
            raise ValueError('invalid byte sequence for encoding "UTF8": 0x00')
        await msg.ack()

    async def give_up(reason: str) -> None:
        seen["given_up"].append(reason)
        if give_up_fails:
            raise RuntimeError("the ledger refused the failure too")

    async def loop() -> None:
        async for msgs in pull_batches(js, STREAM, DURABLE, batch=1, stop=stop, timeout=0.2):
            for msg in msgs:
                await settle(msg, lambda m=msg: handle(m), give_up, kind="test", attempts=3, backoff=QUICK)

    async def watch() -> None:
        await started.wait()
        while True:
            info = await js.consumer_info(STREAM, DURABLE)
            if (info.num_pending, info.num_ack_pending) == (0, 0):  # acked or terminated
                stop.set()
                return
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())

    await asyncio.wait_for(loop(), 60)
    await watcher
    return seen


async def test_a_message_that_keeps_failing_is_given_up_after_its_attempts(js: JetStreamContext) -> None:
    seen = await run(js, handle_fails=100)
    assert seen["handled"] == [1, 2, 3]
    [reason] = seen["given_up"]
    assert reason == 'gave up after 3 attempts: ValueError: invalid byte sequence for encoding "UTF8": 0x00'
    await asyncio.sleep(1.0)  # terminated: it never comes back
    info = await js.consumer_info(STREAM, DURABLE)
    assert (info.num_pending, info.num_ack_pending, info.delivered.consumer_seq) == (0, 0, 3)


async def test_a_message_that_fails_then_succeeds_is_not_given_up(js: JetStreamContext) -> None:
    seen = await run(js, handle_fails=2)
    assert seen["handled"] == [1, 2, 3] and seen["given_up"] == []


async def test_when_recording_the_failure_fails_too_the_message_ends_after_twice_its_attempts(
    js: JetStreamContext,
) -> None:
    seen = await run(js, handle_fails=100, give_up_fails=True)
    assert seen["handled"] == [1, 2, 3, 4, 5, 6]  # twice its attempts, then terminated anyway
    assert len(seen["given_up"]) == 4  # tried on each delivery from the third


def test_redelivery_delays_grow_and_are_bounded() -> None:
    assert [REDELIVERY.nth(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
