"""`pull_batches` on a real JetStream consumer: an idle consumer's long polls grow to the idle
bound (read from the pull requests the server receives), a message still arrives as soon as it
is published, a fetch asks for one message when none was waiting, and `stop` ends a fetch that
is waiting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from shared.runtime.bus.consumer import pull_batches
from tests.jetstream import one_consumer
from tests.waiting import eventually

STREAM, DURABLE = "IDLE", "worker"
NEXT = f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{DURABLE}"
# Far longer than any wait below: a poll that did not answer early would fail the test.
LONG = 60.0


@pytest.fixture
async def nc() -> AsyncIterator[NATS]:
    consumer = ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT)
    async with one_consumer(STREAM, ["idle.>"], consumer) as client:
        yield client


async def pull_requests(nc: NATS) -> tuple[list[float], Msg]:
    """The `expires` (seconds) of each pull request the consumer receives, as they come."""
    seen: list[float] = []

    async def record(msg: Msg) -> None:
        request = json.loads(msg.data or b"{}")
        if "expires" in request:  # the long polls; a no-wait probe carries none
            seen.append(request["expires"] / 1e9)

    sub = await nc.subscribe(NEXT, cb=record)
    return seen, sub  # type: ignore[return-value]


async def test_an_idle_consumer_polls_ever_longer_up_to_its_bound(nc: NATS) -> None:
    expires, _ = await pull_requests(nc)
    stop = asyncio.Event()

    async def loop() -> None:
        async for _ in pull_batches(
            nc.jetstream(), STREAM, DURABLE, batch=8, stop=stop, timeout=0.1, idle_timeout=0.8
        ):
            raise AssertionError("nothing was published")

    task = asyncio.create_task(loop())

    async def at_the_bound() -> bool:
        return any(round(seconds, 1) == 0.8 for seconds in expires[-2:]) and len(expires) >= 6

    await eventually(at_the_bound, lambda: f"polls reaching 0.8 s (seen: {expires})")
    stop.set()
    await asyncio.wait_for(task, LONG)
    # A poll may be repeated (the server refused one and the consumer backed off): never shorter.
    polls = [round(seconds, 1) for seconds in expires]
    assert polls[0] == 0.1 and polls == sorted(polls), polls
    assert set(polls) == {0.1, 0.2, 0.4, 0.8}, polls


async def test_a_message_after_an_idle_spell_is_answered_by_the_waiting_poll(nc: NATS) -> None:
    expires, _ = await pull_requests(nc)
    stop = asyncio.Event()
    polls_at_receipt: list[int] = []

    async def loop() -> None:
        async for msgs in pull_batches(
            nc.jetstream(), STREAM, DURABLE, batch=8, stop=stop, timeout=1.0, idle_timeout=30.0
        ):
            polls_at_receipt.append(len(expires))
            for msg in msgs:
                await msg.ack()

    task = asyncio.create_task(loop())

    async def waiting_eight_seconds() -> bool:
        return any(round(seconds) == 8 for seconds in expires)

    await eventually(waiting_eight_seconds, lambda: f"a poll of 8 s (seen: {expires})")
    await nc.jetstream().publish("idle.one", b"payload")
    await eventually(lambda: _at_least(polls_at_receipt, 1), "the message")
    # Answered by the 8-second poll that was waiting: had it expired, a 16-second one would
    # have followed. (A fetch may send its poll twice: a probe, then the poll itself.)
    [received] = polls_at_receipt
    assert {round(seconds) for seconds in expires[:received]} == {1, 2, 4, 8}, expires
    await eventually(lambda: _at_least(expires, received + 1), "the next poll")
    assert round(expires[received], 1) == 1.0  # back to the short poll once work came
    stop.set()
    await asyncio.wait_for(task, LONG)


async def test_a_fetch_asks_for_one_message_when_none_was_waiting(nc: NATS) -> None:
    """After a delivery that left the consumer empty, the next fetch is a single long poll for
    one message; after one that left a backlog, it asks for the whole batch again."""
    batches: list[int] = []

    async def record(msg: Msg) -> None:
        batches.append(json.loads(msg.data or b"{}").get("batch", 0))

    await nc.subscribe(NEXT, cb=record)
    js = nc.jetstream()
    for n in range(3):
        await js.publish(f"idle.{n}", b"first")
    stop = asyncio.Event()
    left: list[int] = []  # what the consumer still held after each fetch's last message

    async def loop() -> None:
        async for msgs in pull_batches(js, STREAM, DURABLE, batch=8, stop=stop, timeout=LONG):
            left.append(msgs[-1].metadata.num_pending)
            for msg in msgs:
                await msg.ack()

    task = asyncio.create_task(loop())
    await eventually(lambda: _at_least(batches, 2), "the poll after the first three messages")
    assert left == [0] and batches[:2] == [8, 1], (left, batches)
    for n in range(40):  # a burst, stored faster than one message is handled: a backlog
        await nc.publish(f"idle.{n}", b"burst")
    await nc.flush()

    async def all_handled() -> bool:
        return len(left) >= 2 and left[-1] == 0 and len(batches) == len(left) + 1

    await eventually(all_handled, lambda: f"the burst handled (left {left}, polls {batches})")
    stop.set()
    await asyncio.wait_for(task, LONG)
    # Each poll after the first asked for what the previous fetch left: one, or the batch.
    assert batches[1:] == [8 if pending else 1 for pending in left], (left, batches)
    assert any(left), left  # the burst left a backlog at least once


async def test_stop_ends_a_waiting_poll(nc: NATS) -> None:
    expires, _ = await pull_requests(nc)
    stop = asyncio.Event()

    async def loop() -> int:
        count = 0
        async for msgs in pull_batches(nc.jetstream(), STREAM, DURABLE, batch=8, stop=stop, timeout=LONG):
            count += len(msgs)
        return count

    task = asyncio.create_task(loop())
    await eventually(lambda: _at_least(expires, 1), "the first poll")
    stop.set()
    # Returns well before the poll's own LONG seconds are up.
    assert await asyncio.wait_for(task, LONG / 2) == 0


async def _at_least(values: list[float] | list[int], count: int) -> bool:
    return len(values) >= count
