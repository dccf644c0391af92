"""What a batch result may claim about its job, checked before the ledger counts it.

Only renderers (and result-notifier, for tasks no renderer survived) may publish results, but a
renderer can be broken or taken over. A result is counted only if it fits the job as the ledger
knows it: the job's current attempt, a batch number the job issued, item indices inside the job,
counts within its total, and no more items than a task ever carries. Until ingest has recorded the
totals (while rows are still streaming) only the attempt and the shape can be checked; a result of
a known batch that lies about its items cannot be told from the truth here.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contract.messages import BatchResult
from shared.contract.submit import MAX_BATCH_SIZE


@dataclass(frozen=True, slots=True)
class JobBounds:
    """What the ledger knows of a job when one of its results arrives."""

    attempt: int
    status: str
    total_items: int | None  # None while ingest is still streaming rows
    total_batches: int | None
    counted: int  # items counted so far in this attempt (done + failed)


def refusal(job: JobBounds, result: BatchResult) -> str | None:
    """Why `result` cannot be a result of `job`, or None when it may be counted."""
    if job.status == "cancelled":
        # Counted or not, its image exists; a resume finds it in the results stream. The
        # cancelled job's counts stay what they were when it was cancelled.
        return "the job was cancelled"
    if result.attempt != job.attempt:
        return f"attempt {result.attempt} is not the job's current attempt {job.attempt}"
    if result.batch < 0 or (job.total_batches is not None and result.batch >= job.total_batches):
        issued = "?" if job.total_batches is None else job.total_batches
        return f"batch {result.batch} was never issued (the attempt has {issued} batches)"
    if not 1 <= len(result.items) <= MAX_BATCH_SIZE:
        return f"{len(result.items)} items: a task carries 1 to {MAX_BATCH_SIZE}"
    indices = [item.index for item in result.items]
    if min(indices) < 0 or (job.total_items is not None and max(indices) >= job.total_items):
        return f"item indices {min(indices)}..{max(indices)} are outside the job's {job.total_items} items"
    if len(set(indices)) != len(indices):
        return "the same item appears twice in one result"
    if job.total_items is not None and job.counted + len(indices) > job.total_items:
        return (
            f"{len(indices)} more items would make {job.counted + len(indices)} counted, "
            f"beyond the job's {job.total_items}"
        )
    return None
