"""Publishing to JetStream through a leader election or a reconnect: the one retry of a publish.

On a cluster a stream's leader can move under a publisher (a server killed, a rolling restart):
for a few seconds a publish finds no stream to answer (`NoStreamResponseError`), gets a 503 or
times out, and on a single server the same happens while it restarts. `publish` retries those
with the shared back-off (`shared.runtime.retry`), for ever by default: a service stalls, never
drops. A message with a `Nats-Msg-Id` is stored once however often it is retried (within the
stream's duplicate window); one without (progress events) may then be stored twice.
"""

from __future__ import annotations

import nats.errors
from nats.js.api import PubAck
from nats.js.client import JetStreamContext
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

from shared.runtime.retry import retrying

# What a publish raises while the stream has no reachable leader; none of it is the message's fault.
JS_UNAVAILABLE: tuple[type[Exception], ...] = (
    TimeoutError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    NoStreamResponseError,
    ServiceUnavailableError,
)


async def publish(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    *,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
    retry_for: float | None = None,
) -> PubAck:
    """`js.publish`, retried while JetStream is unavailable (for at most `retry_for` seconds,
    then the last error is raised; None: until it lands)."""
    return await retrying(
        lambda: js.publish(subject, payload, headers=headers, timeout=timeout),
        on=JS_UNAVAILABLE,
        what="publish",
        retry_for=retry_for,
    )
