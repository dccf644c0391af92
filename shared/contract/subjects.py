"""Subject, stream, consumer and bucket names: the public NATS contract, in one place.

Job ids appear in subjects and paths, so they are validated here before any of them is built.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Final

from shared.contract.errors import BadRequest
from shared.contract.states import EventKind

PREFIX: Final = "imagegen"

FONTS: Final = "imagegen.fonts"
VALIDATE: Final = "imagegen.validate"
PREVIEW: Final = "imagegen.preview"
JOBS_GET: Final = "imagegen.jobs.get"
JOBS_LIST: Final = "imagegen.jobs.list"
JOBS_CANCEL: Final = "imagegen.jobs.cancel"
JOBS_RETRY: Final = "imagegen.jobs.retry"

STREAM_REQUESTS: Final = "IMAGEGEN_REQUESTS"
STREAM_TASKS: Final = "IMAGEGEN_TASKS"
STREAM_RESULTS: Final = "IMAGEGEN_RESULTS"
STREAM_EVENTS: Final = "IMAGEGEN_EVENTS"
# Results waiting to be counted: a work queue sourced from IMAGEGEN_RESULTS. result-notifier's
# durable consumer lives here, on a stream no client may create consumers on, because a client
# allowed to create (ephemeral) consumers on a stream can also rewrite any durable there.
STREAM_RESULT_QUEUE: Final = "IMAGEGEN_RESULT_QUEUE"

# The server's MAX_DELIVERIES advisories of the work queues (a message delivered `max_deliver`
# times and never acked), kept in a stream so none is missed while result-notifier is away.
STREAM_ADVISORIES: Final = "IMAGEGEN_ADVISORIES"
MAX_DELIVERIES_ADVISORY: Final = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"

CONSUMER_RENDERER: Final = "renderer"
CONSUMER_NOTIFIER: Final = "result-notifier"
CONSUMER_ADVISORIES: Final = "result-notifier-advisories"

BUCKET_INPUTS: Final = "imagegen-inputs"
BUCKET_IMAGES: Final = "imagegen-images"
BUCKET_CANCELLED: Final = "imagegen-cancelled"  # KV: job id -> reason, read by ingest
BUCKET_ACTIVE: Final = "imagegen-active"  # KV: job id -> current attempt, while it may be rendered

# Request header naming who asks (connection name or user), logged on audit lines.
CLIENT_HEADER: Final = "Imagegen-Client"

# Job ids appear in subjects and file paths: letters, digits, '-' and '_' only.
JOB_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)


def validate_job_id(job_id: str, *, field: str = "job_id") -> str:
    """Return `job_id` if it is safe in a subject and a path, else raise `BadRequest`."""
    if not _JOB_ID.fullmatch(job_id):
        raise BadRequest("must be 1-64 characters of letters, digits, '-' or '_'", field=field)
    return job_id


def new_job_id() -> str:
    """A fresh, time-ordered job id (sorts by creation time, safe in subjects and paths)."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


def submit_subject(source: str) -> str:
    """Where a source's submits are answered (request/reply)."""
    return f"{PREFIX}.submit.{source}"


def requests_subject(source: str) -> str:
    """Where a source's accepted jobs wait for ingest (work queue)."""
    return f"{PREFIX}.requests.{source}"


def max_deliveries_subject(stream: str, consumer: str = "*") -> str:
    """Where the server announces that `stream`'s `consumer` gave up on a message."""
    return f"{MAX_DELIVERIES_ADVISORY}.{stream}.{consumer}"


def tasks_subject(job_id: str) -> str:
    return f"{PREFIX}.tasks.{validate_job_id(job_id)}"


def results_subject(job_id: str) -> str:
    return f"{PREFIX}.results.{validate_job_id(job_id)}"


def events_subject(job_id: str, kind: EventKind) -> str:
    return f"{PREFIX}.events.{validate_job_id(job_id)}.{EventKind(kind)}"


def events_filter(job_id: str) -> str:
    """The subject filter that replays every event of one job."""
    return f"{PREFIX}.events.{validate_job_id(job_id)}.*"


def job_id_from_subject(subject: str) -> str:
    """The job id in `imagegen.<kind>.<job_id>[.<more>]`, validated."""
    parts = subject.split(".")
    if len(parts) < 3 or parts[0] != PREFIX:
        raise BadRequest(f"not an imagegen job subject: {subject!r}", field="subject")
    return validate_job_id(parts[2], field="subject")


def kv_stream(bucket: str) -> str:
    """The stream that holds a key-value bucket (JetStream's naming, ADR-8)."""
    return f"KV_{bucket}"


def object_stream(bucket: str) -> str:
    """The stream that holds an Object Store bucket (JetStream's naming, ADR-20)."""
    return f"OBJ_{bucket}"
