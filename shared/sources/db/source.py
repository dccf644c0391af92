"""The database source: named data sources, each with its own small pool.

A request names a source but never carries a DSN. The query runs in a READ ONLY transaction with
a statement timeout, rows stream through a server-side cursor, and the submit-time check only
prepares the statement (the server's own parse: nothing is run).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import asyncpg

from shared.contract.errors import BadRequest, SourceError
from shared.sources.base import Checked, Row, SourceContext
from shared.sources.db.query import check_select
from shared.sources.db.request import SubmitDb
from shared.sources.table import Columns
from shared.storage.naming import NameTemplate

CURSOR_PREFETCH = 1000


def _text(value: object) -> str:
    return "" if value is None else str(value)


class DbSource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.pools: dict[str, asyncpg.Pool] = {}
        self._pool_lock = asyncio.Lock()

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()

    async def pool(self, name: str) -> asyncpg.Pool:
        settings = self.ctx.settings
        dsn = settings.data_sources.get(name)
        if dsn is None:
            known = ", ".join(sorted(settings.data_sources)) or "none configured"
            raise BadRequest(f"unknown data source {name!r} (known: {known})", field="data_source")
        async with self._pool_lock:
            if name not in self.pools:
                try:
                    self.pools[name] = await asyncpg.create_pool(
                        dsn,
                        min_size=0,
                        max_size=4,
                        server_settings={
                            "statement_timeout": str(int(settings.db_statement_timeout_seconds * 1000)),
                            "default_transaction_read_only": "on",
                        },
                    )
                except (OSError, asyncpg.PostgresError) as exc:
                    raise SourceError(f"data source {name!r} is unreachable: {exc}") from exc
            return self.pools[name]

    async def check(self, request: SubmitDb) -> Checked:
        pool = await self.pool(request.data_source)
        query = check_select(request.query)
        async with pool.acquire() as conn:
            try:
                statement = await conn.prepare(query)
            except asyncpg.PostgresError as exc:
                raise BadRequest(f"rejected by the database: {exc}", field="query") from exc
            Columns.resolve(request, [attr.name for attr in statement.get_attributes()])
        return Checked()

    async def rows(self, request: SubmitDb) -> AsyncGenerator[Row, None]:
        pool = await self.pool(request.data_source)
        query = check_select(request.query)
        with_values = bool(NameTemplate(request.name_template).columns)
        limit = self.ctx.settings.db_row_limit
        index = 0
        try:
            async with pool.acquire() as conn, conn.transaction(readonly=True):
                statement = await conn.prepare(query)
                columns = Columns.resolve(request, [attr.name for attr in statement.get_attributes()])
                async for record in statement.cursor(*request.params, prefetch=CURSOR_PREFETCH):
                    if index >= limit:
                        raise SourceError(
                            f"the query returns more than {limit} rows (the server's row limit)"
                        )
                    cells = [_text(value) for value in record.values()]
                    yield columns.row(index, index + 1, cells, with_values=with_values)
                    index += 1
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            raise SourceError(f"query failed after {index} rows: {exc}") from exc
