"""Ingest at scale, on a stack of its own (own nats-server, no renderers).

* A 1,000,000-row CSV (over 50 MB) is uploaded, submitted and ingested by the ingest service within a
  150 MB peak RSS (VmHWM): the file is streamed, never loaded, and tasks are published with a
  bounded window. With no renderer running, the tasks stay in the work queue, so the test
  also counts exactly what was published.
* With a tiny work-queue limit, ingest stalls (publishes are retried, never dropped) until a
  renderer makes room; then every item is rendered exactly once.

Each test starts its own nats-server so a million tasks never touch the session's server.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from devstack import NatsServer
from devstack.stack import LocalStack
from shared.contract.codec import decode_msgpack
from shared.contract.messages import RenderTask
from shared.contract.subjects import STREAM_TASKS
from shared.runtime.bus.permissions import ADMIN
from shared.sources.csv import SubmitCsv
from tests.stacks import INGEST_DEADLINE, own_stack, peak_rss_mb, wait_ingested
from tests.waiting import eventually

ROWS = 1_000_000
RSS_LIMIT_MB = 150


def write_big_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("sku,name,price\n")
        chunk: list[str] = []
        for i in range(rows):
            chunk.append(f"SKU-{i:07d},商品 Product name number {i:07d},{i % 1000}.99\n")
            if len(chunk) == 10_000:
                handle.write("".join(chunk))
                chunk.clear()
        handle.write("".join(chunk))


@pytest.mark.slow
@pytest.mark.timeout(2 * INGEST_DEADLINE)
async def test_million_rows_ingest_in_flat_memory(
    tmp_path: Path, postgres_admin_url: str, stacks: list[tuple[NatsServer, LocalStack]]
) -> None:
    source = tmp_path / "million.csv"
    await asyncio.to_thread(write_big_csv, source, ROWS)
    size_mb = source.stat().st_size / 1e6
    assert size_mb > 50, size_mb

    server, stack = await own_stack(tmp_path, postgres_admin_url, renderers=0)
    stacks.append((server, stack))
    [ingest] = [p for p in stack.processes if p.name == "ingest"]
    assert not any(p.name == "renderer" for p in stack.processes)
    rss_before = peak_rss_mb(ingest.process.pid)

    async with await stack.client() as client:
        started = time.monotonic()
        accepted = await client.submit_file(source, SubmitCsv(column="name"))
        submitted = time.monotonic()
        job = await wait_ingested(client, accepted.job_id, timeout=INGEST_DEADLINE)
        ingest_seconds = time.monotonic() - submitted
        assert (job.status, job.total) == ("rendering", ROWS), job

    async with await stack.client(ADMIN) as admin:  # a client may not read the task queue
        info = await admin.js.stream_info(STREAM_TASKS)
        # Batches ramp up (8, 16, ... up to the batch size): the stream holds one message per
        # batch number, no gaps and no duplicates, and their items add up to every row.
        first = decode_msgpack((await admin.js.get_msg(STREAM_TASKS, seq=1)).data, RenderTask)
        last = decode_msgpack(
            (await admin.js.get_msg(STREAM_TASKS, seq=info.state.last_seq)).data, RenderTask
        )
        assert info.state.messages == last.batch + 1, "every batch is queued, exactly once"
        assert (first.batch, len(first.items), first.items[0].index) == (0, 8, 0)
        assert last.items[-1].index == ROWS - 1

    peak = peak_rss_mb(ingest.process.pid)
    print(
        f"\n1M-row ingest: file {size_mb:.1f} MB, upload+submit {submitted - started:.1f}s, "
        f"ingest {ingest_seconds:.1f}s ({ROWS / ingest_seconds:,.0f} rows/s), "
        f"ingest peak RSS {peak:.1f} MiB (at start {rss_before:.1f} MiB), "
        f"{info.state.messages} task messages, {info.state.bytes / 1e6:.1f} MB queued"
    )
    assert peak < RSS_LIMIT_MB, f"ingest peaked at {peak:.1f} MiB"


@pytest.mark.slow
async def test_a_full_work_queue_stalls_ingest_and_loses_nothing(
    tmp_path: Path, postgres_admin_url: str, stacks: list[tuple[NatsServer, LocalStack]]
) -> None:
    rows = 3000
    source = tmp_path / "stall.csv"
    source.write_text("name\n" + "".join(f"r{i}\n" for i in range(rows)), "utf-8")
    # ~40 kB of tasks fit; the whole job needs several times that.
    server, stack = await own_stack(
        tmp_path, postgres_admin_url, renderers=0, IMAGEGEN_TASKS_MAX_BYTES=str(40_000)
    )
    stacks.append((server, stack))
    [ingest] = [p for p in stack.processes if p.name == "ingest"]
    async with await stack.client() as client:
        accepted = await client.submit_file(source, SubmitCsv(column="name", batch_size=10))

        # Ingest fills the queue, then its publishes are refused and retried: it stalls.
        async def stalled() -> bool:
            return "tasks.publish_retry" in ingest.log_file.read_text()

        await eventually(stalled, "ingest hitting the work-queue limit")
        job = await client.get_job(accepted.job_id)
        assert job.total is None and job.status == "ingesting", job
        # A renderer makes room; ingest resumes and every row is rendered exactly once.
        stack.spawn("renderer")
        final = await client.wait(accepted.job_id, timeout=120)
        assert (final.kind, final.total, final.done, final.failed) == ("completed", rows, rows, 0)
        assert final.output is not None
        names = {p.name for p in Path(final.output).glob("*.png")}
        assert names == {f"{row}.png" for row in range(2, rows + 2)}  # the header is row 1
