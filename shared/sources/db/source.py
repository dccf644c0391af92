"""The database source: named data sources, each with its own small pool and limits.

A request names a source but never carries a DSN. Its query passes the grammar check
(`query.py`) under the source's policy, then runs in a READ ONLY transaction on a connection
that carries the source's limits (statement_timeout, temp_file_limit,
idle_in_transaction_session_timeout, a search_path of its allowed schemas); rows stream
through a server-side cursor. The submit-time check only prepares the statement (the server's
own parse and name resolution: nothing is run) and converts the parameters.

A source's pool has `max_concurrent` connections. A submit waits `CHECK_WAIT_SECONDS` at most
for one and otherwise answers `Busy`; an accepted job waits its turn at ingest (a running query
ends by its statement_timeout at the latest). No holder ever waits for a second connection, so
the pool cannot deadlock. A job cancelled mid-query is interrupted inside the cursor fetch
(`shared/workflow/ingest.py`); asyncpg then sends the server a cancel request for that
connection, waits for it, rolls back and resets the connection before it goes back to the pool;
the rollback and the reset are bounded (`CLEANUP_SECONDS`), past which the connection is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.contract.errors import BadRequest, Busy, SourceError
from shared.runtime.logging import get_logger
from shared.runtime.settings import DataSource
from shared.sources.base import Checked, Row, SourceContext, oversized_row
from shared.sources.db.params import coerce_params
from shared.sources.db.query import QueryPolicy, check_select
from shared.sources.db.request import SubmitDb
from shared.sources.table import Columns
from shared.storage.naming import NameTemplate

log = get_logger(__name__)

CURSOR_PREFETCH = 1000  # rows per fetch at most
# Rows fetched ahead, in batch budgets: a fetch holds at most this many rows of the row limit.
READ_AHEAD_BATCHES = 8
CHECK_WAIT_SECONDS = 1.0
# Ending a transaction and resetting its connection take milliseconds; asyncpg has been seen to
# hang there (MagicStack/asyncpg#442), which would hold a job's request for ever. Past this bound
# the connection is closed instead (the server rolls back what it had open).
CLEANUP_SECONDS = 10.0


def _text(value: str | None) -> str:
    return "" if value is None else value


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def server_settings(name: str, source: DataSource) -> dict[str, str]:
    """The session settings every connection of source `name` starts with.

    Sent in the startup packet, they are the session's defaults: the pool's reset (`RESET ALL`)
    returns to them, and the role cannot undo them from a query (SET is not a SELECT and
    `set_config` is not on the allowlist).
    """
    settings = {
        "application_name": f"imagegen-db:{name}"[:63],
        "default_transaction_read_only": "on",
        "statement_timeout": str(round(source.statement_timeout_seconds * 1000)),
        "idle_in_transaction_session_timeout": str(
            round(source.idle_in_transaction_session_timeout_seconds * 1000)
        ),
        # Unqualified names resolve in pg_catalog (refused by the check) and these schemas only.
        "search_path": ", ".join(_quoted(schema) for schema in source.allowed_schemas),
    }
    if source.temp_file_limit is not None:
        settings["temp_file_limit"] = source.temp_file_limit
    return settings


@dataclass(frozen=True)
class _Source:
    name: str
    config: DataSource
    policy: QueryPolicy
    pool: asyncpg.Pool


class DbSource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self._sources: dict[str, _Source] = {}
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        for source in self._sources.values():
            await source.pool.close()

    async def source(self, name: str) -> _Source:
        """The configured source `name` with its pool (made on first use)."""
        configured = self.ctx.settings.data_sources
        config = configured.get(name)
        if config is None:
            known = ", ".join(sorted(configured)) or "none configured"
            raise BadRequest(f"unknown data source {name!r} (known: {known})", field="data_source")
        async with self._lock:
            if name not in self._sources:
                # min_size=0: nothing connects before the first acquire.
                pool = await asyncpg.create_pool(
                    config.dsn,
                    min_size=0,
                    max_size=config.max_concurrent,
                    server_settings=server_settings(name, config),
                )
                policy = QueryPolicy.of(
                    config.allowed_schemas, config.allow_catalogs, config.allowed_functions
                )
                self._sources[name] = _Source(name, config, policy, pool)
            return self._sources[name]

    @asynccontextmanager
    async def _connection(self, source: _Source, *, wait: float | None) -> AsyncIterator[PoolConnectionProxy]:
        """A connection of `source`, waiting at most `wait` seconds (None: its turn) for one."""
        try:
            conn = await source.pool.acquire(timeout=wait)
        except TimeoutError as exc:
            raise Busy(
                f"data source {source.name!r} is busy: all {source.config.max_concurrent} of its "
                "connections are running queries; try again shortly",
                field="data_source",
            ) from exc
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise SourceError(_connect_failure(source, exc)) from exc
        try:
            yield conn
        finally:
            try:
                await source.pool.release(conn, timeout=CLEANUP_SECONDS)  # closes it on timeout
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("source.release_failed", source=source.name, error=str(exc) or type(exc).__name__)

    async def check(self, request: SubmitDb) -> Checked:
        source = await self.source(request.data_source)
        query = check_select(request.query, source.policy)
        async with self._connection(source, wait=CHECK_WAIT_SECONDS) as conn:
            try:
                statement = await conn.prepare(query)
            except asyncpg.PostgresError as exc:
                raise BadRequest(f"rejected by the database: {exc}", field="query") from exc
            await coerce_params(conn, statement, request.params)
            Columns.resolve(request, [attr.name for attr in statement.get_attributes()])
        return Checked()

    async def chunks(self, request: SubmitDb) -> AsyncGenerator[list[Row], None]:
        source = await self.source(request.data_source)
        query = check_select(request.query, source.policy)
        with_values = bool(NameTemplate(request.name_template).columns)
        settings = self.ctx.settings
        limit, max_bytes = settings.db_row_limit, settings.max_row_bytes
        prefetch = rows_per_fetch(settings.batch_max_bytes, max_bytes)
        index = 0
        try:
            async with self._connection(source, wait=None) as conn, _read_only(conn):
                statement = await conn.prepare(query)
                params = await coerce_params(conn, statement, request.params)
                names = [attr.name for attr in statement.get_attributes()]
                columns = Columns.resolve(request, names)
                capped = await conn.prepare(capped_query(query, len(names), max_bytes))
                cursor = await capped.cursor(*params)
                while records := await cursor.fetch(prefetch):
                    over = index + len(records) > limit
                    chunk = []
                    for record in records[: limit - index] if over else records:
                        *values, size = record.values()
                        if size > max_bytes:
                            error = oversized_row(size, max_bytes)
                            row = columns.row(
                                index, index + 1, [""] * len(names), with_values=False, error=error
                            )
                        else:
                            cells = [_text(value) for value in values]
                            row = columns.row(index, index + 1, cells, with_values=with_values)
                        chunk.append(row)
                        index += 1
                    if chunk:
                        yield chunk
                    if over:
                        raise SourceError(
                            f"the query returns more than {limit} rows (the server's row limit)"
                        )
        except asyncpg.IdleInTransactionSessionTimeoutError as exc:
            raise SourceError(
                f"query stopped after {index} rows: the data source ended the transaction after "
                f"{source.config.idle_in_transaction_session_timeout_seconds:g} s without a fetch "
                "(idle_in_transaction_session_timeout; the renderers were that far behind)"
            ) from exc
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            raise SourceError(f"query failed after {index} rows: {exc}") from exc


@asynccontextmanager
async def _read_only(conn: PoolConnectionProxy) -> AsyncIterator[None]:
    """A READ ONLY transaction whose end is bounded by `CLEANUP_SECONDS`: rolled back (there is
    nothing to keep), or the connection closed if the rollback does not answer in time."""
    transaction = conn.transaction(readonly=True)
    await transaction.start()
    try:
        yield
    finally:
        try:
            await asyncio.wait_for(transaction.rollback(), CLEANUP_SECONDS)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("source.rollback_failed", error=str(exc) or type(exc).__name__)
            conn.terminate()


def capped_query(query: str, columns: int, max_row_bytes: int) -> str:
    """`query` wrapped so that the server measures each row (its cells as text) and sends a
    row over `max_row_bytes` as NULLs plus its size: a `SELECT repeat('x', 100000000)` costs
    ingest nothing. Every cell comes as Postgres writes it as text (an interval with its months,
    an array as `{1,2}`), never as a Python value's str() (asyncpg's interval is a timedelta of
    30-day months, its bytea a bytes repr). The last column is the row's size. The columns are
    renamed by position (a query may repeat a name); the query's own text is unchanged inside,
    its parameters too, and a trailing comment cannot swallow the wrapper (it ends at the
    newline)."""
    names = [f"_c{i}" for i in range(columns)]
    size = " + ".join(f"coalesce(octet_length(q.{n}::text), 0)::bigint" for n in names)
    limit = int(max_row_bytes)
    cells = ", ".join(f"CASE WHEN s._size > {limit} THEN NULL ELSE s.{n}::text END" for n in names)
    return (
        f"SELECT {cells}, s._size FROM (SELECT q.*, {size} AS _size FROM (\n{query}\n) "
        f"AS q({', '.join(names)})) AS s"
    )


def rows_per_fetch(batch_max_bytes: int, max_row_bytes: int) -> int:
    """How many rows one cursor fetch may bring: memory stays within the read-ahead budget."""
    return max(1, min(CURSOR_PREFETCH, READ_AHEAD_BATCHES * batch_max_bytes // max_row_bytes))


def _connect_failure(source: _Source, exc: BaseException) -> str:
    message = f"data source {source.name!r} refused a connection: {exc}"
    if isinstance(exc, asyncpg.InsufficientPrivilegeError) and "temp_file_limit" in str(exc):
        message += (
            "; its role needs `GRANT SET ON PARAMETER temp_file_limit TO <role>` (PostgreSQL 15+), "
            "or set the source's temp_file_limit to null and limit the role itself"
        )
    elif isinstance(exc, OSError):
        message = f"data source {source.name!r} is unreachable: {exc}"
    return message
