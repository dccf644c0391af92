"""The ingest-db service: the `imagegen.submit.db` endpoint and the query ingest worker.

Data sources are named in server settings (name -> DSN), each with its own small pool; a
message can name a source but never carry a DSN. The query runs in a READ ONLY transaction
with a statement timeout, and rows stream through a server-side cursor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Coroutine
from typing import Any

import asyncpg

from services.ingest_db.query import check_select
from shared.bus.service import Endpoint, Service
from shared.contract.codec import decode_json
from shared.contract.errors import BadRequest, SourceError
from shared.contract.messages import IngestRequest, SubmitCsv, SubmitDb
from shared.contract.subjects import CONSUMER_INGEST_DB, SUBMIT_DB
from shared.ingest import Row, accept_submit, ingest_worker
from shared.ledger import Ledger
from shared.render import FontCatalogue
from shared.render.styles import parse_style
from shared.storage import DirectoryStore, NameTemplate

CURSOR_PREFETCH = 1000


def _text(value: object) -> str:
    return "" if value is None else str(value)


class IngestDb(Service):
    name = "ingest-db"
    description = "Validates database submits and streams read-only query rows into render tasks"
    ledger: Ledger

    async def start(self) -> None:
        self.ledger = await Ledger.open(self.settings.database_url)
        self.store = DirectoryStore(self.settings.output_dir)
        self.catalogue = FontCatalogue.load(self.settings.font_dirs)
        self.pools: dict[str, asyncpg.Pool] = {}
        self._pool_lock = asyncio.Lock()

    async def stop(self) -> None:
        await self.ledger.close()
        for pool in self.pools.values():
            await pool.close()

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("submit-db", SUBMIT_DB, self.submit)]

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        return [ingest_worker(self.ctx, self.ledger, CONSUMER_INGEST_DB, self.rows)]

    async def pool(self, source: str) -> asyncpg.Pool:
        dsn = self.settings.data_sources.get(source)
        if dsn is None:
            known = ", ".join(sorted(self.settings.data_sources)) or "none configured"
            raise BadRequest(f"unknown data source {source!r} (known: {known})", field="source")
        async with self._pool_lock:
            if source not in self.pools:
                try:
                    self.pools[source] = await asyncpg.create_pool(
                        dsn,
                        min_size=0,
                        max_size=4,
                        server_settings={
                            "statement_timeout": str(int(self.settings.db_statement_timeout_seconds * 1000)),
                            "default_transaction_read_only": "on",
                        },
                    )
                except (OSError, asyncpg.PostgresError) as exc:
                    raise SourceError(f"data source {source!r} is unreachable: {exc}") from exc
            return self.pools[source]

    async def columns(self, submit: SubmitDb) -> list[str]:
        """The query's result columns, from the server's own parse of it (nothing is run)."""
        pool = await self.pool(submit.source)
        query = check_select(submit.query)
        async with pool.acquire() as conn:
            try:
                statement = await conn.prepare(query)
            except asyncpg.PostgresError as exc:
                raise BadRequest(f"rejected by the database: {exc}", field="query") from exc
            return [attr.name for attr in statement.get_attributes()]

    def column_index(self, submit: SubmitDb, names: list[str]) -> int:
        if isinstance(submit.column, int):
            if submit.column >= len(names):
                raise BadRequest(f"the query returns {len(names)} columns", field="column")
            return submit.column
        if submit.column not in names:
            raise BadRequest(
                f"the query returns no column {submit.column!r} ({', '.join(names)})", field="column"
            )
        return names.index(submit.column)

    async def submit(self, payload: bytes) -> bytes:
        submit = decode_json(payload, SubmitDb)
        parse_style(submit.style, catalogue=self.catalogue)
        NameTemplate(submit.name_template)
        self.column_index(submit, await self.columns(submit))
        return await accept_submit(self.ctx.js, self.ledger, submit, output_for=self.store.location)

    async def rows(self, request: IngestRequest, submit: SubmitCsv | SubmitDb) -> AsyncGenerator[Row, None]:
        assert isinstance(submit, SubmitDb)
        pool = await self.pool(submit.source)
        query = check_select(submit.query)
        index = 0
        try:
            async with pool.acquire() as conn, conn.transaction(readonly=True):
                statement = await conn.prepare(query)
                names = [attr.name for attr in statement.get_attributes()]
                column = self.column_index(submit, names)
                limit = self.settings.db_row_limit
                async for record in statement.cursor(*submit.params, prefetch=CURSOR_PREFETCH):
                    if index >= limit:
                        raise SourceError(
                            f"the query returns more than {limit} rows (the server's row limit)"
                        )
                    values = {name: _text(record[i]) for i, name in enumerate(names)}
                    text = values[names[column]]
                    if not text.strip():
                        yield Row(
                            index, "", values, f"row {index + 1}: empty text in column {names[column]!r}"
                        )
                    else:
                        yield Row(index, text, values)
                    index += 1
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            raise SourceError(f"query failed after {index} rows: {exc}") from exc
