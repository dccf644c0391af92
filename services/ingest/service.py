"""The ingest service: one submit endpoint and one ingest worker per source it serves."""

from __future__ import annotations

from collections.abc import Coroutine
from functools import partial
from typing import Any

import msgspec
from nats.js.api import ConsumerConfig

from shared.contract.codec import decode_json, encode_json, refuse_nul
from shared.contract.submit import SubmitBase
from shared.render import FontCatalogue, parse_style
from shared.runtime.bus.service import Endpoint, Service
from shared.runtime.bus.streams import ingest_consumer
from shared.runtime.ledger import Ledger
from shared.runtime.settings import Settings
from shared.sources import SOURCES, Source, SourceContext, SourceSpec, source
from shared.sources.table import check_overrides
from shared.storage import NameTemplate, open_store
from shared.workflow.accept import accept_submit
from shared.workflow.active import ActiveJobs
from shared.workflow.ingest import IngestWorker


class Ingest(Service):
    name = "ingest"
    description = "Validates submits, records each job and streams its rows into render tasks"
    ledger: Ledger

    @staticmethod
    def sources_of(settings: Settings) -> list[SourceSpec[Any]]:
        """The sources this process serves: `IMAGEGEN_INGEST_SOURCES`, or every registered one."""
        names = settings.ingest_sources or list(SOURCES)
        return [source(name, field="IMAGEGEN_INGEST_SOURCES") for name in names]

    @classmethod
    def consumers(cls, settings: Settings) -> list[tuple[str, ConsumerConfig]]:
        return [
            ingest_consumer(settings, spec.durable, spec.requests_subject)
            for spec in cls.sources_of(settings)
        ]

    def served(self) -> list[SourceSpec[Any]]:
        return self.sources_of(self.settings)

    def metadata(self) -> dict[str, str]:
        return {"sources": ",".join(spec.name for spec in self.served())}

    async def start(self) -> None:
        self.ledger = await Ledger.open(self.settings.database_url)
        self.store = open_store(self.settings, self.ctx.js)
        self.active = ActiveJobs(self.ctx.js)
        self.catalogue = FontCatalogue.load(self.settings.font_dirs)
        context = SourceContext(self.settings, self.ctx.js)
        self.sources: dict[str, Source[Any]] = {spec.name: spec.load(context) for spec in self.served()}

    async def stop(self) -> None:
        for reader in self.sources.values():
            await reader.close()
        await self.ledger.close()

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(f"submit-{spec.name}", spec.submit_subject, partial(self.submit, spec))
            for spec in self.served()
        ]

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        return [
            IngestWorker(self.ctx, self.ledger, self.store, self.active, spec, self.sources[spec.name]).run()
            for spec in self.served()
        ]

    async def submit(self, spec: SourceSpec[Any], payload: bytes) -> bytes:
        """Check a submit as far as is cheap (shape, style, names, the source's own check), then
        record and queue the job; the reply is `Accepted`."""
        request: SubmitBase = decode_json(payload, spec.request)
        refuse_nul(request)
        parse_style(request.style, catalogue=self.catalogue)
        NameTemplate(request.name_template)
        check_overrides(request)
        checked = await self.sources[spec.name].check(request)
        if checked.resolved:
            request = msgspec.structs.replace(request, **checked.resolved)
        accepted = await accept_submit(
            self.ctx.js, self.ledger, spec, request, output_for=self.store.location, active=self.active
        )
        return encode_json(msgspec.structs.replace(accepted, detected=checked.notes))
