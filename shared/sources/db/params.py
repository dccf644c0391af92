"""Query parameters in the types the prepared statement declares, converted by the server.

A request's `params` are JSON scalars and the CLI's `--param` is always a string, while the
driver binds each `$n` in the type Postgres inferred for it (asyncpg refuses the string '2' for
an int4). Each value is therefore cast on the server from its text form (`$1::text::int4`), with
the type's own input rules (dates, numerics, booleans, domains and enums as Postgres reads
them), and bound as what comes back, once the server has confirmed that the bound value reads
back as the same text (not so for an interval with months, which the driver holds as a
`timedelta`). A value that does not convert is a `BadRequest` naming `params[i]`, at submit
time, never a job that fails once it runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.prepared_stmt import PreparedStatement

from shared.contract.errors import BadRequest
from shared.sources.db.request import QueryParam

# Parameters of these types take a string as it is.
_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name"})


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def coerce_params(
    conn: PoolConnectionProxy, statement: PreparedStatement, params: Sequence[QueryParam]
) -> list[object]:
    """`params` as values of the statement's parameter types; `BadRequest` if one is not."""
    types = statement.get_parameters()
    if len(params) != len(types):
        raise BadRequest(
            f"the query takes {len(types)} parameter(s) ($1, $2, ...), not {len(params)}",
            field="params",
        )
    values: list[object] = []
    for index, (value, kind) in enumerate(zip(params, types, strict=True)):
        if value is None or (
            isinstance(value, str) and kind.schema == "pg_catalog" and kind.name in _TEXT_TYPES
        ):
            values.append(value)
            continue
        type_name = f"{_quoted(kind.schema)}.{_quoted(kind.name)}"
        field = f"params[{index}]"
        try:
            row = await conn.fetchrow(
                f"SELECT v, v::text FROM (SELECT $1::text::{type_name} AS v) AS param", _text(value)
            )
            assert row is not None  # a SELECT without FROM returns one row
            converted, as_text = row
            bound = await conn.fetchval(f"SELECT $1::{type_name}::text", converted)
        except asyncpg.PostgresError as exc:
            raise BadRequest(f"{exc} (${index + 1} of the query is {kind.name})", field=field) from exc
        if bound != as_text:
            # The driver's Python value lost something: asyncpg's timedelta makes '1 month' 30 days.
            raise BadRequest(
                f"{value!r} as {kind.name} ({as_text}) would reach the query as {bound}; "
                f"convert it in the query instead: ${index + 1}::text::{kind.name}",
                field=field,
            )
        values.append(converted)
    return values
