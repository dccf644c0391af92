"""Counting a batch result exactly once (`record_batch`), in four round trips for a batch
without failures: BEGIN, the job row locked, the batch row and its counts in one statement, COMMIT.
The batch's primary key tells a redelivery apart, so no separate look-up is needed unless the
result is refused."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from shared.contract.messages import BatchResult, JobInfo, item_status, missing_reason
from shared.runtime.ledger.checks import JobBounds, refusal
from shared.runtime.ledger.records import COMPLETE_IF_DONE, JOB_COLUMNS, job_info

_BATCH_SEEN = "SELECT 1 FROM imagegen_job_batches WHERE job_id = $1 AND attempt = $2 AND batch = $3"

# A batch's row and its counts in one statement; no row back when the batch was counted before.
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
RETURNING {JOB_COLUMNS}
"""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What recording one batch result did."""

    recorded: bool  # False: counted before (a redelivery), or refused
    job: JobInfo | None  # the job after the update; None if the job is unknown
    completed: bool  # this call moved the job to a completed state
    refused: str | None = None  # why the result does not fit its job (`checks.refusal`)


async def record_batch(pool: asyncpg.Pool, result: BatchResult) -> BatchOutcome:
    """Count one batch result exactly once and complete the job if it was the last.

    A redelivered result is not counted again; one that does not fit its job (an attempt
    that is not current, a batch never issued, items outside the job, counts beyond its
    total: `checks.refusal`) is refused, and neither is recorded.

    Four round trips for a batch without failures (BEGIN, the locked job row, the batch
    and its counts in one statement, COMMIT): the batch's primary key tells a redelivery
    apart, so no separate look-up is needed unless the result is refused.
    """
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
            return BatchOutcome(False, None, False, refused="no such job")
        bounds = JobBounds(
            attempt=row["attempt"],
            status=row["status"],
            total_items=row["total"],
            total_batches=row["total_batches"],
            counted=row["done"] + row["failed"],
        )
        why = refusal(bounds, result)
        if why is not None:
            # A redelivery of a batch already counted (e.g. the last one of a job that has
            # completed since) is a duplicate, not a refusal.
            if await conn.fetchval(_BATCH_SEEN, result.job_id, result.attempt, result.batch):
                return BatchOutcome(False, job_info(row), False)
            return BatchOutcome(False, job_info(row), False, refused=why)
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
            return BatchOutcome(False, job_info(row), False)
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
        return BatchOutcome(True, job_info(done or counted), done is not None)
