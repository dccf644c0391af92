"""NATS plumbing shared by every service: connecting, declaring streams, pulling, serving."""

from shared.bus.connect import connect
from shared.bus.consumer import pull_batches
from shared.bus.service import Endpoint, Service, ServiceContext, run_service
from shared.bus.streams import ensure_topology

__all__ = [
    "Endpoint",
    "Service",
    "ServiceContext",
    "connect",
    "ensure_topology",
    "pull_batches",
    "run_service",
]
