"""The ingest-csv service: the `imagegen.submit.csv` endpoint and the CSV ingest worker."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import aiofiles.os
import msgspec
from nats.js.errors import NotFoundError, ObjectNotFoundError

from services.ingest_csv.reader import CsvLayout, iter_rows, layout_of, open_source, open_text
from shared.bus.service import Endpoint, Service
from shared.contract.codec import decode_json
from shared.contract.errors import BadRequest
from shared.contract.messages import IngestRequest, SubmitCsv, SubmitDb
from shared.contract.style import Style
from shared.contract.subjects import BUCKET_INPUTS, CONSUMER_INGEST_CSV, SUBMIT_CSV
from shared.ingest import Row, accept_submit, ingest_worker
from shared.ledger import Ledger
from shared.render import FontCatalogue
from shared.render.styles import parse_style
from shared.storage import DirectoryStore, NameTemplate

ROWS_PER_YIELD = 256
# Style fields a CSV cell can override: every scalar field. `shadow` and `axes` are nested
# objects, which a single cell cannot spell unambiguously.
OVERRIDABLE = frozenset(f.name for f in msgspec.structs.fields(Style)) - {"shadow", "axes"}


def override_columns(submit: SubmitCsv) -> dict[str, tuple[str, str | int]]:
    """The request's per-row style overrides as {style field: (request field, column)},
    checked: known, overridable fields, each mapped once."""
    columns = submit.override_columns()
    resolved: dict[str, tuple[str, str | int]] = {}
    for style_field, column in columns.items():
        shorthand = {"color": submit.color_column, "font": submit.font_column}.get(style_field)
        request_field = f"{style_field}_column" if shorthand is not None else f"style_columns.{style_field}"
        if style_field not in OVERRIDABLE:
            known = ", ".join(sorted(OVERRIDABLE))
            raise BadRequest(
                f"{style_field!r} cannot be set per row; overridable style fields: {known}",
                field=request_field,
            )
        resolved[style_field] = (request_field, column)
    return resolved


class IngestCsv(Service):
    """Validates CSV submits, records the job and streams rows into render tasks."""

    name = "ingest-csv"
    description = "Validates CSV submits, records the job and streams rows into render tasks"
    ledger: Ledger

    async def start(self) -> None:
        self.ledger = await Ledger.open(self.settings.database_url)
        self.store = DirectoryStore(self.settings.output_dir)
        self.catalogue = FontCatalogue.load(self.settings.font_dirs)

    async def stop(self) -> None:
        await self.ledger.close()

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("submit-csv", SUBMIT_CSV, self.submit)]

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        return [ingest_worker(self.ctx, self.ledger, CONSUMER_INGEST_CSV, self.rows)]

    def allowed_path(self, name: str) -> Path:
        """`name` under the configured allowed folder; anything that escapes it is refused."""
        root = self.settings.csv_allowed_dir
        if root is None:
            raise BadRequest("server paths are not enabled on this server", field="path")
        root = root.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or path == root:
            raise BadRequest("must name a file inside the allowed folder", field="path")
        if not path.is_file():
            raise BadRequest(f"no file {name!r} in the allowed folder", field="path")
        return path

    @contextlib.asynccontextmanager
    async def local_file(self, submit: SubmitCsv) -> AsyncIterator[Path | None]:
        """The CSV as a local file: the allowed path itself, or the uploaded object streamed
        into a temporary file (memory stays flat whatever its size); None for inline text."""
        if submit.path is not None:
            yield self.allowed_path(submit.path)
            return
        if submit.object is None:
            yield None
            return
        store = await self.ctx.js.object_store(BUCKET_INPUTS)
        try:
            await store.get_info(submit.object)
        except (ObjectNotFoundError, NotFoundError) as exc:
            raise BadRequest(
                f"no object {submit.object!r} in bucket {BUCKET_INPUTS}", field="object"
            ) from exc
        fd, name = tempfile.mkstemp(prefix="imagegen-", suffix=".csv")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                await store.get(submit.object, writeinto=handle)
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                await aiofiles.os.remove(path)

    def check_source(self, submit: SubmitCsv, path: Path | None) -> None:
        """Cheap checks that belong in the submit reply: one source, it decodes, the column is there."""
        if submit.csv is not None and len(submit.csv.encode("utf-8")) > self.settings.max_inline_csv_bytes:
            raise BadRequest(
                f"inline CSV is larger than {self.settings.max_inline_csv_bytes} bytes", field="csv"
            )
        with open_source(submit.csv, path) as raw:
            text = open_text(raw, submit.encoding)
            layout = self.layout(submit, text)
            if not any(True for _ in zip(range(1), iter_rows(text, layout), strict=False)):
                raise BadRequest("the file has no data rows", field="csv")

    @staticmethod
    def layout(submit: SubmitCsv, text: io.TextIOWrapper) -> CsvLayout:
        return layout_of(
            text,
            column=submit.column,
            has_header=submit.has_header,
            delimiter=submit.delimiter,
            filename_column=submit.filename_column,
            style_columns=override_columns(submit),
        )

    async def submit(self, payload: bytes) -> bytes:
        submit = decode_json(payload, SubmitCsv)
        parse_style(submit.style, catalogue=self.catalogue)
        NameTemplate(submit.name_template)
        if submit.filename_column is not None and submit.name_template != "{index}":
            raise BadRequest(
                "give either filename_column or name_template, not both", field="filename_column"
            )
        override_columns(submit)
        given = [name for name in ("csv", "object", "path") if getattr(submit, name) is not None]
        if len(given) != 1:
            raise BadRequest("give exactly one of csv, object or path", field="csv")
        async with self.local_file(submit) as path:
            await asyncio.to_thread(self.check_source, submit, path)
        return await accept_submit(self.ctx.js, self.ledger, submit, output_for=self.store.location)

    async def rows(self, request: IngestRequest, submit: SubmitCsv | SubmitDb) -> AsyncGenerator[Row, None]:
        assert isinstance(submit, SubmitCsv)
        async with self.local_file(submit) as path:
            async for row in self._rows_of(submit, path):
                yield row

    async def _rows_of(self, submit: SubmitCsv, path: Path | None) -> AsyncGenerator[Row, None]:
        with open_source(submit.csv, path) as raw:
            text = open_text(raw, submit.encoding)
            layout = self.layout(submit, text)
            with_values = bool(NameTemplate(submit.name_template).columns)
            for count, row in enumerate(iter_rows(text, layout, with_values=with_values), 1):
                yield row
                if count % ROWS_PER_YIELD == 0:
                    await asyncio.sleep(0)  # let heartbeats and replies through on huge files
