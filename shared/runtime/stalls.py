"""Saying where a task waits once it stops making progress, while it still waits.

A handler that waits without end and logs nothing is the hardest failure to explain afterwards:
by the time anyone looks, the process is gone with its stack. `report_stalls` runs beside the
current task and, each time `progress()` has not changed for `after` seconds, logs `event` with
the chain of coroutines the task is suspended in, down to the future it waits on. It changes
nothing else: a wait that is legitimate (a query computing before its first row) is reported
and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

from shared.runtime.logging import get_logger
from shared.runtime.tasks import cancel_and_wait

log = get_logger(__name__)


def _frame(awaitable: Any) -> FrameType | None:
    for attribute in ("cr_frame", "gi_frame", "ag_frame"):
        if (frame := getattr(awaitable, attribute, None)) is not None:
            return frame  # type: ignore[no-any-return]
    return None


def suspended_at(task: asyncio.Task[Any]) -> list[str]:
    """Where `task` is suspended, outermost first: `file:line function` for every coroutine it
    awaits through, then the object at the bottom (a future, or what the chain could not enter)."""
    where: list[str] = []
    awaitable: Any = task.get_coro()
    while awaitable is not None:
        frame = _frame(awaitable)
        if frame is None:
            # An awaited future shows as its iterator: the task's own record of what it waits on
            # (private to asyncio, but the only place that names the future) says more.
            waiter = getattr(task, "_fut_waiter", None)
            where.append(repr(waiter if waiter is not None else awaitable)[:200])
            break
        where.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        awaitable = next(
            (
                inner
                for attribute in ("cr_await", "gi_yieldfrom", "ag_await")
                if (inner := getattr(awaitable, attribute, None)) is not None
            ),
            None,
        )
    return where


@contextlib.asynccontextmanager
async def report_stalls(
    progress: Callable[[], object], *, after: float, event: str, **fields: object
) -> AsyncIterator[None]:
    """Within the block, log `event` (with `fields`) every `after` seconds without progress."""
    task = asyncio.current_task()
    assert task is not None, "report_stalls runs inside a task"
    loop = asyncio.get_running_loop()

    async def watch() -> None:
        last, since = progress(), loop.time()
        while True:
            await asyncio.sleep(after / 4)
            now = progress()
            if now != last:
                last, since = now, loop.time()
            elif loop.time() - since >= after:
                waited = round(loop.time() - since)
                log.warning(event, seconds=waited, waiting_in=suspended_at(task), **fields)
                since = loop.time()  # the next report after another `after` without progress

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        await cancel_and_wait(watcher)
