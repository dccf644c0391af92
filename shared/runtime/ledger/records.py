"""How a job row is read: the columns every query returns, the row as a `JobInfo`, and the
completion rule both writers (ingest's totals, result-notifier's last batch) apply."""

from __future__ import annotations

import asyncpg

from shared.contract.messages import ItemFailure, JobInfo
from shared.contract.submit import upload_label

# Named as `JobInfo`'s fields, so that a row maps onto it by name (`job_info`); `upload` and
# `read_from` make its label.
JOB_COLUMNS = """job_id, source, status, attempt, total_items AS total, done_items AS done,
                  failed_items AS failed, incomplete_items AS incomplete, output, error,
                  created_at, started_at, finished_at, request->>'object' AS upload,
                  COALESCE(request->>'path', request->>'data_source') AS read_from"""
_FIELDS = frozenset(JobInfo.__struct_fields__)

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
    """The job a row of `JOB_COLUMNS` (and perhaps more columns, left out) describes."""
    fields = {name: value for name, value in row.items() if name in _FIELDS}
    label = upload_label(row["upload"]) if row["upload"] else row["read_from"]
    return JobInfo(**fields, failures=failures or [], label=label)
