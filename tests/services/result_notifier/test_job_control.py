"""Job control through result-notifier: cancel mid-job, retry failed items, list and page."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from devstack.stack import LocalStack
from shared.client import Client
from shared.contract.errors import Conflict, NotFound
from shared.contract.messages import JobEvent
from shared.contract.subjects import CONSUMER_RENDERER, STREAM_TASKS, tasks_subject
from shared.runtime.bus.permissions import ADMIN
from shared.sources.csv import SubmitCsv
from tests.images import decode_rgba


async def _quiet(client: Client, job_id: str, deadline: float = 60) -> None:
    """Until nothing of `job_id` is queued or in a renderer's hands (a cancelled job's tasks are
    skipped or finished), or fail after `deadline` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        queued = await client.js.stream_info(STREAM_TASKS, subjects_filter=tasks_subject(job_id))
        renderer = await client.js.consumer_info(STREAM_TASKS, CONSUMER_RENDERER)
        if not (queued.state.subjects or {}).get(tasks_subject(job_id)) and renderer.num_ack_pending == 0:
            return
        assert loop.time() < end, "the cancelled job's tasks were not dropped"
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_cancel_stops_the_job_and_resume_renders_the_rest(stack: LocalStack, csv_dir: Path) -> None:
    rows = 6000
    (csv_dir / "big.csv").write_text("name\n" + "".join(f"商品 {i} Product\n" for i in range(rows)), "utf-8")
    async with await stack.client(ADMIN) as client:  # admin: it reads the consumers' state too
        accepted = await client.submit(SubmitCsv(path="big.csv", column="name", batch_size=8))
        cancelled: JobEvent | None = None
        async for event in client.watch(accepted.job_id):
            if event.kind == "progress" and event.done > 0 and cancelled is None:
                reply = await client.cancel_job(accepted.job_id)
                assert reply.status == "cancelled"
            if event.kind == "cancelled":
                cancelled = event
                break
        assert cancelled is not None and 0 < cancelled.done < rows
        output = Path(cancelled.output or "")
        at_cancel = len(list(output.glob("*.png")))

        # Everywhere it stops: no task of the job is left queued or in hand; at most what the
        # renderers held (prefetch x batch, and the batch in each child) lands after the cancel.
        await _quiet(client, accepted.job_id)
        landed = len(list(output.glob("*.png"))) - at_cancel
        assert 0 <= landed <= 2 * (4 + 1) * 8, landed
        # The summary is what the cancelled event said: late results are not counted.
        job = await client.get_job(accepted.job_id)
        assert (job.status, job.done, job.failed) == ("cancelled", cancelled.done, cancelled.failed)

        # Resume: a new attempt renders what was not done, and the job ends complete and exact.
        resumed = await client.retry_job(accepted.job_id)
        assert (resumed.status, resumed.attempt) == ("accepted", 2)
        final = await client.wait(accepted.job_id, attempt=2, timeout=300)
        assert (final.kind, final.status, final.total, final.done, final.failed) == (
            "completed",
            "completed",
            rows,
            rows,
            0,
        ), final
        names = sorted(int(p.stem) for p in output.glob("*.png"))
        assert names == list(range(2, rows + 2))
        first: set[int] = set()
        again: set[int] = set()

        async def read() -> None:
            async for result in client.results(accepted.job_id):
                (first if result.attempt == 1 else again).update(i.index for i in result.items if i.ok)
                if len(first | again) == rows:
                    return

        await asyncio.wait_for(read(), 60)
        # Only what was not done is rendered again: the attempts are disjoint (images that landed
        # after the cancel were found in the results stream and kept) and cover every row.
        assert not first & again
        assert len(first) >= job.done and len(first) + len(again) == rows


async def test_cancel_refuses_finished_and_unknown_jobs(client: Client) -> None:
    accepted = await client.submit(SubmitCsv(csv="name\nquick\n", column="name"))
    await client.wait(accepted.job_id, timeout=60)
    with pytest.raises(Conflict):
        await client.cancel_job(accepted.job_id)
    with pytest.raises(NotFound):
        await client.cancel_job("no-such-job")


async def test_retry_rerenders_only_the_failed_items(client: Client, db: asyncpg.Connection) -> None:
    csv_text = "name\nfirst\n\nsecond\n   \n第三\n"
    # Rows 1 and 3 are blank: they fail at ingest with their row numbers.
    accepted = await client.submit(SubmitCsv(csv=csv_text.replace("\n\n", '\n""\n'), column="name"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.status, final.done, final.failed) == ("completed_with_errors", 3, 2)

    job = await client.retry_job(accepted.job_id)
    assert (job.attempt, job.status, job.total) == (2, "rendering", 5)
    again = await client.wait(accepted.job_id, attempt=2, timeout=60)
    assert (again.attempt, again.status, again.done, again.failed) == (2, "completed_with_errors", 3, 2)
    batches = await db.fetch(
        """SELECT attempt, done_items, failed_items FROM imagegen_job_batches
            WHERE job_id = $1 AND attempt = 2""",
        accepted.job_id,
    )
    assert sum(b["done_items"] + b["failed_items"] for b in batches) == 2  # only the failed two
    failures = await client.get_job(accepted.job_id)
    assert sorted(f.index for f in failures.failures) == [1, 3]

    # A job with nothing failed has nothing to retry: the retry itself is refused.
    ok = await client.submit(SubmitCsv(csv="name\nfine\n", column="name"))
    assert (await client.wait(ok.job_id, timeout=60)).status == "completed"
    with pytest.raises(Conflict, match="completed with failed items"):
        await client.retry_job(ok.job_id)


async def test_list_filters_by_status_and_pages(client: Client) -> None:
    ids = []
    for i in range(3):
        accepted = await client.submit(SubmitCsv(csv=f"name\nlist {i}\n", column="name"))
        await client.wait(accepted.job_id, timeout=60)
        ids.append(accepted.job_id)
    # Ours are the newest completed jobs (tests run one at a time): the first page is the last
    # two, newest first, and the next page, before the second, starts with the first of ours.
    first = await client.list_jobs(status="completed", limit=2)
    assert [j.job_id for j in first] == [ids[2], ids[1]], first
    assert all(j.status == "completed" for j in first)
    second = await client.list_jobs(status="completed", limit=2, before=first[-1].created_at)
    assert second and second[0].job_id == ids[0], second
    assert not {j.job_id for j in first} & {j.job_id for j in second}
    assert all(j.created_at < first[-1].created_at for j in second)
    assert [j.created_at for j in second] == sorted((j.created_at for j in second), reverse=True)
    failed = await client.list_jobs(status="failed", limit=50)
    assert all(j.status == "failed" for j in failed) and not {j.job_id for j in failed} & set(ids)


async def test_retry_recovers_an_item_and_keeps_its_row_style(client: Client, stack: LocalStack) -> None:
    """Item 2 (row 4) cannot be stored the first time (its file name is taken by a folder); after
    that is cleared, a retry renders just that item, with its per-row colour."""
    job_id = f"retry-{int(time.time() * 1000)}"
    blocker = stack.output_dir / job_id / "4.png"
    blocker.mkdir(parents=True)
    csv_text = "name,colour\nzero,\none,\ntwo 二,#ff0000\nthree,\n"
    accepted = await client.submit(
        SubmitCsv(csv=csv_text, column="name", color_column="colour", job_id=job_id)
    )
    final = await client.wait(accepted.job_id, timeout=60)
    assert (final.status, final.done, final.failed) == ("completed_with_errors", 3, 1)
    job = await client.get_job(job_id)
    assert [(f.index, f.row) for f in job.failures] == [(2, 4)] and "could not store" in job.failures[
        0
    ].reason

    blocker.rmdir()
    retried = await client.retry_job(job_id)
    assert retried.attempt == 2
    again = await client.wait(job_id, attempt=2, timeout=60)
    assert (again.status, again.done, again.failed) == ("completed", 4, 0)
    image = decode_rgba((stack.output_dir / job_id / "4.png").read_bytes())
    opaque = {px[:3] for px in image.get_flattened_data() if px[3] == 255}
    assert opaque == {(255, 0, 0)}, opaque  # the row's own colour survived the retry
