"""The job ledger on a real Postgres: migrations, exact-once batch accounting, state changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.contract.messages import BatchResult, ItemResult
from shared.contract.submit import upload_label, upload_name
from shared.runtime.ledger import Ledger, migrate
from shared.runtime.ledger.migrate import available_migrations
from tests.benches import run_bench
from tests.conftest import create_database


@pytest.fixture
async def fresh_url(postgres_admin_url: str) -> str:
    return await create_database(postgres_admin_url, "imagegen_ledger")


@pytest.fixture
async def ledger(fresh_url: str) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(fresh_url, retry_for=10)
    try:
        yield opened
    finally:
        await opened.close()


async def test_migrations_apply_once_even_when_raced(fresh_url: str) -> None:
    conns = [await asyncpg.connect(fresh_url) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(migrate(conn) for conn in conns))
        versions = [v for v, _, _ in available_migrations()]
        assert sorted(v for run in applied for v in run) == versions, applied  # each applied by exactly one
        assert await migrate(conns[0]) == []  # and a later run finds nothing to do
        rows = await conns[0].fetch("SELECT version FROM imagegen_schema_migrations ORDER BY 1")
        assert [r["version"] for r in rows] == versions
    finally:
        for conn in conns:
            await conn.close()


def _result(
    job_id: str, batch: int, ok: int, failed: int = 0, attempt: int = 1, first: int = 0
) -> BatchResult:
    """A result of `ok` rendered and `failed` failed items with indices from `first` on."""
    items = [ItemResult(index=first + i, ok=True, file=f"{i}.png") for i in range(ok)]
    items += [ItemResult(index=first + ok + i, ok=False, error="boom") for i in range(failed)]
    return BatchResult(job_id=job_id, attempt=attempt, batch=batch, items=items, renderer="t")


async def _new_job(ledger: Ledger, job_id: str) -> None:
    job, created = await ledger.create_job(job_id, "csv", b'{"column": "x"}', "/out")
    assert created and job.status == "accepted"
    started = await ledger.start_ingest(job_id, 1)
    assert started is not None and started.status == "ingesting"


async def test_a_batch_counts_once_however_often_it_arrives(ledger: Ledger) -> None:
    await _new_job(ledger, "once")
    await ledger.finish_ingest("once", 1, total_items=5, total_batches=2)
    first = await ledger.record_batch(_result("once", 0, ok=3))
    again = await ledger.record_batch(_result("once", 0, ok=3))
    assert first.recorded and not again.recorded
    assert again.job is not None and (again.job.done, again.job.failed) == (3, 0)
    last = await asyncio.gather(
        *(ledger.record_batch(_result("once", 1, ok=1, failed=1, first=3)) for _ in range(5))
    )
    assert sum(o.recorded for o in last) == 1 and sum(o.completed for o in last) == 1
    # The copies that lost the race would count beyond the total: still duplicates, not refused.
    assert [o.refused for o in last] == [None] * 5
    late = await ledger.record_batch(_result("once", 1, ok=1, failed=1, first=3))
    assert (late.recorded, late.completed, late.refused) == (False, False, None)
    job = await ledger.get_job("once", failures_limit=10)
    assert (job.status, job.total, job.done, job.failed) == ("completed_with_errors", 5, 4, 1)
    assert [(f.index, f.reason) for f in job.failures] == [(4, "boom")]
    assert job.finished_at is not None


async def test_results_before_the_total_complete_when_ingest_finishes(ledger: Ledger) -> None:
    await _new_job(ledger, "early")
    outcome = await ledger.record_batch(_result("early", 0, ok=2))
    assert outcome.recorded and not outcome.completed  # total unknown yet
    job, completed = await ledger.finish_ingest("early", 1, total_items=2, total_batches=1)
    assert completed and job is not None and job.status == "completed"


async def test_zero_rows_complete_at_once(ledger: Ledger) -> None:
    await _new_job(ledger, "empty")
    job, completed = await ledger.finish_ingest("empty", 1, total_items=0, total_batches=0)
    assert completed and job is not None and (job.status, job.total) == ("completed", 0)


async def test_failed_jobs_stay_failed(ledger: Ledger) -> None:
    await _new_job(ledger, "broken")
    failed = await ledger.fail_job("broken", 1, "source went away")
    assert failed is not None and (failed.status, failed.error) == ("failed", "source went away")
    assert await ledger.fail_job("broken", 1, "again") is None
    assert await ledger.start_ingest("broken", 1) is None
    job, completed = await ledger.finish_ingest("broken", 1, 3, 1)
    assert job is None and not completed


async def test_results_of_an_unknown_job_or_old_attempt_are_not_counted(ledger: Ledger) -> None:
    unknown = await ledger.record_batch(_result("ghost", 0, ok=1))
    assert not unknown.recorded and unknown.job is None
    await _new_job(ledger, "attempts")
    old = await ledger.record_batch(_result("attempts", 0, ok=4, attempt=7))
    assert old.job is not None and old.job.done == 0
    assert not old.recorded and old.refused == "attempt 7 is not the job's current attempt 1"


async def test_list_and_get(ledger: Ledger) -> None:
    for name in ("list-a", "list-b"):
        await _new_job(ledger, name)
    await ledger.fail_job("list-b", 1, "x")
    failed = await ledger.list_jobs(status="failed")
    assert [j.job_id for j in failed] == ["list-b"]
    everything = await ledger.list_jobs(limit=10)
    assert {"list-a", "list-b"} <= {j.job_id for j in everything}
    from shared.contract.errors import NotFound

    with pytest.raises(NotFound):
        await ledger.get_job("nope")


async def test_cancel_transitions(ledger: Ledger) -> None:
    from shared.contract.errors import Conflict

    # accepted -> cancelled: ingest then never starts it
    created, _ = await ledger.create_job("cancel-early", "csv", b"{}", None)
    assert created.status == "accepted"
    cancelled, changed = await ledger.cancel_job("cancel-early")
    assert changed and cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert await ledger.start_ingest("cancel-early", 1) is None
    # ingesting -> cancelled: totals may still be written, the state stays cancelled
    await _new_job(ledger, "cancel-mid")
    await ledger.cancel_job("cancel-mid")
    after, completed = await ledger.finish_ingest("cancel-mid", 1, total_items=3, total_batches=1)
    assert after is not None and (after.status, after.total) == ("cancelled", 3) and not completed
    # results that were in flight are refused: a cancelled job's counts stay as they were
    outcome = await ledger.record_batch(_result("cancel-mid", 0, ok=3))
    assert not outcome.recorded and not outcome.completed and outcome.refused == "the job was cancelled"
    assert (await ledger.get_job("cancel-mid")).done == 0
    # cancelling again is a no-op; a finished job cannot be cancelled
    again, changed = await ledger.cancel_job("cancel-mid")
    assert not changed and again.status == "cancelled"
    await _new_job(ledger, "cancel-done")
    await ledger.finish_ingest("cancel-done", 1, total_items=0, total_batches=0)
    with pytest.raises(Conflict):
        await ledger.cancel_job("cancel-done")


async def test_resume_transitions(ledger: Ledger) -> None:
    from shared.contract.errors import Conflict

    await _new_job(ledger, "resume-me")
    await ledger.record_batch(_result("resume-me", 0, ok=2))  # rendered before the cancel
    cancelled, _ = await ledger.cancel_job("resume-me")
    assert (cancelled.status, cancelled.done) == ("cancelled", 2)
    resumed = await ledger.resume_job("resume-me")  # cancelled -> accepted, attempt 2
    assert (resumed.status, resumed.attempt, resumed.total, resumed.failed) == ("accepted", 2, None, 0)
    with pytest.raises(Conflict):
        await ledger.resume_job("resume-me")  # running: nothing to resume
    # Ingest finds 3 items rendered earlier (one landed after the cancel) and skips them.
    started = await ledger.start_ingest("resume-me", 2, already=(3, 1))
    assert started is not None and (started.status, started.done, started.incomplete) == ("ingesting", 3, 1)
    again = await ledger.start_ingest("resume-me", 2, already=(99, 9))  # a redelivery: no reset
    assert again is not None and again.done == 3
    await ledger.finish_ingest("resume-me", 2, total_items=5, total_batches=1)
    finished = await ledger.record_batch(_result("resume-me", 0, ok=2, attempt=2, first=3))
    assert finished.completed and finished.job is not None
    assert (finished.job.status, finished.job.done, finished.job.total) == ("completed_with_errors", 5, 5)
    with pytest.raises(Conflict):
        await ledger.resume_job("resume-me")  # completed: retry handles its failures, not resume


async def test_retry_transitions(ledger: Ledger) -> None:
    from shared.contract.errors import Conflict

    await _new_job(ledger, "retry-me")
    await ledger.finish_ingest("retry-me", 1, total_items=3, total_batches=1)
    done = await ledger.record_batch(_result("retry-me", 0, ok=2, failed=1))
    assert done.job is not None and done.job.status == "completed_with_errors"
    job, items = await ledger.retry_job("retry-me")  # completed_with_errors -> rendering
    assert (job.status, job.attempt, job.total, job.done, job.failed) == ("rendering", 2, 3, 2, 0)
    assert [(i.index, i.text) for i in items] == [(2, "")]
    with pytest.raises(Conflict):
        await ledger.retry_job("retry-me")  # not finished: no second attempt on top
    result = BatchResult(job_id="retry-me", attempt=2, batch=0, items=[ItemResult(index=2, ok=True)])
    finished = await ledger.record_batch(result)
    assert finished.completed and finished.job is not None
    assert (finished.job.status, finished.job.done, finished.job.failed) == ("completed", 3, 0)
    with pytest.raises(Conflict):
        await ledger.retry_job("retry-me")  # nothing failed any more


# --- results that do not fit their job are refused, not counted ------------------------------


async def _job_with_totals(ledger: Ledger, job_id: str, items: int, batches: int) -> None:
    await _new_job(ledger, job_id)
    await ledger.finish_ingest(job_id, 1, total_items=items, total_batches=batches)


async def _refused(ledger: Ledger, result: BatchResult) -> str:
    """Record `result`, check nothing was counted or recorded, and return why it was refused."""
    before = await ledger.get_job(result.job_id)
    outcome = await ledger.record_batch(result)
    after = await ledger.get_job(result.job_id)
    assert not outcome.recorded and not outcome.completed and outcome.refused, outcome
    assert (after.done, after.failed, after.status) == (before.done, before.failed, before.status)
    again = await ledger.record_batch(result)  # nothing was stored: refused again, not "seen"
    assert again.refused == outcome.refused
    return outcome.refused


async def test_a_batch_the_job_never_issued_is_refused(ledger: Ledger) -> None:
    await _job_with_totals(ledger, "batches", items=4, batches=2)
    assert "batch 2 was never issued" in await _refused(ledger, _result("batches", 2, ok=1))
    assert "batch -1 was never issued" in await _refused(ledger, _result("batches", -1, ok=1))
    # Before the totals are known a batch number cannot be judged, but it can still be negative.
    await _new_job(ledger, "streaming")
    assert "never issued" in await _refused(ledger, _result("streaming", -3, ok=1))
    assert (await ledger.record_batch(_result("streaming", 40, ok=1))).recorded


async def test_a_result_of_an_attempt_that_is_not_current_is_refused(ledger: Ledger) -> None:
    await _job_with_totals(ledger, "stale", items=2, batches=1)
    await ledger.record_batch(_result("stale", 0, ok=1, failed=1))  # completed_with_errors
    await ledger.retry_job("stale")  # attempt 2 re-renders item 1
    why = await _refused(ledger, _result("stale", 1, ok=1, first=1, attempt=1))
    assert why == "attempt 1 is not the job's current attempt 2"
    assert "attempt 3" in await _refused(ledger, _result("stale", 0, ok=1, first=1, attempt=3))
    assert (await ledger.record_batch(_result("stale", 0, ok=1, first=1, attempt=2))).completed


async def test_items_outside_the_job_are_refused(ledger: Ledger) -> None:
    await _job_with_totals(ledger, "range", items=3, batches=2)
    assert "outside the job's 3 items" in await _refused(ledger, _result("range", 1, ok=2, first=2))
    assert "outside" in await _refused(ledger, _result("range", 0, ok=1, first=-1))
    assert "twice" in await _refused(
        ledger, BatchResult(job_id="range", attempt=1, batch=0, items=[ItemResult(index=0, ok=True)] * 2)
    )
    assert "0 items" in await _refused(ledger, _result("range", 0, ok=0))


async def test_counts_beyond_the_total_are_refused(ledger: Ledger) -> None:
    await _job_with_totals(ledger, "counts", items=3, batches=2)
    assert (await ledger.record_batch(_result("counts", 0, ok=2))).recorded
    # Batch 1 claiming items 1 and 2 would make 4 counted of 3.
    why = await _refused(ledger, _result("counts", 1, ok=2, first=1))
    assert why == "2 more items would make 4 counted, beyond the job's 3"
    finished = await ledger.record_batch(_result("counts", 1, ok=1, first=2))
    assert finished.completed and finished.job is not None and finished.job.done == 3


async def test_a_job_s_later_results_are_counted_in_one_statement_and_exactly(ledger: Ledger) -> None:
    await _job_with_totals(ledger, "quick", items=40, batches=10)
    outcomes = [await ledger.record_batch(_result("quick", n, ok=4, first=4 * n)) for n in range(10)]
    assert all(o.recorded for o in outcomes)
    # The first reads the job row; the next eight count against what it saw; the last, which
    # completes the job, commits its completion with its count on the locked path.
    assert [o.locked for o in outcomes] == [True] + [False] * 8 + [True]
    assert [o.job.done for o in outcomes if o.job] == [4 * (n + 1) for n in range(10)]
    assert [o.completed for o in outcomes] == [False] * 9 + [True]
    again = await ledger.record_batch(_result("quick", 3, ok=4, first=12))  # a redelivery
    assert not again.recorded and again.refused is None
    job = await ledger.get_job("quick")
    assert (job.status, job.done, job.failed) == ("completed", 40, 0)


async def test_one_statement_counting_never_uses_bounds_that_changed(ledger: Ledger, fresh_url: str) -> None:
    # Cancelled since its last result was counted: the next is refused, not counted.
    await _job_with_totals(ledger, "gone", items=40, batches=10)
    assert (await ledger.record_batch(_result("gone", 0, ok=4))).recorded
    await ledger.cancel_job("gone")
    assert await _refused(ledger, _result("gone", 1, ok=4, first=4)) == "the job was cancelled"

    # Its totals recorded since (ingest finished): a batch beyond them is refused.
    await _new_job(ledger, "totals")
    assert (await ledger.record_batch(_result("totals", 0, ok=4))).recorded  # totals unknown
    await ledger.finish_ingest("totals", 1, total_items=8, total_batches=2)
    assert "batch 5 was never issued" in await _refused(ledger, _result("totals", 5, ok=4, first=4))

    # Counted by another replica since: counts stay exact and the job completes once.
    await _job_with_totals(ledger, "shared", items=16, batches=4)
    other = await Ledger.open(fresh_url, retry_for=10)
    try:
        first = await ledger.record_batch(_result("shared", 0, ok=4))
        elsewhere = await other.record_batch(_result("shared", 1, ok=4, first=4))
        assert first.recorded and elsewhere.recorded
        # What this replica saw has 4 counted; the row has 8: counted on the locked path.
        third = await ledger.record_batch(_result("shared", 2, ok=4, first=8))
        assert third.recorded and third.locked and third.job is not None and third.job.done == 12
        duplicate = await ledger.record_batch(_result("shared", 1, ok=4, first=4))
        assert not duplicate.recorded and duplicate.refused is None
        last = await ledger.record_batch(_result("shared", 3, ok=4, first=12))
        assert last.recorded and last.completed and last.locked
    finally:
        await other.close()
    job = await ledger.get_job("shared")
    assert (job.status, job.done) == ("completed", 16)


async def test_only_active_jobs_unchanged_for_the_bound_are_failed_as_stalled(ledger: Ledger) -> None:
    for job_id in ("stalled-ingesting", "stalled-rendering", "moving", "done-long-ago"):
        await ledger.create_job(job_id, "csv", b'{"column": "x"}', "/out")
    await ledger.create_job("accepted-long-ago", "db", b'{"column": "x"}', "/out")  # no db ingest runs
    for job_id in ("stalled-ingesting", "stalled-rendering", "moving", "done-long-ago"):
        await ledger.start_ingest(job_id, 1)
    await ledger.finish_ingest("stalled-rendering", 1, 10, 2)
    await ledger.finish_ingest("done-long-ago", 1, 0, 0)  # no rows: completed at once
    await ledger.pool.execute("UPDATE imagegen_jobs SET updated_at = now() - interval '50 seconds'")
    await ledger.pool.execute(
        "UPDATE imagegen_jobs SET updated_at = now() - interval '2 minutes' WHERE job_id <> 'moving'"
    )
    failed = {job.job_id: job for job in await ledger.fail_stalled(60)}
    assert set(failed) == {"stalled-ingesting", "stalled-rendering", "accepted-long-ago"}
    assert (
        failed["stalled-rendering"].error
        == "no progress for 60 s while rendering (IMAGEGEN_JOB_STALL_SECONDS)"
    )
    assert (
        failed["stalled-ingesting"].error
        == "no progress for 60 s while ingesting (IMAGEGEN_JOB_STALL_SECONDS)"
    )
    assert all(job.status == "failed" and job.finished_at for job in failed.values())
    assert (await ledger.get_job("moving")).status == "ingesting"  # changed 50 s ago: not yet
    assert (await ledger.get_job("done-long-ago")).status == "completed"
    assert await ledger.fail_stalled(60) == []  # each job is failed once


async def test_an_accepted_job_queued_behind_moving_ingests_is_not_stalled(ledger: Ledger) -> None:
    for job_id in ("ingesting-busy", "queued", "queued-db"):
        await ledger.create_job(job_id, "db" if job_id == "queued-db" else "csv", b'{"column": "x"}', "/out")
    await ledger.start_ingest("ingesting-busy", 1)
    await ledger.pool.execute(
        "UPDATE imagegen_jobs SET updated_at = now() - interval '2 minutes' WHERE job_id LIKE 'queued%'"
    )
    # A csv ingest is moving: the queued csv job waits its turn; no db job is being ingested.
    assert [job.job_id for job in await ledger.fail_stalled(60)] == ["queued-db"]
    await ledger.pool.execute("UPDATE imagegen_jobs SET updated_at = now() - interval '2 minutes'")
    assert {job.job_id for job in await ledger.fail_stalled(60)} == {"ingesting-busy", "queued"}


async def test_a_job_is_labelled_with_what_it_read(ledger: Ledger) -> None:
    upload = upload_name("价目表 (v2).csv", "upload.csv")
    assert upload.endswith("-价目表 (v2).csv") and upload_label(upload) == "价目表 (v2).csv"
    assert upload_label(upload_name("../../etc/passwd", "upload.csv")).count("/") == 0
    assert upload_label(upload_name("Cafe\u0301.csv", "upload.csv")) == "Caf\u00e9.csv"
    requests = {
        "label-upload": (f'{{"column": "x", "object": "{upload}"}}', "价目表 (v2).csv"),
        "label-path": ('{"column": "x", "path": "menus/today.csv"}', "menus/today.csv"),
        "label-db": ('{"column": "x", "data_source": "local", "query": "SELECT 1"}', "local"),
        "label-inline": ('{"column": "x", "csv": "a\\n1\\n"}', None),
    }
    for job_id, (request, _) in requests.items():
        created, _ = await ledger.create_job(job_id, "csv", request.encode(), None)
        assert created.label == requests[job_id][1]
    listed = {job.job_id: job.label for job in await ledger.list_jobs(limit=100)}
    assert {job_id: label for job_id, (_, label) in requests.items()} == {k: listed[k] for k in requests}


def test_bench_ledger_runs() -> None:
    """bench/bench_ledger.py runs as bench/README.md shows it (with fewer batches): every batch
    recorded once and the job completed (the bench asserts both)."""
    out = run_bench("bench_ledger.py", "--batches", "20", "--rounds", "1", "--items", "64")
    assert "round trips" in out, out
