"""The db source against a real Postgres: parameters, read-only enforcement, failures mid-stream."""

from __future__ import annotations

import pytest

from devstack.stack import LocalStack
from shared.client import Client
from shared.contract.errors import BadRequest
from shared.contract.messages import JobInfo
from shared.sources.db import SubmitDb
from tests.conftest import SampleDb
from tests.waiting import eventually


@pytest.fixture
async def side_effects(sample_db: SampleDb) -> str:
    """A function that writes, callable from a SELECT, running with its owner's rights (SECURITY
    DEFINER): neither the reader's privileges nor the query check (on a source that allows it)
    stop it; only the READ ONLY transaction does."""
    await sample_db.conn.execute(
        "CREATE TABLE IF NOT EXISTS test_side_effects (at timestamptz default now())"
    )
    await sample_db.conn.execute(
        """CREATE OR REPLACE FUNCTION test_write_something() RETURNS text LANGUAGE plpgsql
           SECURITY DEFINER AS $$
           BEGIN INSERT INTO test_side_effects DEFAULT VALUES; RETURN 'wrote'; END $$"""
    )
    return "SELECT test_write_something() AS name"


async def test_a_writing_function_called_through_select_is_stopped(
    client: Client, sample_db: SampleDb, side_effects: str
) -> None:
    before = await sample_db.conn.fetchval("SELECT count(*) FROM test_side_effects")
    with pytest.raises(BadRequest, match="function test_write_something"):
        await client.submit(SubmitDb(data_source="local", query=side_effects, column="name"))
    accepted = await client.submit(SubmitDb(data_source="writer", query=side_effects, column="name"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.kind, final.status) == ("failed", "failed")
    assert final.message is not None and "read-only transaction" in final.message
    assert await sample_db.conn.fetchval("SELECT count(*) FROM test_side_effects") == before


async def test_a_timeout_mid_stream_fails_the_job_and_keeps_what_was_published(
    stack: LocalStack, client: Client
) -> None:
    # Rows 1..2499 stream out, then row 2500 sleeps past the source's 3 s statement timeout.
    query = """SELECT CASE WHEN g = 2500 THEN pg_sleep(30)::text ELSE 'row ' || g END AS name
                 FROM generate_series(1, 5000) g"""
    accepted = await client.submit(SubmitDb(data_source="sleepy", query=query, column="name"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert final.kind == "failed"
    assert final.message is not None and "statement timeout" in final.message
    # The items published before the failure still render and are counted: wait until the
    # ledger has every one of them (2,499 renders on a loaded machine: a generous deadline).
    seen: list[JobInfo] = []

    async def all_counted() -> JobInfo | None:
        seen[:] = [await client.get_job(accepted.job_id)]
        job = seen[0]
        return job if job.total is not None and job.done + job.failed >= job.total else None

    job = await eventually(all_counted, lambda: f"the published items counted: {seen}", timeout=120)
    assert job.status == "failed"
    assert job.total is not None and 1000 <= job.total < 2500
    assert (job.done, job.failed) == (job.total, 0)


async def test_parameters_are_bound_not_interpolated(client: Client, sample_db: SampleDb) -> None:
    db = sample_db.conn
    await db.execute("CREATE TABLE IF NOT EXISTS test_params (name text)")
    await db.execute("TRUNCATE test_params")
    await db.executemany(
        "INSERT INTO test_params VALUES ($1)", [("甲",), ("乙",), ("x'); DROP TABLE test_params; --",)]
    )
    await sample_db.readable("test_params")
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


async def test_parameters_take_the_types_the_query_declares(client: Client) -> None:
    # The CLI sends every --param as a string; the server converts '3' for the numeric column.
    accepted = await client.submit(
        SubmitDb(
            data_source="local",
            query="SELECT name FROM products WHERE price > $1 AND id <= $2",
            params=["50", "6"],
            column="name",
        )
    )
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.kind, final.done, final.failed) == ("completed", 1, 0)  # 168.00 of the six
    with pytest.raises(BadRequest) as err:
        await client.submit(
            SubmitDb(
                data_source="local",
                query="SELECT name FROM products WHERE id = $1",
                params=["一"],
                column="name",
            )
        )
    assert err.value.field == "params[0]" and "integer" in err.value.message
