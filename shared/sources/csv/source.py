"""The CSV source: checks a submit from the file's head, streams its rows at ingest."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncGenerator

from shared.contract.errors import BadRequest, SourceError
from shared.sources.base import Checked, Row, SourceContext, in_chunks
from shared.sources.csv.reader import SNIFF_BYTES, iter_records, layout_of, open_text
from shared.sources.csv.request import SubmitCsv
from shared.sources.files import head, line_limit, local_file
from shared.sources.table import Columns
from shared.storage.naming import NameTemplate

# The check reads this much of an upload: the sniff sample, the header and a first row.
HEAD_BYTES = 256 * 1024


class CsvSource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx

    async def close(self) -> None:
        return None

    def _check_inline_size(self, request: SubmitCsv) -> None:
        limit = self.ctx.settings.max_inline_csv_bytes
        if request.csv is not None and len(request.csv.encode("utf-8")) > limit:
            raise BadRequest(f"inline CSV is larger than {limit} bytes", field="csv")

    async def check(self, request: SubmitCsv) -> Checked:
        self._check_inline_size(request)
        data = await head(self.ctx, request, "csv", HEAD_BYTES)
        return await asyncio.to_thread(self._check_head, request, data, len(data) >= HEAD_BYTES)

    @staticmethod
    def _check_head(request: SubmitCsv, data: bytes, truncated: bool) -> Checked:
        text, detected = open_text(io.BytesIO(data), request.encoding)
        layout = layout_of(text, has_header=request.has_header, delimiter=request.delimiter)
        Columns.resolve(request, layout.header)
        try:
            first = next(iter_records(text, layout), None)
        except SourceError as exc:
            if not truncated:
                raise BadRequest(str(exc), field="csv") from exc
            first = None  # the head ends inside a character or a quoted field: not the file's fault
        if first is None:
            if truncated:
                raise BadRequest(
                    f"no complete data row in the file's first {HEAD_BYTES // 1024} KiB", field="csv"
                )
            raise BadRequest("the file has no data rows", field="csv")
        notes = {"encoding": detected.encoding, "encoding_confidence": f"{detected.confidence:.2f}"}
        notes |= {"encoding_evidence": detected.how, "delimiter": layout.delimiter}
        # The job runs with what was checked here: ingest decodes the whole file the same way.
        resolved: dict[str, object] = {"encoding": detected.encoding} if request.encoding is None else {}
        return Checked(notes, resolved)

    async def chunks(self, request: SubmitCsv) -> AsyncGenerator[list[Row], None]:
        self._check_inline_size(request)
        with_values = bool(NameTemplate(request.name_template).columns)
        async with local_file(self.ctx, request, "csv") as path:
            with path.open("rb") as raw:
                text, _ = open_text(raw, request.encoding)
                layout = layout_of(text, has_header=request.has_header, delimiter=request.delimiter)
                columns = Columns.resolve(request, layout.header)
                records = iter_records(text, layout, max_line=line_limit(self.ctx.settings.max_row_bytes))
                async for chunk in in_chunks(columns.rows(records, with_values=with_values)):
                    yield chunk


__all__ = ["SNIFF_BYTES", "CsvSource"]
