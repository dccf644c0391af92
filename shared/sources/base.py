"""The plug-in interface of an input source, and the row it produces.

A source is a package under `shared/sources/<name>/` that exports `SOURCE`, a `SourceSpec`:
its name (the submit tag and subject suffix), its request Struct and the class that reads it.
The class is named by a dotted path and imported only where rows are read (the ingest service),
so the CLI, the client and the gateway learn about a source without loading its driver.

A `Source` does two things with a request: `check` it at submit time (cheap: the column exists,
the file decodes — reading at most the head of an upload), and stream its rows at ingest, a
chunk at a time (`chunks`): ingest handles millions of rows, and a list of rows crosses the
async boundary once where single rows crossed it each (an async generator step and a cancel
check per row cost about as much as parsing the row).
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
from collections.abc import AsyncGenerator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import msgspec
from nats.js.client import JetStreamContext

from shared.contract import subjects
from shared.contract.submit import SubmitBase
from shared.runtime.settings import Settings

R = TypeVar("R", bound=SubmitBase)
# Rows in a chunk: a few hundred microseconds of reading, after which other tasks (heartbeats,
# replies) get a turn on a huge file.
ROWS_PER_CHUNK = 256
R_contra = TypeVar("R_contra", bound=SubmitBase, contravariant=True)


class Row(msgspec.Struct, frozen=True):
    """One source row as an item to render (a Struct: built once per row, where a frozen
    dataclass's __init__ cost ten times as much).

    `index` is the item's 0-based position in the source; `row` the source's own row number as a
    user finds it (a CSV line, a sheet row, a JSON Lines line, a result row). `values` maps column
    names to cells (for name templates); `error` set means the row cannot be rendered and fails
    as its own item; `filename` is the file-name column's cell and `style` the row's non-empty
    style overrides {field: cell}.
    """

    index: int
    text: str
    row: int = 0
    values: Mapping[str, str] | None = None
    error: str | None = None
    filename: str | None = None
    style: dict[str, str] | None = None


async def in_chunks(rows: Iterator[Row]) -> AsyncGenerator[list[Row], None]:
    """`rows` (read synchronously: a file, a sheet) as chunks of `ROWS_PER_CHUNK`, the event loop
    getting a turn between chunks."""
    while chunk := list(itertools.islice(rows, ROWS_PER_CHUNK)):
        yield chunk
        await asyncio.sleep(0)


def oversized_row(size: int, limit: int) -> str:
    """The reason a row over the row limit fails, in the words of every source."""
    return f"the row is {size} bytes; rows are limited to {limit} (IMAGEGEN_MAX_ROW_BYTES)"


@dataclass(frozen=True, slots=True)
class Checked:
    """What a submit-time check learned: `notes` for the submitter (a detected encoding and how
    sure it is), and `resolved` request fields to store with the job, so ingest reads the source
    exactly as it was checked (the detected encoding, say)."""

    notes: dict[str, str] = field(default_factory=dict)
    resolved: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a source may use: the settings and the JetStream context (uploads live there)."""

    settings: Settings
    js: JetStreamContext


class Source(Protocol[R_contra]):
    """Reads one kind of request. One instance serves every job of its source in a process."""

    async def check(self, request: R_contra) -> Checked:
        """Refuse a request that cannot work (`BadRequest` naming the field), cheaply."""
        ...

    def chunks(self, request: R_contra) -> AsyncGenerator[list[Row], None]:
        """The request's rows in order, streamed as lists of rows (never empty); a broken source
        raises `SourceError` mid-way."""
        ...

    async def close(self) -> None:
        """Release pools and files."""
        ...


@dataclass(frozen=True)
class SourceSpec(Generic[R]):
    """A registered input source.

    `inline` names the request field that carries the data itself (`csv`, `jsonl`), if the
    format allows it; `uploads` are the file extensions a client uploads for it (empty for a
    source that reads no file, like a database query).
    """

    name: str
    request: type[R]
    summary: str
    implementation: str  # "package.module:Class", a `Source` taking a `SourceContext`
    inline: str | None = None
    uploads: tuple[str, ...] = ()

    @property
    def submit_subject(self) -> str:
        return subjects.submit_subject(self.name)

    @property
    def requests_subject(self) -> str:
        return subjects.requests_subject(self.name)

    @property
    def durable(self) -> str:
        """The durable consumer of this source's accepted requests, shared by ingest replicas."""
        return f"ingest-{self.name}"

    @property
    def takes_files(self) -> bool:
        return bool(self.uploads)

    def load(self, ctx: SourceContext) -> Source[Any]:
        """Import the implementation and make one for this process."""
        module, _, name = self.implementation.partition(":")
        source_type = getattr(importlib.import_module(module), name)
        source: Source[Any] = source_type(ctx)
        return source
