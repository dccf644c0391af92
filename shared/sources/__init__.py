"""Input sources as plug-ins, and the registry every part of imagegen reads.

Adding a source is one package under `shared/sources/<name>/` (its request Struct, its reader)
and one entry below. Ingest serves it, JetStream gets its request subject and durable consumer,
the CLI grows `imagegen submit <name>`, the client, the gateway's upload route and the console
offer it, and the AsyncAPI document lists it — all from this registry.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from shared.contract.errors import BadRequest
from shared.contract.submit import SubmitBase
from shared.sources import csv, db, jsonl, xlsx
from shared.sources.base import Checked, Row, Source, SourceContext, SourceSpec

SOURCES: Final[dict[str, SourceSpec[Any]]] = {
    spec.name: spec for spec in (csv.SOURCE, db.SOURCE, xlsx.SOURCE, jsonl.SOURCE)
}

# Every submit request, as one tagged union (`{"source": "csv", ...}`), for generic decoding.
SUBMIT_TYPES: Final = tuple(spec.request for spec in SOURCES.values())


def source(name: str, *, field: str = "source") -> SourceSpec[Any]:
    """The registered source `name`, or `BadRequest` listing the known ones."""
    spec = SOURCES.get(name)
    if spec is None:
        raise BadRequest(f"unknown source {name!r} (known: {', '.join(SOURCES)})", field=field)
    return spec


def source_of(request: SubmitBase) -> SourceSpec[Any]:
    """The source a request belongs to, by its type."""
    tag = msgspec.inspect.type_info(type(request)).tag  # type: ignore[attr-defined]
    return source(str(tag))


__all__ = [
    "SOURCES",
    "SUBMIT_TYPES",
    "Checked",
    "Row",
    "Source",
    "SourceContext",
    "SourceSpec",
    "source",
    "source_of",
]
