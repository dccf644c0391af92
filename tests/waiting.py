"""Waiting for the event that matters instead of sleeping and hoping: poll a check against a
generous deadline (a loaded machine is slow, never wrong), and read what services logged.

The deadline is a liveness bound, not a measurement: a test that waits here asserts what
happened, never how long it took.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from nats.js.api import ConsumerInfo
from nats.js.client import JetStreamContext

from devstack.stack import LocalStack

T = TypeVar("T")

# Long enough for any of these waits on a 2-core machine shared by several runs.
DEADLINE = 60.0


async def eventually(
    check: Callable[[], Awaitable[T]],
    what: str | Callable[[], str],
    *,
    timeout: float = DEADLINE,
    every: float = 0.1,
) -> T:
    """Poll `check` until it returns something truthy and return that; fail naming `what` (and
    the last value seen) after `timeout` seconds. `what` may be a callable, to describe the
    state the check last saw."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"not within {timeout}s: {described} (last: {value!r})")
        await asyncio.sleep(every)


def log_entries(stack: LocalStack, service: str | None, event: str) -> list[dict[str, Any]]:
    """Every JSON log line `service` (all its replicas; None: every service) wrote with this
    `event`, in file order."""
    entries = []
    for proc in stack.processes:
        if service is not None and proc.name != service:
            continue
        for line in proc.log_file.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{event}"' in line:
                entry = json.loads(line)
                if entry.get("event") == event:
                    entries.append(entry)
    return entries


async def logged(
    stack: LocalStack, service: str, event: str, job_id: str, *, count: int = 1, timeout: float = DEADLINE
) -> dict[str, Any]:
    """The `count`-th `event` line `service` logged about `job_id` (waiting for it)."""

    async def found() -> list[dict[str, Any]]:
        entries = [e for e in log_entries(stack, service, event) if e.get("job_id") == job_id]
        return entries if len(entries) >= count else []

    entries = await eventually(found, f"{service} logging {event} x{count} for {job_id}", timeout=timeout)
    return entries[count - 1]


async def consumer_settled(js: JetStreamContext, stream: str, consumer: str) -> ConsumerInfo:
    """The consumer's state once everything delivered to it has been acknowledged or terminated
    (its ack floor has caught up with its deliveries) and nothing waits for delivery. A message
    that is nak'ed or left to time out keeps the floor behind until it is finally settled."""

    async def settled() -> ConsumerInfo | None:
        info = await js.consumer_info(stream, consumer)
        caught_up = info.ack_floor is not None and info.delivered is not None
        caught_up = caught_up and info.ack_floor.stream_seq == info.delivered.stream_seq
        idle = not info.num_pending and not info.num_ack_pending and not info.num_redelivered
        return info if caught_up and idle else None

    return await eventually(settled, f"consumer {stream}/{consumer} settling")
