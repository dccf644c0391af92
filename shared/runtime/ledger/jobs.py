"""Job records: create, move through states, query; counting a batch result is in `batches.py`,
how a job row is read in `records.py`.

Every state change is one conditional UPDATE, so when two writers race (ingest finishing the
count while the notifier records the last batch) exactly one of them sees the transition and
announces it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from shared.contract.errors import Conflict, NotFound
from shared.contract.messages import BatchResult, ItemFailure, JobInfo
from shared.contract.states import ACTIVE_STATUSES, JobStatus
from shared.runtime.ledger.batches import BatchCounter, BatchOutcome
from shared.runtime.ledger.migrate import migrate
from shared.runtime.ledger.records import COMPLETE_IF_DONE, JOB_COLUMNS, job_info
from shared.runtime.logging import get_logger
from shared.runtime.retry import retrying

log = get_logger(__name__)


_ACTIVE = sorted(ACTIVE_STATUSES)


@dataclass(frozen=True, slots=True)
class RetryItem:
    """A failed item to render again: its index, text and output name."""

    index: int
    text: str
    name: str
    style: dict[str, str] | None = None  # the row's style overrides
    row: int = 0  # the source's own row number


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset of a released connection: nothing to do. The ledger leaves no session
    state behind (no SET, LISTEN, cursors or session-level advisory locks; migrations take a
    transaction-level lock), and asyncpg rolls back an open transaction before calling this, so
    the default RESET ALL round trip on every release is saved."""


class Ledger:
    """The job ledger over an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.batches = BatchCounter(pool)

    @classmethod
    async def open(cls, dsn: str, *, max_size: int = 10, retry_for: float | None = None) -> Ledger:
        """Connect (retrying while Postgres is not up yet) and apply migrations."""
        pool: asyncpg.Pool = await retrying(
            lambda: asyncpg.create_pool(
                dsn, min_size=1, max_size=max_size, command_timeout=60, reset=_keep_session
            ),
            on=(OSError, asyncpg.PostgresError, asyncpg.InterfaceError),
            what="ledger.connect",
            retry_for=retry_for,
        )
        async with pool.acquire() as conn:
            await migrate(conn)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    # --- lifecycle ---------------------------------------------------------------------------

    async def create_job(
        self, job_id: str, source: str, request: bytes, output: str | None
    ) -> tuple[JobInfo, bool]:
        """Insert a job as `accepted`; (job, False) if `job_id` existed (an idempotent re-submit)."""
        row = await self.pool.fetchrow(
            f"""INSERT INTO imagegen_jobs (job_id, source, status, request, output)
                VALUES ($1, $2, 'accepted', $3::jsonb, $4)
                ON CONFLICT (job_id) DO NOTHING
                RETURNING {JOB_COLUMNS}""",
            job_id,
            source,
            request.decode("utf-8"),
            output,
        )
        if row is not None:
            return job_info(row), True
        return await self.get_job(job_id), False

    async def start_ingest(
        self, job_id: str, attempt: int, *, already: tuple[int, int] | None = None
    ) -> JobInfo | None:
        """accepted -> ingesting. None if the job is not in a state to start (e.g. cancelled).

        A resumed attempt passes `already`: the (done, incomplete) items earlier attempts
        rendered, which it will not render again; they are its counts before its first result.
        """
        done, incomplete = already if already is not None else (None, None)
        row = await self.pool.fetchrow(
            f"""UPDATE imagegen_jobs SET status = 'ingesting', started_at = coalesce(started_at, now()),
                       done_items = CASE WHEN status = 'accepted' THEN coalesce($3, done_items)
                                         ELSE done_items END,
                       incomplete_items = CASE WHEN status = 'accepted' THEN coalesce($4, incomplete_items)
                                               ELSE incomplete_items END,
                       updated_at = now()
                 WHERE job_id = $1 AND attempt = $2 AND status IN ('accepted', 'ingesting')
                RETURNING {JOB_COLUMNS}""",
            job_id,
            attempt,
            done,
            incomplete,
        )
        return None if row is None else job_info(row)

    async def finish_ingest(
        self, job_id: str, attempt: int, total_items: int, total_batches: int
    ) -> tuple[JobInfo | None, bool]:
        """ingesting -> rendering with the totals known; (job, completed_now).

        Results may all be in before the totals are, so this checks for completion too.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""UPDATE imagegen_jobs
                       SET status = CASE WHEN status = 'cancelled' THEN status ELSE 'rendering' END,
                           total_items = $3, total_batches = $4, updated_at = now()
                     WHERE job_id = $1 AND attempt = $2
                       AND status IN ('ingesting', 'rendering', 'cancelled')
                    RETURNING {JOB_COLUMNS}""",
                job_id,
                attempt,
                total_items,
                total_batches,
            )
            if row is None:
                return None, False
            done = await conn.fetchrow(COMPLETE_IF_DONE, job_id, attempt)
            return job_info(done or row), done is not None

    async def fail_job(
        self, job_id: str, attempt: int, error: str, *, total_items: int | None = None
    ) -> JobInfo | None:
        """Any active state -> failed, with the reason (and how many items were published
        before the failure, which still finish and are counted). None if already finished."""
        row = await self.pool.fetchrow(
            f"""UPDATE imagegen_jobs SET status = 'failed', error = $3, finished_at = now(),
                       total_items = coalesce($5, total_items), updated_at = now()
                 WHERE job_id = $1 AND attempt = $2 AND status = ANY($4::text[])
                RETURNING {JOB_COLUMNS}""",
            job_id,
            attempt,
            error,
            _ACTIVE,
            total_items,
        )
        return None if row is None else job_info(row)

    async def fail_stalled(self, seconds: float) -> list[JobInfo]:
        """Fail every active job whose row has not changed for `seconds` (no state change, no
        batch counted), naming the state it stalled in. An `accepted` job waiting while jobs of
        its source are being ingested (and moving) is queued, not stalled. One statement: with
        several watchdogs each job is failed, and returned, once."""
        rows = await self.pool.fetch(
            f"""UPDATE imagegen_jobs AS job
                   SET status = 'failed', finished_at = now(), updated_at = now(),
                       error = format('no progress for %s s while %s (IMAGEGEN_JOB_STALL_SECONDS)',
                                      $2::text, job.status)
                 WHERE job.status = ANY($1::text[])
                   AND job.updated_at < now() - make_interval(secs => $3)
                   AND NOT (job.status = 'accepted' AND EXISTS (
                       SELECT 1 FROM imagegen_jobs busy
                        WHERE busy.source = job.source AND busy.status = 'ingesting'
                          AND busy.updated_at >= now() - make_interval(secs => $3)))
                RETURNING {JOB_COLUMNS}""",
            _ACTIVE,
            f"{seconds:g}",
            seconds,
        )
        return [job_info(row) for row in rows]

    async def cancel_job(self, job_id: str) -> tuple[JobInfo, bool]:
        """Active -> cancelled; (job, changed). Cancelling a cancelled job is a no-op; a finished
        one is a Conflict."""
        row = await self.pool.fetchrow(
            f"""UPDATE imagegen_jobs SET status = 'cancelled', cancelled_at = now(),
                       finished_at = now(), updated_at = now()
                 WHERE job_id = $1 AND status = ANY($2::text[])
                RETURNING {JOB_COLUMNS}""",
            job_id,
            _ACTIVE,
        )
        if row is not None:
            return job_info(row), True
        job = await self.get_job(job_id)
        if job.status == JobStatus.CANCELLED:
            return job, False
        raise Conflict(f"job {job_id} is already {job.status}", field="job_id")

    async def resume_job(self, job_id: str) -> JobInfo:
        """Start a new attempt of a cancelled or failed job that renders what is not done: it
        goes back to `accepted`, and ingest reads the source again, skipping what earlier
        attempts rendered (`start_ingest(already=...)` sets those counts)."""
        row = await self.pool.fetchrow(
            f"""UPDATE imagegen_jobs
                   SET attempt = attempt + 1, status = 'accepted', total_items = NULL,
                       total_batches = NULL, failed_items = 0, error = NULL, finished_at = NULL,
                       cancelled_at = NULL, updated_at = now()
                 WHERE job_id = $1 AND status = ANY($2::text[])
                RETURNING {JOB_COLUMNS}""",
            job_id,
            [JobStatus.CANCELLED, JobStatus.FAILED],
        )
        if row is not None:
            return job_info(row)
        job = await self.get_job(job_id)  # NotFound for an unknown job
        raise Conflict(
            f"only a cancelled or failed job can be resumed; {job_id} is {job.status}", field="job_id"
        )

    async def retry_job(self, job_id: str) -> tuple[JobInfo, list[RetryItem]]:
        """Start a new attempt of a finished job that re-renders only its failed items."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {JOB_COLUMNS} FROM imagegen_jobs WHERE job_id = $1 FOR UPDATE", job_id
            )
            if row is None:
                raise NotFound(f"no job {job_id!r}", field="job_id")
            if row["status"] != JobStatus.COMPLETED_WITH_ERRORS:
                raise Conflict(
                    f"only a job that completed with failed items can be retried; {job_id} is "
                    f"{row['status']}",
                    field="job_id",
                )
            failures = await conn.fetch(
                """SELECT item_index, coalesce(text, '') AS text, row_number,
                          coalesce(name, item_index::text) AS name, style::text AS style
                     FROM imagegen_item_failures
                    WHERE job_id = $1 AND attempt = $2 AND kind = 'failed' ORDER BY item_index""",
                job_id,
                row["attempt"],
            )
            if not failures:
                raise Conflict(f"job {job_id} has no failed items to retry", field="job_id")
            updated = await conn.fetchrow(
                f"""UPDATE imagegen_jobs
                       SET attempt = attempt + 1, status = 'rendering', failed_items = 0,
                           total_items = done_items + $2, total_batches = NULL, error = NULL,
                           finished_at = NULL, updated_at = now()
                     WHERE job_id = $1
                    RETURNING {JOB_COLUMNS}""",
                job_id,
                len(failures),
            )
            assert updated is not None  # the row is locked FOR UPDATE above
            items = [
                RetryItem(
                    r["item_index"],
                    r["text"],
                    r["name"],
                    json.loads(r["style"]) if r["style"] else None,
                    r["row_number"],
                )
                for r in failures
            ]
            return job_info(updated), items

    async def set_batches(self, job_id: str, attempt: int, total_batches: int) -> None:
        await self.pool.execute(
            "UPDATE imagegen_jobs SET total_batches = $3 WHERE job_id = $1 AND attempt = $2",
            job_id,
            attempt,
            total_batches,
        )

    async def job_request(self, job_id: str) -> bytes:
        """The submit request a job was created from, as JSON."""
        raw = await self.pool.fetchval("SELECT request::text FROM imagegen_jobs WHERE job_id = $1", job_id)
        if raw is None:
            raise NotFound(f"no job {job_id!r}", field="job_id")
        return str(raw).encode("utf-8")

    async def record_batch(self, result: BatchResult) -> BatchOutcome:
        """Count one batch result exactly once and complete the job if it was the last
        (`shared.runtime.ledger.batches`)."""
        return await self.batches.record(result)

    # --- queries -----------------------------------------------------------------------------

    async def get_job(self, job_id: str, *, failures_limit: int = 0) -> JobInfo:
        row = await self.pool.fetchrow(f"SELECT {JOB_COLUMNS} FROM imagegen_jobs WHERE job_id = $1", job_id)
        if row is None:
            raise NotFound(f"no job {job_id!r}", field="job_id")
        failures: list[ItemFailure] = []
        if failures_limit:
            failures = [
                ItemFailure(index=r["item_index"], reason=r["reason"], row=r["row_number"], kind=r["kind"])
                for r in await self.pool.fetch(
                    """SELECT item_index, reason, row_number, kind FROM imagegen_item_failures
                        WHERE job_id = $1 AND attempt = $2 ORDER BY item_index LIMIT $3""",
                    job_id,
                    row["attempt"],
                    failures_limit,
                )
            ]
        return job_info(row, failures)

    async def list_jobs(
        self,
        *,
        status: str | None = None,
        limit: int = 50,
        before: datetime | None = None,
        since: datetime | None = None,
    ) -> list[JobInfo]:
        """Newest first; page with `before` = the last `created_at` of the previous page."""
        rows = await self.pool.fetch(
            f"""SELECT {JOB_COLUMNS} FROM imagegen_jobs
                 WHERE ($1::text IS NULL OR status = $1)
                   AND ($2::timestamptz IS NULL OR created_at < $2)
                   AND ($4::timestamptz IS NULL OR created_at >= $4)
                 ORDER BY created_at DESC LIMIT $3""",
            status,
            before,
            limit,
            since,
        )
        return [job_info(row) for row in rows]
