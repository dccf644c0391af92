"""How a job row is read: the columns every query returns, the row as a `JobInfo`, and the
completion rule both writers (ingest's totals, result-notifier's last batch) apply."""

from __future__ import annotations

import asyncpg

from shared.contract.messages import ItemFailure, JobInfo
from shared.contract.submit import upload_label

JOB_COLUMNS = """job_id, source, status, attempt, total_items, done_items, failed_items,
                  incomplete_items, output, error, created_at, started_at, finished_at,
                  request->>'object' AS upload,
                  COALESCE(request->>'path', request->>'data_source') AS read_from"""

# Completes a job whose counts have caught up with its (known) total. Used by both writers.
COMPLETE_IF_DONE = f"""
UPDATE imagegen_jobs
   SET status = CASE WHEN failed_items > 0 OR incomplete_items > 0 THEN 'completed_with_errors'
                     ELSE 'completed' END,
       finished_at = now(), updated_at = now()
 WHERE job_id = $1 AND attempt = $2 AND status = 'rendering'
   AND total_items IS NOT NULL AND done_items + failed_items >= total_items
RETURNING {JOB_COLUMNS}
"""


def job_info(row: asyncpg.Record, failures: list[ItemFailure] | None = None) -> JobInfo:
    return JobInfo(
        job_id=row["job_id"],
        source=row["source"],
        status=row["status"],
        attempt=row["attempt"],
        total=row["total_items"],
        done=row["done_items"],
        failed=row["failed_items"],
        incomplete=row["incomplete_items"],
        output=row["output"],
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        failures=failures or [],
        label=upload_label(row["upload"]) if row["upload"] else row["read_from"],
    )
