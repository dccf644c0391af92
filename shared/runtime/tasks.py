"""Background tasks a service owns: started with an optional bound, stopped for sure.

One helper instead of a set, a semaphore and two done-callbacks in every loop: `TaskSet(limit)`
runs at most `limit` tasks at once (`spawn` waits for a slot), keeps a reference to each (so none
is garbage-collected mid-flight) and `join` waits for them with a grace period. `cancel_and_wait`
stops a helper task even when a cancellation is lost on the way (see there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

CANCEL_WITHIN = 5.0  # seconds `cancel_and_wait` keeps cancelling a task before it gives up
# A task's own clean-up (a finally that unsubscribes) gets this long before it is cancelled again.
_RECANCEL_EVERY = 0.5


async def cancel_and_wait(task: asyncio.Task[Any], *, within: float = CANCEL_WITHIN) -> bool:
    """Cancel `task` and wait until it has ended; False if it still runs after `within` s.

    A cancellation can be lost on Python 3.11: `asyncio.wait_for` returns its inner future's
    result instead of raising when that future completes in the same loop iteration as the
    cancel (python/cpython#86296, fixed in 3.12), and nats-py awaits every request that way. A
    task that lost it runs on, and `task.cancel(); await task` then waits for ever (an ingest
    handler once waited minutes for its cancellation poller so). The cancel is repeated until
    the task ends. Its result or exception is left on it, retrieved.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=min(_RECANCEL_EVERY, remaining))
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" at garbage collection
    return True


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
