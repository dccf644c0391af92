"""The job ledger in Postgres: schema migrations and the job, batch and failure records."""

from shared.ledger.jobs import BatchOutcome, Ledger, RetryItem
from shared.ledger.migrate import migrate

__all__ = ["BatchOutcome", "Ledger", "RetryItem", "migrate"]
