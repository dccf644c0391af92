"""The job ledger in Postgres: schema migrations and the job, batch and failure records."""

from shared.ledger.jobs import TERMINAL_STATUSES, BatchOutcome, JobStatus, Ledger, RetryItem
from shared.ledger.migrate import migrate

__all__ = ["TERMINAL_STATUSES", "BatchOutcome", "JobStatus", "Ledger", "RetryItem", "migrate"]
