"""Discovering running services through the NATS services API (`$SRV.PING` / `$SRV.INFO`)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from nats.aio.client import Client as NATS


async def ping_all(nc: NATS, *, name: str | None = None, wait: float = 0.3) -> list[dict[str, Any]]:
    """Every PING reply that arrives within `wait` seconds (one per service instance)."""
    inbox = nc.new_inbox()
    replies: list[dict[str, Any]] = []
    sub = await nc.subscribe(inbox)
    try:
        await nc.publish(f"$SRV.PING.{name}" if name else "$SRV.PING", b"", reply=inbox)
        await nc.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await sub.next_msg(timeout=left)
            except Exception:
                break
            try:
                replies.append(json.loads(msg.data))
            except ValueError:
                continue
    finally:
        await sub.unsubscribe()
    return replies


async def wait_for_services(nc: NATS, expected: dict[str, int], *, timeout: float = 30.0) -> Counter[str]:
    """Wait until each service name answers PING with at least its expected instance count."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        seen = Counter(reply.get("name", "") for reply in await ping_all(nc))
        if all(seen[name] >= count for name, count in expected.items()):
            return seen
        if loop.time() > deadline:
            missing = {n: c for n, c in expected.items() if seen[n] < c}
            raise TimeoutError(f"services not up after {timeout}s: wanted {missing}, saw {dict(seen)}")
        await asyncio.sleep(0.2)
