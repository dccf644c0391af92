"""Background tasks a service owns: started with an optional bound, awaited at shutdown.

One helper instead of a set, a semaphore and two done-callbacks in every loop: `TaskSet(limit)`
runs at most `limit` tasks at once (`spawn` waits for a slot), keeps a reference to each (so none
is garbage-collected mid-flight) and `join` waits for them with a grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class TaskSet:
    def __init__(self, limit: int | None = None) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slots = asyncio.Semaphore(limit) if limit else None

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait_for_slot(self) -> None:
        """Return once a task could start without waiting (no-op when unbounded)."""
        if self._slots is not None:
            await self._slots.acquire()
            self._slots.release()

    async def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Start `coro` as a task, first waiting for a slot when the set is bounded."""
        if self._slots is not None:
            await self._slots.acquire()
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if self._slots is not None:
            self._slots.release()

    async def join(self, timeout: float | None = None) -> set[asyncio.Task[Any]]:
        """Wait for every task (at most `timeout` s); cancel and return those still running."""
        if not self._tasks:
            return set()
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        return pending
