"""The db source at scale: a 1,000,000-row query streams through the server-side cursor with the
ingest process under 150 MB peak RSS, on a stack of its own with no renderers."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import pytest

from devstack import NatsServer
from devstack.stack import LocalStack
from shared.contract.subjects import STREAM_TASKS
from shared.runtime.bus.permissions import ADMIN
from shared.runtime.settings import Settings
from shared.sources.db import SubmitDb
from tests.stacks import INGEST_DEADLINE, own_stack, peak_rss_mb, wait_ingested

ROWS = 1_000_000
RSS_LIMIT_MB = 150


@pytest.mark.slow
@pytest.mark.timeout(2 * INGEST_DEADLINE)
async def test_million_row_query_ingests_in_flat_memory(
    tmp_path: Path, postgres_admin_url: str, stacks: list[tuple[NatsServer, LocalStack]]
) -> None:
    server, stack = await own_stack(tmp_path, postgres_admin_url, renderers=0)
    stacks.append((server, stack))
    # In the stack's sample database (its `local` data source), readable by its reader role.
    assert stack.sample is not None
    conn = await asyncpg.connect(stack.sample.admin_url)
    try:
        await conn.execute("DROP TABLE IF EXISTS test_million")
        await conn.execute(
            """CREATE TABLE test_million AS
               SELECT g AS id, '商品 Product ' || lpad(g::text, 7, '0') AS name
                 FROM generate_series(1, $1) g""",
            ROWS,
        )
        await conn.execute(f'GRANT SELECT ON test_million TO "{stack.sample.role}"')
    finally:
        await conn.close()
    ingest = next(p for p in stack.processes if p.name == "ingest")
    before = peak_rss_mb(ingest.process.pid)
    async with await stack.client() as client:
        started = time.monotonic()
        accepted = await client.submit(
            SubmitDb(data_source="local", query="SELECT name FROM test_million ORDER BY id", column="name")
        )
        job = await wait_ingested(client, accepted.job_id, timeout=INGEST_DEADLINE)
        seconds = time.monotonic() - started
        assert (job.status, job.total) == ("rendering", ROWS), job
    async with await stack.client(ADMIN) as admin:  # a client may not read the task queue
        info = await admin.js.stream_info(STREAM_TASKS)
        # Every row is in a task (no renderer runs here): at least rows / batch size messages.
        assert info.state.messages >= ROWS / Settings().batch_size
    peak = peak_rss_mb(ingest.process.pid)
    print(f"ingest (db): {ROWS:,} rows in {seconds:.1f}s, peak RSS {peak:.1f} MiB (at start {before:.1f})")
    assert peak < RSS_LIMIT_MB, peak
