"""Counting a batch result exactly once (`BatchCounter.record`).

The locked path takes four round trips for a batch without failures: BEGIN, the job row locked,
the batch row and its counts in one statement, COMMIT. The batch's primary key tells a
redelivery apart, so no separate look-up is needed unless the result is refused.

Most results, though, arrive for a job whose row this process saw when it counted the job's
previous result. Such a result is checked against those bounds and counted in one statement
(`_COUNT_IF_UNCHANGED`) that locks the row only if it still holds exactly those bounds, so the
checks made on them hold. A job that changed since (cancelled, its totals recorded, a result
counted by another replica) matches nothing, and the result takes the locked path. So do
results with failed or incomplete items (their rows are inserted too) and a result that may
complete its job (the completion commits with the count).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, replace

import asyncpg

from shared.contract.messages import BatchResult, JobInfo, item_status, missing_reason
from shared.runtime.ledger.checks import JobBounds, refusal
from shared.runtime.ledger.records import COMPLETE_IF_DONE, JOB_COLUMNS, job_info

_BATCH_SEEN = "SELECT 1 FROM imagegen_job_batches WHERE job_id = $1 AND attempt = $2 AND batch = $3"

# A batch's row and its counts in one statement; no row back when the batch was counted before.
# (Also `total_batches`, for the bounds the next result of the job is checked against.)
_COUNT_BATCH = f"""
WITH batch AS (
    INSERT INTO imagegen_job_batches
           (job_id, attempt, batch, done_items, failed_items, incomplete_items, renderer)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
UPDATE imagegen_jobs SET done_items = done_items + $4, failed_items = failed_items + $5,
       incomplete_items = incomplete_items + $6, updated_at = now()
 WHERE job_id = $1 AND attempt = $2 AND EXISTS (SELECT 1 FROM batch)
RETURNING {JOB_COLUMNS}, total_batches
"""

# The same, only while the job row holds exactly the bounds $8-$11 (status, total items, total
# batches, items counted) the result was checked against; no row back otherwise, or when the
# batch was counted before. In one statement, so without BEGIN and COMMIT: FOR UPDATE waits for
# a concurrent writer and then matches the row as that writer left it.
_COUNT_IF_UNCHANGED = f"""
WITH job AS (
    SELECT 1 FROM imagegen_jobs
     WHERE job_id = $1 AND attempt = $2 AND status = $8 AND total_items IS NOT DISTINCT FROM $9
       AND total_batches IS NOT DISTINCT FROM $10 AND done_items + failed_items = $11
       FOR UPDATE
), batch AS (
    INSERT INTO imagegen_job_batches
           (job_id, attempt, batch, done_items, failed_items, incomplete_items, renderer)
    SELECT $1::text, $2::integer, $3::integer, $4::integer, $5::integer, $6::integer, $7::text FROM job
    ON CONFLICT DO NOTHING
    RETURNING 1
)
UPDATE imagegen_jobs SET done_items = done_items + $4, failed_items = failed_items + $5,
       incomplete_items = incomplete_items + $6, updated_at = now()
 WHERE job_id = $1 AND attempt = $2 AND EXISTS (SELECT 1 FROM batch)
RETURNING {JOB_COLUMNS}
"""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What recording one batch result did."""

    recorded: bool  # False: counted before (a redelivery), or refused
    job: JobInfo | None  # the job after the update; None if the job is unknown
    completed: bool  # this call moved the job to a completed state
    refused: str | None = None  # why the result does not fit its job (`checks.refusal`)
    locked: bool = True  # False: counted in one statement against the bounds seen before


class BatchCounter:
    """Counts batch results, remembering the bounds of the jobs whose results it counted last
    (at most `remember` jobs) to count the next result of each in one statement."""

    def __init__(self, pool: asyncpg.Pool, *, remember: int = 1024) -> None:
        self.pool = pool
        self.remember = remember
        self._seen: OrderedDict[str, JobBounds] = OrderedDict()

    async def record(self, result: BatchResult) -> BatchOutcome:
        """Count one batch result exactly once and complete the job if it was the last.

        A redelivered result is not counted again; one that does not fit its job (an attempt
        that is not current, a batch never issued, items outside the job, counts beyond its
        total: `checks.refusal`) is refused, and neither is recorded.
        """
        seen = self._seen.pop(result.job_id, None)
        if seen is not None:
            outcome = await _count_if_unchanged(self.pool, result, seen)
            if outcome is not None:
                self._keep(result.job_id, replace(seen, counted=seen.counted + len(result.items)))
                return outcome
        outcome, bounds = await _count_locked(self.pool, result)
        if bounds is not None and outcome.recorded and not outcome.completed:
            self._keep(result.job_id, bounds)
        return outcome

    def _keep(self, job_id: str, bounds: JobBounds) -> None:
        self._seen[job_id] = bounds
        while len(self._seen) > self.remember:
            self._seen.popitem(last=False)


async def _count_if_unchanged(
    pool: asyncpg.Pool, result: BatchResult, seen: JobBounds
) -> BatchOutcome | None:
    """Count `result` in one statement if it may be: checked against `seen` and the job row
    still holds `seen`; None when the locked path must decide."""
    if any(not item.ok or item.missing_glyphs for item in result.items):
        return None  # its failed and incomplete items are inserted too
    if seen.total_items is not None and seen.counted + len(result.items) >= seen.total_items:
        return None  # it may complete the job: the completion commits with the count
    if refusal(seen, result) is not None:
        return None  # refused, or a duplicate of a batch counted since: the locked path tells
    row = await pool.fetchrow(
        _COUNT_IF_UNCHANGED,
        result.job_id,
        result.attempt,
        result.batch,
        len(result.items),
        0,
        0,
        result.renderer,
        seen.status,
        seen.total_items,
        seen.total_batches,
        seen.counted,
    )
    if row is None:
        return None  # the job changed since, or the batch was counted before
    return BatchOutcome(True, job_info(row), False, locked=False)


async def _count_locked(pool: asyncpg.Pool, result: BatchResult) -> tuple[BatchOutcome, JobBounds | None]:
    """Count `result` with the job row locked; also the job's bounds after a count (None when
    nothing was counted)."""
    failed = [item for item in result.items if not item.ok]
    # item_status's "incomplete", inline: this runs for every item of every job.
    incomplete = [item for item in result.items if item.ok and item.missing_glyphs]
    done_count = len(result.items) - len(failed)
    async with pool.acquire() as conn, conn.transaction():
        # Locked until commit: the checks and the counting see the same totals, and a
        # second copy of this result waits here until the first is committed.
        row = await conn.fetchrow(
            f"SELECT {JOB_COLUMNS}, total_batches FROM imagegen_jobs WHERE job_id = $1 FOR UPDATE",
            result.job_id,
        )
        if row is None:
            return BatchOutcome(False, None, False, refused="no such job"), None
        why = refusal(_bounds(row), result)
        if why is not None:
            # A redelivery of a batch already counted (e.g. the last one of a job that has
            # completed since) is a duplicate, not a refusal.
            if await conn.fetchval(_BATCH_SEEN, result.job_id, result.attempt, result.batch):
                return BatchOutcome(False, job_info(row), False), None
            return BatchOutcome(False, job_info(row), False, refused=why), None
        counted = await conn.fetchrow(
            _COUNT_BATCH,
            result.job_id,
            result.attempt,
            result.batch,
            done_count,
            len(failed),
            len(incomplete),
            result.renderer,
        )
        if counted is None:  # its primary key was there: counted before
            return BatchOutcome(False, job_info(row), False), None
        if failed or incomplete:
            await conn.executemany(
                """INSERT INTO imagegen_item_failures
                          (job_id, attempt, item_index, reason, text, name, style, row_number, kind)
                   VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9) ON CONFLICT DO NOTHING""",
                [
                    (
                        result.job_id,
                        result.attempt,
                        item.index,
                        (item.error or "unknown error") if not item.ok else missing_reason(item),
                        item.text,
                        item.name,
                        json.dumps(item.style, ensure_ascii=False) if item.style else None,
                        item.row,
                        item_status(item),
                    )
                    for item in [*failed, *incomplete]
                ],
            )
        done = None
        total = counted["total"]
        if total is not None and counted["done"] + counted["failed"] >= total:
            # Only then can COMPLETE_IF_DONE change anything (it decides): no round trip
            # for every other batch.
            done = await conn.fetchrow(COMPLETE_IF_DONE, result.job_id, result.attempt)
        return BatchOutcome(True, job_info(done or counted), done is not None), _bounds(counted)


def _bounds(row: asyncpg.Record) -> JobBounds:
    """What a job row of `JOB_COLUMNS` and `total_batches` bounds a result of it to."""
    return JobBounds(
        attempt=row["attempt"],
        status=row["status"],
        total_items=row["total"],
        total_batches=row["total_batches"],
        counted=row["done"] + row["failed"],
    )
