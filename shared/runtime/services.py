"""The services of imagegen: the one list of what runs, by name and module.

`imagegen serve NAME`, the local stack, the gateway's health check and the container health check
read it. Each service registers with the NATS services API under its name, so `$SRV.PING`
finds every replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str  # the `$SRV` name and `imagegen serve NAME`
    module: str  # `python -m MODULE` runs one replica
    summary: str
    required: bool = True  # a job cannot finish without it (the gateway is optional)


SERVICES: Final = {
    spec.name: spec
    for spec in (
        ServiceSpec("ingest", "services.ingest", "answers submits, records jobs, streams rows into tasks"),
        ServiceSpec("renderer", "services.renderer", "renders tasks into images; fonts, validate, preview"),
        ServiceSpec("result-notifier", "services.result_notifier", "keeps the ledger, publishes job events"),
        ServiceSpec("gateway", "services.gateway", "HTTP API and web console", required=False),
    )
}

REQUIRED: Final = tuple(name for name, spec in SERVICES.items() if spec.required)
