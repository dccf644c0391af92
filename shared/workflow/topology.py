"""The whole JetStream topology, for the one step that declares it as the admin identity.

Under the permissions layout services may not create streams, buckets or consumers, so
`imagegen nats setup` declares everything every service pulls from: the renderers' and the
result-notifier's durables (results and advisories) and one ingest durable per registered source
(whichever ingest deployment serves it). Services' own `consumers()` must be among these
(tests/shared/workflow).
"""

from __future__ import annotations

from nats.js.api import ConsumerConfig
from nats.js.client import JetStreamContext

from shared.runtime.bus.streams import (
    advisories_consumer,
    ensure_topology,
    ingest_consumer,
    notifier_consumer,
    renderer_consumer,
)
from shared.runtime.settings import Settings
from shared.sources import SOURCES


def every_consumer(settings: Settings) -> list[tuple[str, ConsumerConfig]]:
    """Every durable consumer of every service, as (stream, config)."""
    return [
        renderer_consumer(settings),
        notifier_consumer(settings),
        advisories_consumer(settings),
        *(ingest_consumer(settings, spec.durable, spec.requests_subject) for spec in SOURCES.values()),
    ]


async def declare_all(js: JetStreamContext, settings: Settings) -> list[str]:
    """Create or update every stream, bucket and durable consumer; returns the consumers' names."""
    consumers = every_consumer(settings)
    await ensure_topology(js, settings, consumers)
    return [f"{stream}/{config.durable_name}" for stream, config in consumers]
