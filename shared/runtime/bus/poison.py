"""Poison-proof message handling, the one copy every durable consumer's handler runs inside.

A handler that raises on a message is not allowed to take its service down, nor to loop on the
message for ever (nats-py would otherwise leave it un-acked, or the exception would end the pull
loop and with it the process, which restarts into the same message). `settle` runs the handler;
on an exception the message is redelivered after a growing delay (`Backoff.nth` of its delivery
count, which the server keeps, so a restart does not reset it) until it has been delivered
`attempts` times; then the caller's `give_up` records the failure where a user sees it (failed
items, or a failed job, with the reason) and the message is terminated.

A handler keeps transient outages to itself (Postgres away: it naks and returns), so what
reaches here is treated as a property of the message. If recording the failure fails too, the
message is retried slowly and, after twice its attempts, terminated anyway: the job then ends
through the stall watchdog (shared/workflow/watchdog.py), never by looping here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from shared.runtime import metrics
from shared.runtime.logging import get_logger
from shared.runtime.retry import Backoff

log = get_logger(__name__)

# Redelivery delays of a failing message: 1 s doubling to 30 s (1+2+4+8 s over five attempts).
REDELIVERY = Backoff(first=1.0, most=30.0)

GiveUp = Callable[[str], Awaitable[None]]


def delivery_of(msg: Msg) -> int:
    """Which delivery of its message `msg` is (1 for the first)."""
    return msg.metadata.num_delivered if msg.metadata and msg.metadata.num_delivered else 1


def describe(exc: BaseException) -> str:
    """An exception as a failure reason: its type and message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def settle(
    msg: Msg,
    handle: Callable[[], Awaitable[None]],
    give_up: GiveUp,
    *,
    kind: str,
    attempts: int,
    backoff: Backoff = REDELIVERY,
) -> None:
    """Run `handle()` (which acks `msg` itself); never raises an `Exception`.

    When it raises: redeliver after a delay (`backoff`) until `msg` has been delivered `attempts`
    times, then `await give_up(reason)` and terminate `msg` (unless `give_up` settled it).
    """
    try:
        await handle()
        return
    except Exception as exc:
        error = describe(exc)
        log.warning("message.failed", kind=kind, subject=msg.subject, exc_info=True)
    delivery = delivery_of(msg)
    if delivery < attempts:
        delay = backoff.nth(delivery)
        log.warning(
            "message.retry", kind=kind, delivery=delivery, attempts=attempts, retry_in=delay, error=error
        )
        metrics.MESSAGES_FAILED.labels(kind=kind, outcome="retried").inc()
        with contextlib.suppress(Exception):
            await msg.nak(delay=delay)
        return
    reason = f"gave up after {delivery} attempts: {error}"
    log.error("message.gave_up", kind=kind, subject=msg.subject, delivery=delivery, error=error)
    try:
        await give_up(reason)
        metrics.MESSAGES_FAILED.labels(kind=kind, outcome="gave_up").inc()
    except Exception:
        if delivery < 2 * attempts:
            log.exception("message.give_up_failed", kind=kind, delivery=delivery)
            with contextlib.suppress(Exception):
                await msg.nak(delay=backoff.nth(delivery))
            return
        log.exception("message.dropped", kind=kind, subject=msg.subject, delivery=delivery)
        metrics.MESSAGES_FAILED.labels(kind=kind, outcome="dropped").inc()
    if not msg.is_acked:
        with contextlib.suppress(Exception):
            await msg.term()
