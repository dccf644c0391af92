"""`DbSource` on a real Postgres, read by the sample's reader role: the source's limits on every
connection, the busy answer instead of a hang, parameters in the types the statement declares,
and a read that is cancelled stopping its query on the server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from devstack.sample import SampleSource, products, with_login
from shared.contract.errors import BadRequest, Busy, SourceError
from shared.runtime.settings import Settings, SettingsError
from shared.sources.base import Row, SourceContext
from shared.sources.db import SubmitDb
from shared.sources.db.source import DbSource
from tests.waiting import eventually

# Counts to a billion one row at a time: minutes of work, no pg_sleep, no temporary files.
SLOW = """WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000000)
          SELECT x::text AS name FROM n WHERE x = 0 AND '{marker}' <> ''"""


def source_for(dsn: str, **config: Any) -> DbSource:
    settings = Settings.model_validate({"data_sources": {"s": {"dsn": dsn, **config}}})
    # The db source never touches JetStream.
    return DbSource(SourceContext(settings, js=None))  # type: ignore[arg-type]


@pytest.fixture
async def opened() -> AsyncIterator[list[DbSource]]:
    sources: list[DbSource] = []
    yield sources
    for source in sources:
        await source.close()


def request(query: str, *params: Any) -> SubmitDb:
    return SubmitDb(data_source="s", query=query, params=list(params), column="name")


async def read_all(source: DbSource, submit: SubmitDb) -> list[Row]:
    return [row async for chunk in source.chunks(submit) for row in chunk]


async def backend_running(db: asyncpg.Connection, marker: str) -> int:
    """The pid of the backend running the query with `marker`, once it runs."""

    async def pid() -> int:
        found = await db.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1", f"%{marker}%"
        )
        return int(found or 0)

    return await eventually(pid, f"a backend running the query {marker}")


async def test_every_connection_carries_the_source_limits(
    sample_source: SampleSource, opened: list[DbSource]
) -> None:
    source = source_for(
        sample_source.reader_url,
        statement_timeout_seconds=7.5,
        temp_file_limit="16MB",
        idle_in_transaction_session_timeout_seconds=42,
        allowed_functions=["current_setting"],
        max_concurrent=1,
    )
    opened.append(source)
    names = [
        "statement_timeout", "temp_file_limit", "idle_in_transaction_session_timeout",
        "transaction_read_only", "search_path", "application_name",
    ]  # fmt: skip
    query = " || '|' || ".join(f"current_setting('{name}')" for name in names) + " AS name"
    for _ in range(2):  # a new connection, then the same one after the pool's reset
        (row,) = await read_all(source, request("SELECT " + query))
        assert row.text.split("|") == ["7500ms", "16MB", "42s", "on", '"public"', "imagegen-db:s"]


async def test_the_defaults_are_60s_1gb_and_300s(sample_source: SampleSource, opened: list[DbSource]) -> None:
    source = source_for(sample_source.reader_url, allowed_functions=["current_setting"])
    opened.append(source)
    query = (
        "SELECT current_setting('statement_timeout') || ' ' || current_setting('temp_file_limit')"
        " || ' ' || current_setting('idle_in_transaction_session_timeout') AS name"
    )
    (row,) = await read_all(source, request(query))
    assert row.text == "1min 1GB 5min"


async def test_a_submit_is_busy_while_every_connection_runs_a_query(
    sample_source: SampleSource, db: asyncpg.Connection, opened: list[DbSource]
) -> None:
    source = source_for(sample_source.reader_url, max_concurrent=1, allowed_functions=["pg_sleep"])
    opened.append(source)
    marker = f"busy-{secrets.token_hex(4)}"
    sleeper = asyncio.create_task(
        read_all(source, request(f"SELECT pg_sleep(600)::text || '{marker}' AS name"))
    )
    try:
        await backend_running(db, marker)
        # An answer, not a hang: waiting for the connection would take the sleeper's 600 s.
        with pytest.raises(Busy) as busy:
            await asyncio.wait_for(source.check(request("SELECT name FROM products")), timeout=60)
        assert not sleeper.done()  # the answer came while the one connection was still taken
        assert busy.value.code == 503 and busy.value.field == "data_source"
        assert "all 1 of its connections" in busy.value.message
    finally:
        sleeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sleeper
    # The slot is free again at once: the cancelled query stopped and its connection came back.
    await asyncio.wait_for(source.check(request("SELECT name FROM products")), timeout=5)


async def test_an_accepted_job_waits_its_turn_for_a_connection(
    sample_source: SampleSource, db: asyncpg.Connection, opened: list[DbSource]
) -> None:
    source = source_for(sample_source.reader_url, max_concurrent=1, allowed_functions=["pg_sleep"])
    opened.append(source)
    marker = f"turn-{secrets.token_hex(4)}"
    first = asyncio.create_task(read_all(source, request(f"SELECT pg_sleep(2)::text || '{marker}' AS name")))
    await backend_running(db, marker)
    second = asyncio.create_task(read_all(source, request("SELECT name FROM products WHERE id = 1")))
    # The second waits for the one connection, not failed: it is still pending when the first
    # ends, and then it runs.
    assert [row.text for row in await asyncio.wait_for(first, timeout=60)] == [marker]
    assert not second.done()
    assert [row.text for row in await asyncio.wait_for(second, timeout=60)] == ["绿茶 Green Tea 500ml"]


async def test_cancelling_a_read_stops_its_query_on_the_server(
    sample_source: SampleSource, db: asyncpg.Connection, opened: list[DbSource]
) -> None:
    source = source_for(sample_source.reader_url, max_concurrent=1, allowed_functions=["pg_backend_pid"])
    opened.append(source)
    marker = f"cancel-{secrets.token_hex(4)}"
    reader = asyncio.create_task(read_all(source, request(SLOW.format(marker=marker))))
    pid = await backend_running(db, marker)
    assert not reader.done()
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader

    # The server stopped the statement (which would count for minutes) and the connection is
    # idle, out of its transaction.
    async def idle() -> bool:
        return await db.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid) == "idle"

    await eventually(idle, f"backend {pid} idle after the cancel")
    # ...and that same connection serves the next job.
    (row,) = await read_all(source, request("SELECT pg_backend_pid()::text AS name"))
    assert int(row.text) == pid


async def test_a_read_closed_between_rows_rolls_back(
    sample_source: SampleSource, db: asyncpg.Connection, opened: list[DbSource]
) -> None:
    source = source_for(sample_source.reader_url, max_concurrent=1)
    opened.append(source)
    marker = f"closed-{secrets.token_hex(4)}"
    rows = source.chunks(request(f"SELECT g::text || '{marker}' AS name FROM generate_series(1, 5000) g"))
    first = await anext(rows)
    assert first[0].text == f"1{marker}" and len(first) < 5000  # one fetch, not the whole result
    in_transaction = await db.fetchval(
        "SELECT state FROM pg_stat_activity WHERE query LIKE $1", f"%{marker}%"
    )
    assert in_transaction == "idle in transaction"  # the cursor waits for the next fetch
    await rows.aclose()
    left = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND query LIKE $1",
        f"%{marker}%",
    )
    assert left == 0


@pytest.mark.parametrize(
    ("query", "params", "expected"),
    [
        ("SELECT name FROM products WHERE id = $1", ["2"], ["乌龙茶 Oolong Tea"]),
        ("SELECT name FROM products WHERE id = $1", [2], ["乌龙茶 Oolong Tea"]),
        ("SELECT sku AS name FROM products WHERE price = $1", ["168.00"], ["A006"]),
        ("SELECT sku AS name FROM products WHERE price > $1 AND id < 4", [4], ["A002", "A003"]),
        ("SELECT to_char($1::date, 'YYYY年MM月DD日') AS name", ["2024-02-29"], ["2024年02月29日"]),
        ("SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', 'HH24:MI') AS name",
         ["2024-05-01T08:30:00+02:00"], ["06:30"]),
        ("SELECT count(*)::text AS name FROM products WHERE $1::boolean", ["true"], ["24"]),
        ("SELECT count(*)::text AS name FROM products WHERE $1::boolean", ["no"], ["0"]),
        ("SELECT count(*)::text AS name FROM products WHERE $1::boolean", [True], ["24"]),
        ("SELECT ($1::int8 + 1)::text AS name", ["9007199254740993"], ["9007199254740994"]),
        ("SELECT name FROM products WHERE sku = $1", ["A001"], ["绿茶 Green Tea 500ml"]),
        ("SELECT coalesce($1::text, '空') AS name", [None], ["空"]),
        ("SELECT (date '2024-01-31' + $1::interval)::date::text AS name", ["2 days"], ["2024-02-02"]),
        ("SELECT (date '2024-01-31' + $1::text::interval)::date::text AS name", ["1 month"], ["2024-02-29"]),
    ],
)  # fmt: skip
async def test_parameters_take_the_declared_types(
    sample_source: SampleSource, opened: list[DbSource], query: str, params: list[Any], expected: list[str]
) -> None:
    source = source_for(sample_source.reader_url)
    opened.append(source)
    await source.check(request(query, *params))
    assert [row.text for row in await read_all(source, request(query, *params))] == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # asyncpg's Python value would have read '32 days, 3:04:05': a month taken for 30 days.
        ("interval '1 month 2 days 3 hours 4 minutes 5 seconds'", "1 mon 2 days 03:04:05"),
        ("true", "true"),
        ("'\\x00ff'::bytea", "\\x00ff"),  # not Python's b'\x00\xff'
        ("ARRAY[1, 2, 3]", "{1,2,3}"),  # not [1, 2, 3]
        ("ARRAY['北京', 'a b']", '{北京,"a b"}'),
        ("1.50::numeric", "1.50"),
        ("0.1::float8", "0.1"),
        ('\'{"b": 1, "a": [1, 2]}\'::jsonb', '{"a": [1, 2], "b": 1}'),
        ("timestamp '2024-02-29 13:14:15.5'", "2024-02-29 13:14:15.5"),  # not ...15.500000
        ("ROW(1, '长城')", "(1,长城)"),  # not a Record's repr
        ("'192.168.0.1/24'::inet", "192.168.0.1/24"),  # not an IPv4Interface
    ],
)
async def test_a_cell_reads_as_postgres_writes_it_as_text(
    sample_source: SampleSource, opened: list[DbSource], expression: str, expected: str
) -> None:
    """Every cell is the value as Postgres casts it to text, never a Python value's str()."""
    source = source_for(sample_source.reader_url)
    opened.append(source)
    (row,) = await read_all(source, request(f"SELECT {expression} AS name"))
    assert row.text == expected


@pytest.mark.parametrize(
    ("query", "params", "field", "words"),
    [
        ("SELECT name FROM products WHERE id = $1", ["two"], "params[0]", "integer"),
        ("SELECT name FROM products WHERE id = $1", ["1.5"], "params[0]", "integer"),
        ("SELECT name FROM products WHERE id = $1 AND price > $2", ["1", "3,5"], "params[1]", "numeric"),
        ("SELECT to_char($1::date, 'YYYY') AS name", ["2023-02-29"], "params[0]", "out of range"),
        ("SELECT name FROM products WHERE $1::boolean", ["maybe"], "params[0]", "boolean"),
        ("SELECT name FROM products WHERE id = $1", [], "params", "takes 1 parameter"),
        # asyncpg holds an interval as a timedelta: '1 month' would arrive as '30 days'
        (
            "SELECT (date '2024-01-31' + $1::interval)::text AS name",
            ["1 month"],
            "params[0]",
            "$1::text::interval",
        ),
        ("SELECT name FROM products", ["1"], "params", "takes 0 parameter"),
    ],
)
async def test_a_parameter_that_does_not_convert_is_refused_at_submit(
    sample_source: SampleSource, opened: list[DbSource], query: str, params: list[Any], field: str, words: str
) -> None:
    source = source_for(sample_source.reader_url)
    opened.append(source)
    with pytest.raises(BadRequest) as err:
        await source.check(request(query, *params))
    assert err.value.field == field, str(err.value)
    assert words in err.value.message, err.value.message


async def test_the_sample_table_is_the_csv(sample_source: SampleSource, opened: list[DbSource]) -> None:
    source = source_for(sample_source.reader_url)
    opened.append(source)
    rows = await read_all(source, request("SELECT name || ' ' || price AS name FROM products ORDER BY id"))
    assert [row.text for row in rows] == [f"{name} {price}" for _, _, name, price in products()]


async def test_a_row_over_the_row_limit_fails_alone_and_never_reaches_ingest(
    sample_source: SampleSource, opened: list[DbSource]
) -> None:
    """Each 100 MB row is measured and cut by the server: ingest receives NULLs and the size,
    so eight of them cost it nothing (its memory stays where it was) and the rows beside them
    read as usual; a repeated column name and a trailing comment do not break the wrapper."""
    from tests.stacks import peak_rss_mb

    source = source_for(sample_source.reader_url)
    opened.append(source)
    query = """SELECT CASE WHEN i % 3 = 0 THEN repeat('x', 100000000) ELSE 'row ' || i END AS name,
                      i AS name2, i AS name2
                 FROM generate_series(1, 24) AS i ORDER BY i -- the end"""
    before = peak_rss_mb(os.getpid())
    rows = await read_all(source, request(query))
    assert peak_rss_mb(os.getpid()) - before < 100
    assert [row.index for row in rows] == list(range(24))
    for row in rows:
        if (row.index + 1) % 3 == 0:
            assert row.text == "" and row.error is not None
            assert row.error.startswith("the row is 10000000") and "IMAGEGEN_MAX_ROW_BYTES" in row.error
        else:
            assert (row.text, row.error) == (f"row {row.index + 1}", None)


async def test_a_role_that_may_not_set_temp_file_limit_is_told_how(
    sample_source: SampleSource, database_url: str, db: asyncpg.Connection, opened: list[DbSource]
) -> None:
    role = f"imagegen_test_nogrant_{secrets.token_hex(4)}"
    await db.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'nogrant'")
    dsn = with_login(database_url, database=database_url.rpartition("/")[2], user=role, password="nogrant")
    limited = source_for(dsn)
    opened.append(limited)
    with pytest.raises(SourceError, match="GRANT SET ON PARAMETER temp_file_limit"):
        await limited.check(request("SELECT 1::text AS name"))
    unlimited = source_for(dsn, temp_file_limit=None)
    opened.append(unlimited)
    await unlimited.check(request("SELECT 1::text AS name"))


@pytest.mark.parametrize(
    ("source", "location"),
    [
        ({"dsn": "postgresql://x", "statement_timeout_seconds": 0}, ("s", "statement_timeout_seconds")),
        ({"dsn": "postgresql://x", "temp_file_limit": "1gb"}, ("s", "temp_file_limit")),
        ({"dsn": "postgresql://x", "max_concurrent": 0}, ("s", "max_concurrent")),
        ({"dsn": "postgresql://x", "allowed_functions": ["a.b.c"]}, ("s", "allowed_functions", 0)),
        ({"dsn": "postgresql://x", "allowed_schemas": ["two words"]}, ("s", "allowed_schemas", 0)),
        ({"dsn": "postgresql://x", "statement_timeout": 5}, ("s", "statement_timeout")),
        ({"statement_timeout_seconds": 5}, ("s", "dsn")),
        ("", ("s", "dsn")),
    ],
)
def test_source_settings_are_checked_field_by_field(source: object, location: tuple[object, ...]) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.model_validate({"data_sources": {"s": source}})
    # One problem, named by the variable and the place inside its JSON value.
    assert err.value.field == f"IMAGEGEN_DATA_SOURCES ({'.'.join(str(part) for part in location)})"


def test_a_plain_dsn_is_a_source_with_the_defaults() -> None:
    settings = Settings.model_validate({"data_sources": {"shop": "postgresql://reader@db/shop"}})
    shop = settings.data_sources["shop"]
    assert shop.dsn == "postgresql://reader@db/shop"
    assert (shop.statement_timeout_seconds, shop.temp_file_limit, shop.max_concurrent) == (60, "1GB", 2)
    assert (shop.allowed_schemas, shop.allow_catalogs, shop.allowed_functions) == (["public"], False, [])


async def test_a_query_over_the_row_limit_yields_the_limit_then_fails(
    sample_source: SampleSource, opened: list[DbSource]
) -> None:
    """The rows up to the limit are read (ingest publishes them) and the next fails the job."""
    settings = Settings.model_validate(
        {"data_sources": {"s": {"dsn": sample_source.reader_url}}, "db_row_limit": 250}
    )
    source = DbSource(SourceContext(settings, js=None))  # type: ignore[arg-type]
    opened.append(source)
    read: list[Row] = []
    with pytest.raises(SourceError, match="more than 250 rows"):
        async for chunk in source.chunks(request("SELECT g::text AS name FROM generate_series(1, 1000) g")):
            read.extend(chunk)
    assert [row.text for row in read] == [str(i) for i in range(1, 251)]
    exact = source.chunks(request("SELECT g::text AS name FROM generate_series(1, 250) g"))
    assert len([row async for chunk in exact for row in chunk]) == 250  # at the limit: no error
