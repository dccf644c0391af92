"""NATS plumbing shared by every service: connecting, declaring streams, pulling, serving."""

from shared.runtime.bus.connect import connect
from shared.runtime.bus.consumer import pull_batches
from shared.runtime.bus.service import Endpoint, Service, ServiceContext, run_service
from shared.runtime.bus.streams import ensure_topology

__all__ = [
    "Endpoint",
    "Service",
    "ServiceContext",
    "connect",
    "ensure_topology",
    "pull_batches",
    "run_service",
]
