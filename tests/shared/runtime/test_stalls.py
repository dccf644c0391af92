"""A task without progress is reported with where it waits; one that progresses is not."""

from __future__ import annotations

import asyncio

import structlog

from shared.runtime.stalls import report_stalls


async def _waits_on(event: asyncio.Event) -> None:
    await _deeper(event)


async def _deeper(event: asyncio.Event) -> None:
    await event.wait()


async def test_a_stalled_task_is_reported_with_the_chain_it_waits_in() -> None:
    released = asyncio.Event()
    progress = 0

    async def handler() -> None:
        async with report_stalls(lambda: progress, after=0.2, event="test.stalled", job_id="j1"):
            await _waits_on(released)

    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(handler())
        await asyncio.sleep(0.55)
        released.set()
        await task
    reports = [entry for entry in logs if entry["event"] == "test.stalled"]
    assert len(reports) == 2, reports  # at 0.2 s and 0.4 s: every `after` seconds, not once
    report = reports[0]
    assert report["job_id"] == "j1" and report["seconds"] >= 0
    functions = [line.rsplit(" ", 1)[-1] for line in report["waiting_in"][:-1]]
    assert functions[-3:] == ["_waits_on", "_deeper", "wait"], report["waiting_in"]
    assert report["waiting_in"][-1].startswith("<Future pending")
    assert all("test_stalls.py" in line for line in report["waiting_in"][1:3])


async def test_a_task_that_progresses_is_not_reported() -> None:
    progress = 0

    async def handler() -> None:
        nonlocal progress
        async with report_stalls(lambda: progress, after=0.2, event="test.stalled"):
            for _ in range(12):
                await asyncio.sleep(0.05)
                progress += 1

    with structlog.testing.capture_logs() as logs:
        await handler()
    assert not [entry for entry in logs if entry["event"] == "test.stalled"]
