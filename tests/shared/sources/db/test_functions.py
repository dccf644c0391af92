"""The default function allowlist against the real server's catalog: every name is a function of
this Postgres (or a keyword, or of a newer release), and none has a volatile overload except the
clock readers; and no volatile function can be reached through column notation (`t.f`), which
the grammar check cannot tell from a column."""

from __future__ import annotations

import asyncpg

from shared.sources.db.functions import CLOCK_READERS, DEFAULT_FUNCTIONS, SINCE, SQL_KEYWORDS

# Argument types a table's row is accepted as: `t.f` means f(t) for a function taking one of these.
ROW_ACCEPTING = ["record", "anyelement", '"any"', "anycompatible", "anynonarray", "anycompatiblenonarray"]


async def catalogue(db: asyncpg.Connection) -> dict[str, set[str]]:
    rows = await db.fetch(
        """SELECT proname, array_agg(DISTINCT provolatile::text) AS volatility FROM pg_proc
            WHERE pronamespace = 'pg_catalog'::regnamespace AND proname = ANY($1::text[])
            GROUP BY proname""",
        sorted(DEFAULT_FUNCTIONS),
    )
    return {row["proname"]: set(row["volatility"]) for row in rows}


async def test_every_allowed_function_exists_on_this_server(db: asyncpg.Connection) -> None:
    major = int(await db.fetchval("SHOW server_version_num")) // 10_000
    expected = {name for name in DEFAULT_FUNCTIONS - SQL_KEYWORDS if SINCE.get(name, 0) <= major}
    assert expected - set(await catalogue(db)) == set()
    for keyword in SQL_KEYWORDS:
        await db.fetchval(f"SELECT {keyword}")  # a keyword the server knows


async def test_no_allowed_function_is_volatile_but_the_clock_readers(db: asyncpg.Connection) -> None:
    volatile = {name for name, kinds in (await catalogue(db)).items() if "v" in kinds}
    assert volatile == set(CLOCK_READERS)


async def test_no_volatile_function_is_reachable_as_a_column(db: asyncpg.Connection) -> None:
    # The notation exists (this is row_to_json(t), not a column)...
    await db.execute("CREATE TEMP TABLE column_notation (a int)")
    await db.execute("INSERT INTO column_notation VALUES (1)")
    assert await db.fetchval("SELECT c.row_to_json FROM column_notation c") == '{"a":1}'
    # ...but no function with effects can be called that way.
    reachable = await db.fetch(
        """SELECT oid::regprocedure::text AS function FROM pg_proc
            WHERE pronargs >= 1 AND (pronargs - pronargdefaults <= 1 OR provariadic <> 0)
              AND proargtypes[0] = ANY ($1::text[]::regtype[]) AND provolatile = 'v'""",
        ROW_ACCEPTING,
    )
    assert [row["function"] for row in reachable] == []
