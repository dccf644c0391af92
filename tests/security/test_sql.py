"""The SQL wall, attacked end to end through the service set (issue 12): each attack is a case
that must be refused, by the grammar check at submit or by the limits and role behind it.

The session stack's data sources (tests/conftest.py) are all read by the sample's reader role:
`local` as `imagegen up` has it, and variants that change one setting each (`busy`: two
connections and pg_sleep allowed; `small`: an 8 MB temp_file_limit; `catalogs`; `writer`:
functions with effects allowed; `ledger`: the reader on the job ledger's database).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from devstack import NatsServer
from devstack.sample import products
from devstack.stack import LocalStack
from shared.client import Client
from shared.contract.errors import BadRequest, Busy
from shared.sources.db import SubmitDb
from tests.cli import imagegen
from tests.conftest import REPO, SampleDb
from tests.stacks import own_stack
from tests.waiting import eventually

# Counts to a billion one row at a time: minutes of work without pg_sleep, rows only at the end.
SLOW = """WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000000)
          SELECT x::text AS name FROM n WHERE x = 0 AND '{marker}' <> ''"""


def db_job(source: str, query: str, **options: Any) -> SubmitDb:
    return SubmitDb(data_source=source, query=query, column="name", **options)


async def active_backends(
    db: asyncpg.Connection, source: str, marker: str, *, older_than: float = 0.0
) -> list[int]:
    """The backends of `source` running a statement with `marker` in its text, started at least
    `older_than` seconds ago."""
    rows = await db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' "
        "AND query LIKE $2 AND query_start <= now() - make_interval(secs => $3)",
        f"imagegen-db:{source}",
        f"%{marker}%",
        older_than,
    )
    return [row["pid"] for row in rows]


ATTACKS = [
    ("SELECT pg_read_file('/etc/passwd') AS name", "function pg_read_file()"),
    ("SELECT rolname || ':' || rolpassword AS name FROM pg_authid", "system catalog pg_authid"),
    ("SELECT rolpassword AS name FROM pg_catalog.pg_authid", "system catalog pg_catalog.pg_authid"),
    ("SELECT lo_export(lo_from_bytea(0, 'x'), '/tmp/imagegen-x')::text AS name", "function lo_"),
    ("SELECT lo_create(0)::text AS name", "function lo_create()"),
    ("SELECT lo_from_bytea(0, repeat('x', 1000000)::bytea)::text AS name", "function lo_from_bytea()"),
    ("SELECT pg_notify('imagegen', 'forged')::text AS name", "function pg_notify()"),
    ("SELECT pg_logical_emit_message(true, 'imagegen', 'x')::text AS name", "pg_logical_emit_message()"),
    ("SELECT pg_terminate_backend(pid)::text AS name FROM pg_stat_activity", "pg_"),
    ("SELECT pg_sleep(600)::text AS name", "function pg_sleep()"),
    ("SELECT name FROM products WHERE pg_sleep(600) IS NULL", "function pg_sleep()"),
    ("SELECT set_config('statement_timeout', '0', false) AS name", "function set_config()"),
    ("SELECT query_to_xml('SELECT pg_read_file(''/etc/passwd'')', true, true, '')::text", "query_to_xml"),
    ("SELECT 'pg_authid'::regclass::text AS name", "cast to regclass"),
    ("SELECT name FROM information_schema.tables", "system catalog information_schema.tables"),
    ("SELECT 1::text AS name; DROP TABLE products", "single statement"),
    ("WITH gone AS (DELETE FROM products RETURNING name) SELECT name FROM gone", "data-modifying WITH"),
    ("SELECT name INTO stolen FROM products", "SELECT INTO"),
    ("SELECT name FROM products FOR UPDATE", "FOR UPDATE"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "words"), ATTACKS)
async def test_attacks_are_refused_at_submit_naming_the_construct(
    client: Client, query: str, words: str
) -> None:
    with pytest.raises(BadRequest) as err:
        await client.submit(db_job("local", query))
    assert (err.value.code, err.value.field) == (400, "query")
    assert words in err.value.message, err.value.message


async def test_other_jobs_stored_queries_are_out_of_reach(client: Client) -> None:
    # `local` is another database than the ledger...
    with pytest.raises(BadRequest, match='relation "imagegen_jobs" does not exist'):
        await client.submit(db_job("local", "SELECT request::text AS name FROM imagegen_jobs"))
    # ...and a source pointed at the ledger with the reader role may not read it.
    accepted = await client.submit(db_job("ledger", "SELECT request::text AS name FROM imagegen_jobs"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.kind, final.done) == ("failed", 0)
    assert final.message is not None and "permission denied for table imagegen_jobs" in final.message


async def test_allowed_catalogs_still_hide_what_the_role_may_not_read(client: Client) -> None:
    accepted = await client.submit(
        db_job("catalogs", "SELECT relname::text AS name FROM pg_class WHERE relname = 'products'")
    )
    assert (await client.wait(accepted.job_id, timeout=60)).done == 1
    accepted = await client.submit(db_job("catalogs", "SELECT rolpassword AS name FROM pg_authid"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert final.kind == "failed"
    assert final.message is not None and "permission denied for table pg_authid" in final.message


async def test_functions_with_effects_an_operator_allowed_are_stopped_by_the_role(
    client: Client, sample_db: SampleDb
) -> None:
    objects = await sample_db.conn.fetchval("SELECT count(*) FROM pg_largeobject_metadata")
    notified: list[str] = []
    await sample_db.conn.add_listener("imagegen", lambda *args: notified.append(str(args[-1])))
    for query, function in [
        ("SELECT lo_create(0)::text AS name", "lo_create"),
        ("SELECT pg_notify('imagegen', 'forged')::text AS name", "pg_notify"),
    ]:
        accepted = await client.submit(db_job("writer", query))
        final = await client.wait(accepted.job_id, timeout=60)
        assert final.kind == "failed"
        assert final.message is not None and f"permission denied for function {function}" in final.message
    # A notification of our own, sent after the jobs failed, arrives after any they sent.
    await sample_db.conn.execute("NOTIFY imagegen, 'barrier'")

    async def barrier() -> list[str]:
        return notified if "barrier" in notified else []

    assert await eventually(barrier, "our own notification") == ["barrier"]
    assert await sample_db.conn.fetchval("SELECT count(*) FROM pg_largeobject_metadata") == objects


async def test_four_long_queries_get_two_connections_and_two_busy_answers(
    client: Client, db: asyncpg.Connection
) -> None:
    marker = f"sleep-{secrets.token_hex(4)}"
    query = f"SELECT pg_sleep(600)::text || '{marker}' AS name"
    running = []
    for _ in range(2):
        running.append((await client.submit(db_job("busy", query))).job_id)

    async def both_running() -> bool:
        return len(await active_backends(db, "busy", marker, older_than=1.0)) == 2

    await eventually(both_running, "both queries running")
    for _ in range(2):
        # An answer, not a wait for a connection (that would take the sleepers' 600 s).
        with pytest.raises(Busy) as err:
            await asyncio.wait_for(client.submit(db_job("busy", query)), timeout=60)
        assert (err.value.code, err.value.field) == (503, "data_source")
        assert "busy" in err.value.message
    # Other sources are not held up meanwhile.
    accepted = await client.submit(db_job("local", "SELECT name FROM products WHERE id = 1"))
    assert (await client.wait(accepted.job_id, timeout=60)).done == 1
    # Cancelling the two stops their queries, and the source takes work again.
    for job_id in running:
        await client.cancel_job(job_id)

    async def none_running() -> bool:
        return not await active_backends(db, "busy", marker)

    await eventually(none_running, "no busy query left running")
    accepted = await client.submit(db_job("busy", "SELECT name FROM products WHERE id = 2"))
    assert (await client.wait(accepted.job_id, timeout=60)).done == 1


async def test_a_cancelled_job_stops_its_query_on_the_server(client: Client, db: asyncpg.Connection) -> None:
    marker = f"cancel-{secrets.token_hex(4)}"
    accepted = await client.submit(db_job("busy", SLOW.format(marker=marker)))

    async def counting() -> list[int]:
        # The statement's text also shows, briefly, while submit and ingest prepare it; one that
        # has been active for a second is the execution (preparing takes milliseconds).
        return await active_backends(db, "busy", marker, older_than=1.0)

    (pid,) = await eventually(counting, "the query running")
    await client.cancel_job(accepted.job_id)

    async def stopped() -> bool:
        state = await db.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
        return state != "active"

    # Within the deadline: the statement itself would count for minutes.
    await eventually(stopped, "the query stopped after the cancel")
    # Back in the pool, out of its transaction: idle, not "idle in transaction".
    assert await db.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid) == "idle"
    final = await client.wait(accepted.job_id, timeout=30)
    assert final.kind == "cancelled"


async def test_a_billion_rows_hit_temp_file_limit(client: Client) -> None:
    # The function scan stores its rows before the first comes out: temporary files.
    accepted = await client.submit(
        db_job("small", "SELECT g::text AS name FROM generate_series(1, 1000000000) AS g")
    )
    final = await client.wait(accepted.job_id, timeout=120)
    assert (final.kind, final.done) == ("failed", 0)
    assert final.message is not None and "temp_file_limit" in final.message


async def test_a_long_computation_hits_statement_timeout(client: Client) -> None:
    accepted = await client.submit(
        db_job(
            "local",
            "SELECT count(*)::text AS name FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
        )
    )
    final = await client.wait(accepted.job_id, timeout=120)
    assert final.kind == "failed"
    assert final.message is not None and "statement timeout" in final.message


async def test_valid_queries_the_old_check_refused_now_run(client: Client, sample_db: SampleDb) -> None:
    await sample_db.conn.execute(
        'CREATE TABLE IF NOT EXISTS test_keywords ("delete" text, merge text, share text)'
    )
    await sample_db.conn.execute("TRUNCATE test_keywords")
    await sample_db.conn.execute("INSERT INTO test_keywords VALUES ('删除', '合并', '份额')")
    await sample_db.readable("test_keywords")
    for query, text in [
        ("SELECT t.delete AS name FROM test_keywords t", "删除"),
        ("SELECT 'x' AS merge, merge AS name FROM test_keywords", "合并"),
        ("SELECT share AS name FROM test_keywords", "份额"),
    ]:
        accepted = await client.submit(db_job("local", query, name_template="{row[name]}"))
        final = await client.wait(accepted.job_id, timeout=60)
        assert (final.kind, final.done, final.failed) == ("completed", 1, 0), query
        assert final.output is not None and (Path(final.output) / f"{text}.png").is_file()


def readme_db_example() -> list[str]:
    """The `submit db` line of the README's "Using it" block, as a shell would split it."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if "imagegen submit db" in line)
    return shlex.split(line.split("  #")[0])


def test_the_readme_db_example_runs_as_written(stack: LocalStack) -> None:
    program, *args = readme_db_example()
    assert program == ".venv/bin/imagegen"
    done = imagegen("--json", *args, stack=stack)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    query, param = args[args.index("--query") + 1], args[args.index("--param") + 1]
    assert "$1" in query  # the README quotes it so that the shell leaves $1 alone
    expected = sum(1 for *_, price in products() if price > int(param))
    assert (job["source"], job["status"], job["done"], job["failed"]) == ("db", "completed", expected, 0)


@pytest.mark.slow
async def test_the_default_stack_refuses_to_read_the_server(
    tmp_path: Path, postgres_admin_url: str, stacks: list[tuple[NatsServer, LocalStack]]
) -> None:
    # Started as `imagegen up` starts it: no IMAGEGEN_DATA_SOURCES, so `local` is the sample.
    server, stack = await own_stack(tmp_path, postgres_admin_url, renderers=1)
    stacks.append((server, stack))
    assert stack.sample is not None
    reader = await asyncpg.connect(stack.sample.reader_url)
    try:
        role = await reader.fetchrow(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
            " WHERE rolname = current_user"
        )
        assert tuple(role) == (False, False, False, False)
        assert await reader.fetchval("SHOW default_transaction_read_only") == "on"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.fetchval("SELECT pg_read_file('/etc/passwd')")
    finally:
        await reader.close()
    async with await stack.client() as client:
        with pytest.raises(BadRequest) as err:
            await client.submit(db_job("local", "SELECT pg_read_file('/etc/passwd') AS name"))
        assert err.value.field == "query"
        assert "function pg_read_file() is not allowed" in err.value.message
        accepted = await client.submit(
            db_job("local", "SELECT name FROM products WHERE price > $1", params=["3"])
        )
        final = await client.wait(accepted.job_id, timeout=60)
        expected = sum(1 for *_, price in products() if price > 3)
        assert (final.kind, final.done, final.failed) == ("completed", expected, 0)
