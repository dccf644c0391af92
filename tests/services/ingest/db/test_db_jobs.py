"""The db source against a real Postgres: parameters, read-only enforcement, failures mid-stream."""

from __future__ import annotations

import asyncpg
import pytest

from devstack.stack import LocalStack
from shared.client import Client
from shared.sources.db import SubmitDb


@pytest.fixture
async def side_effects(db: asyncpg.Connection) -> str:
    """A function that writes, callable from a SELECT: only the READ ONLY transaction stops it."""
    await db.execute("CREATE TABLE IF NOT EXISTS test_side_effects (at timestamptz default now())")
    await db.execute(
        """CREATE OR REPLACE FUNCTION test_write_something() RETURNS text LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO test_side_effects DEFAULT VALUES; RETURN 'wrote'; END $$"""
    )
    return "SELECT test_write_something() AS name"


async def test_a_writing_function_called_through_select_is_stopped(
    client: Client, db: asyncpg.Connection, side_effects: str
) -> None:
    before = await db.fetchval("SELECT count(*) FROM test_side_effects")
    accepted = await client.submit(SubmitDb(data_source="local", query=side_effects, column="name"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.kind, final.status) == ("failed", "failed")
    assert final.message is not None and "read-only transaction" in final.message
    assert await db.fetchval("SELECT count(*) FROM test_side_effects") == before


async def test_a_timeout_mid_stream_fails_the_job_and_keeps_what_was_published(
    stack: LocalStack, client: Client
) -> None:
    # Rows 1..2499 stream out, then row 2500 sleeps past the stack's 3 s statement timeout.
    query = """SELECT CASE WHEN g = 2500 THEN pg_sleep(30)::text ELSE 'row ' || g END AS name
                 FROM generate_series(1, 5000) g"""
    accepted = await client.submit(SubmitDb(data_source="local", query=query, column="name"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert final.kind == "failed"
    assert final.message is not None and "statement timeout" in final.message
    # The items published before the failure still render and are counted.
    for _ in range(100):
        job = await client.get_job(accepted.job_id)
        if job.total is not None and job.done + job.failed >= job.total:
            break
        import asyncio

        await asyncio.sleep(0.1)
    assert job.status == "failed"
    assert job.total is not None and 1000 <= job.total < 2500
    assert (job.done, job.failed) == (job.total, 0)


async def test_parameters_are_bound_not_interpolated(client: Client, db: asyncpg.Connection) -> None:
    await db.execute("CREATE TABLE IF NOT EXISTS test_params (name text)")
    await db.execute("TRUNCATE test_params")
    await db.executemany(
        "INSERT INTO test_params VALUES ($1)", [("甲",), ("乙",), ("x'); DROP TABLE test_params; --",)]
    )
    accepted = await client.submit(
        SubmitDb(
            data_source="local",
            query="SELECT name FROM test_params WHERE name = $1 OR name = $2",
            params=["x'); DROP TABLE test_params; --", "乙"],
            column="name",
        )
    )
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.kind, final.done) == ("completed", 2)
    assert await db.fetchval("SELECT count(*) FROM test_params") == 3
