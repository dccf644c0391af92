"""The states of a job and the kinds of its lifecycle events: the one list of each.

`accepted → ingesting → rendering → completed | completed_with_errors`, `failed` from any active
state, `cancelled` by a user. Services, the ledger, clients and the console all read these.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class JobStatus(StrEnum):
    ACCEPTED = "accepted"
    INGESTING = "ingesting"
    RENDERING = "rendering"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES: Final = frozenset({JobStatus.ACCEPTED, JobStatus.INGESTING, JobStatus.RENDERING})
TERMINAL_STATUSES: Final = frozenset(JobStatus) - ACTIVE_STATUSES
COMPLETED_STATUSES: Final = frozenset({JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS})


class EventKind(StrEnum):
    """`imagegen.events.<job_id>.<kind>`: the steps of a job's life a client can follow."""

    ACCEPTED = "accepted"
    STARTED = "started"
    PROGRESS = "progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# An event of one of these kinds ends its attempt: nothing follows it until a retry.
TERMINAL_EVENTS: Final = frozenset({EventKind.COMPLETED, EventKind.FAILED, EventKind.CANCELLED})
