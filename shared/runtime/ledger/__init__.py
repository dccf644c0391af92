"""The job ledger in Postgres: schema migrations and the job, batch and failure records."""

from shared.runtime.ledger.batches import BatchOutcome
from shared.runtime.ledger.jobs import Ledger, RetryItem
from shared.runtime.ledger.migrate import migrate

__all__ = ["BatchOutcome", "Ledger", "RetryItem", "migrate"]
