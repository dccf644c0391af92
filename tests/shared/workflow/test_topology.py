"""`imagegen nats setup` declares every durable consumer any service pulls from, as the service
itself would declare it: under the permissions layout services cannot declare their own."""

from __future__ import annotations

from services.ingest.service import Ingest
from services.renderer.service import Renderer
from services.result_notifier.service import ResultNotifier
from shared.runtime.settings import Settings
from shared.sources import SOURCES
from shared.workflow.topology import every_consumer


def test_setup_declares_each_services_consumers_with_the_same_config() -> None:
    settings = Settings(ack_wait_seconds=7, max_deliver=3)
    declared = {(stream, config.durable_name): config for stream, config in every_consumer(settings)}
    wanted = [
        *Renderer.consumers(settings),
        *ResultNotifier.consumers(settings),
        # An ingest deployment serves some sources; setup declares them all.
        *Ingest.consumers(Settings(ack_wait_seconds=7, max_deliver=3, ingest_sources=list(SOURCES))),
    ]
    assert len(wanted) == len(declared) == 3 + len(SOURCES)
    for stream, config in wanted:
        assert declared[(stream, config.durable_name)] == config, (stream, config.durable_name)
    ingest_db = Ingest.consumers(Settings(ingest_sources=["db"]))
    assert {(s, c.durable_name) for s, c in ingest_db} <= set(declared)
