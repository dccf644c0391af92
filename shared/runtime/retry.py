"""Exponential back-off, the one copy: how every loop that waits for a server paces itself.

`Backoff` is the delay sequence (0.2 s doubling to 5 s by default); `retrying` calls a coroutine
until it succeeds, sleeping that sequence between failures of the listed kinds, for ever or until
a deadline (services wait for ever; a command at a shell gives up and says why).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from shared.runtime.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")


@dataclass
class Backoff:
    """Delays that grow by `factor` from `first` up to `most`; `reset` after a success."""

    first: float = 0.2
    most: float = 5.0
    factor: float = 2.0
    _next: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._next = self.first

    def reset(self) -> None:
        self._next = self.first

    def delay(self) -> float:
        """The next delay (and grow the one after)."""
        delay = self._next
        self._next = min(delay * self.factor, self.most)
        return delay

    def nth(self, failures: int) -> float:
        """The delay after `failures` consecutive failures (1 gives `first`), without touching the
        sequence: for a message redelivered by the server, whose count the server keeps."""
        return min(self.first * self.factor ** max(failures - 1, 0), self.most)

    async def sleep(self) -> float:
        """Sleep the next delay; returns how long."""
        delay = self.delay()
        await asyncio.sleep(delay)
        return delay


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    on: tuple[type[BaseException], ...],
    what: str,
    retry_for: float | None = None,
    backoff: Backoff | None = None,
) -> T:
    """`await call()` until it returns, backing off after each failure of a kind in `on`.

    With `retry_for` (seconds) the last failure is raised once the next wait would pass the
    deadline. Every failure is logged as `<what>.retry` with the error and the wait.
    """
    backoff = backoff or Backoff()
    loop = asyncio.get_running_loop()
    deadline = None if retry_for is None else loop.time() + retry_for
    while True:
        try:
            return await call()
        except on as exc:
            delay = backoff.delay()
            if deadline is not None and loop.time() + delay > deadline:
                raise
            log.warning(f"{what}.retry", error=str(exc) or type(exc).__name__, retry_in=delay)
            await asyncio.sleep(delay)
