"""The cap on a job's batches in the task queue (`shared.workflow.fairness.QueueCap`), on a real
nats-server with the task queue and the renderers' consumer as the services declare them: the
cap holds while renderers consume, the queue is looked at about twice per check rather than on a
fixed backoff, and a job whose batches the renderers hold in full is not held back."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import structlog.testing
from nats.js.client import JetStreamContext

from devstack import NatsServer
from shared.contract.subjects import CONSUMER_RENDERER, STREAM_TASKS, tasks_subject
from shared.runtime.bus.streams import ensure_topology, renderer_consumer
from shared.runtime.settings import Settings
from shared.workflow.fairness import CHECK_EVERY, QueueCap

CAP = 8


@contextlib.asynccontextmanager
async def task_queue() -> AsyncIterator[JetStreamContext]:
    with tempfile.TemporaryDirectory(prefix="imagegen-fairness-") as tmp:
        server = NatsServer.start(Path(tmp))
        nc = await nats.connect(server.url)
        try:
            settings = Settings()
            await ensure_topology(nc.jetstream(), settings, [renderer_consumer(settings)])
            yield nc.jetstream()
        finally:
            await nc.close()
            server.stop()


async def test_the_cap_holds_while_renderers_consume_and_the_queue_is_looked_at_sparingly() -> None:
    total = 48
    async with task_queue() as js:
        subject = tasks_subject("fair")
        cap = QueueCap(js, "fair", subject, CAP, ())
        sub = await js.pull_subscribe_bind(stream=STREAM_TASKS, durable=CONSUMER_RENDERER)
        acked = most = 0

        async def render() -> None:
            nonlocal acked
            while acked < total:
                for msg in await sub.fetch(1, timeout=10):
                    await asyncio.sleep(0.1)  # a batch's render (512 items: 0.1-0.4 s)
                    await msg.ack_sync()
                    acked += 1

        renderer = asyncio.create_task(render())
        for published in range(total):
            await cap.wait(published)
            await js.publish(subject, b"task")
            most = max(most, published + 1 - acked)
        await asyncio.wait_for(renderer, 60)

    # Checked every CHECK_EVERY batches, so up to that many more than the cap are ever queued.
    assert CAP <= most <= CAP + CHECK_EVERY
    checks = (total - CAP) // CHECK_EVERY
    # Sleeping as long as the renderers take to make room, a check looks about twice: the
    # count, then the count again (the consumer only while no consumption rate is known). Asking
    # the consumer at every check's first look made 32 looks for these 10 checks; a backoff from
    # 50 ms, asking the consumer too at each look, made six looks a check.
    assert cap.looks <= 3 * checks, (cap.looks, checks)


async def test_a_job_whose_batches_the_renderers_hold_is_not_held_back() -> None:
    async with task_queue() as js:
        subject = tasks_subject("held")
        for _ in range(CAP + CHECK_EVERY):
            await js.publish(subject, b"task")
        sub = await js.pull_subscribe_bind(stream=STREAM_TASKS, durable=CONSUMER_RENDERER)
        held = await sub.fetch(CAP + CHECK_EVERY, timeout=10)  # delivered, not acked: still queued
        assert len(held) == CAP + CHECK_EVERY
        cap = QueueCap(js, "held", subject, CAP, ())
        # Nothing waits for a renderer: nobody is behind this job, so it may publish at once.
        await asyncio.wait_for(cap.wait(CAP + CHECK_EVERY), 5)
        assert cap.looks == 2  # the count, then the renderers' consumer


async def test_a_check_never_holds_a_job_back_longer_than_its_bound() -> None:
    """Renderers that take nothing (or a count that never falls while tasks wait): the job goes
    on after `max_wait`, and says what the queue looked like."""
    async with task_queue() as js:
        subject = tasks_subject("stuck")
        for _ in range(CAP + CHECK_EVERY):
            await js.publish(subject, b"task")
        cap = QueueCap(js, "stuck", subject, CAP, (), max_wait=1.5)
        started = asyncio.get_running_loop().time()
        with structlog.testing.capture_logs() as logs:
            await asyncio.wait_for(cap.wait(CAP + CHECK_EVERY), 10)
        waited = asyncio.get_running_loop().time() - started
    assert 1.5 <= waited < 4, waited
    ended = [entry for entry in logs if entry["event"] == "tasks.fairness_wait_ended"]
    assert len(ended) == 1 and ended[0]["queued"] == CAP + CHECK_EVERY, logs
    assert ended[0]["renderers_pending"] == CAP + CHECK_EVERY
