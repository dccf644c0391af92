"""Every message on the wire, as msgspec Structs: the single source of truth of the format.

User-facing messages (submit requests, replies, results, events) are JSON so any NATS client in
any language can speak them; the internal render task is MessagePack (`shared.contract.codec`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from msgspec import Meta, Struct, field

from shared.contract.errors import BadRequest
from shared.contract.states import EventKind, JobStatus
from shared.contract.style import Style
from shared.contract.subjects import JOB_ID_PATTERN

JobId = Annotated[str, Meta(pattern=JOB_ID_PATTERN, description="job id")]
ColumnRef = str | Annotated[int, Meta(ge=0)]
StyleField = Annotated[str, Meta(pattern=r"^[a-z_]{1,40}$")]
NameTemplate = Annotated[str, Meta(min_length=1, max_length=200)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Wire(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every user-facing message: keyword-only, strict about unknown fields."""


# --- submit ------------------------------------------------------------------------------------


class SubmitCsv(_Wire):
    """`imagegen.submit.csv`: render one image per row of a CSV file.

    Exactly one of `csv` (the text inline), `object` (a name in the `imagegen-inputs` bucket)
    or `path` (relative to the server's allowed folder) names the file.

    Per-row overrides: `filename_column` names each image after that column's value (instead
    of `name_template`); `style_columns` maps style fields to columns whose non-empty cells
    override the job's style for that row (`color_column` / `font_column` are shorthands).
    A bad override value fails that row's item, not the job.
    """

    column: ColumnRef
    csv: str | None = None
    object: str | None = None
    path: str | None = None
    has_header: bool = True
    delimiter: Annotated[str, Meta(min_length=1, max_length=1)] | None = None
    encoding: str | None = None
    style: Style = field(default_factory=Style)
    name_template: NameTemplate = "{index}"
    job_id: JobId | None = None
    batch_size: Annotated[int, Meta(ge=1, le=1000)] | None = None
    filename_column: ColumnRef | None = None
    style_columns: dict[StyleField, ColumnRef] = field(default_factory=dict)
    color_column: ColumnRef | None = None
    font_column: ColumnRef | None = None

    def override_columns(self) -> dict[str, str | int]:
        """Every per-row style override, the shorthands folded in: {style field: column}."""
        columns: dict[str, str | int] = dict(self.style_columns)
        for name, column in (("color", self.color_column), ("font", self.font_column)):
            if column is not None:
                if name in columns:
                    raise BadRequest(
                        f"{name} is mapped twice (style_columns.{name} and {name}_column)",
                        field=f"{name}_column",
                    )
                columns[name] = column
        return columns


class SubmitDb(_Wire):
    """`imagegen.submit.db`: render one image per row of a read-only query on a named source."""

    source: Annotated[str, Meta(min_length=1, max_length=100)]
    query: Annotated[str, Meta(min_length=1, max_length=100_000)]
    column: ColumnRef
    params: list[str | int | float | bool | None] = field(default_factory=list)
    style: Style = field(default_factory=Style)
    name_template: NameTemplate = "{index}"
    job_id: JobId | None = None
    batch_size: Annotated[int, Meta(ge=1, le=1000)] | None = None


class Accepted(_Wire):
    """Reply to a submit: the job exists and its work is durably queued."""

    job_id: str
    status: JobStatus
    results_subject: str
    events_subject: str
    duplicate: bool = False


class ErrorReply(_Wire):
    """Body of a NATS service error reply (the code and text are in the headers too)."""

    code: int
    error: str
    field: str | None = None


# --- internal hand-offs ---------------------------------------------------------------------


class IngestRequest(_Wire):
    """`imagegen.requests.{csv,db}`: an accepted submit, durably handed to an ingest worker."""

    job_id: str
    attempt: int
    csv: SubmitCsv | None = None
    db: SubmitDb | None = None


class RenderItem(Struct, array_like=True):
    """One row to render: its 0-based position in the source, its text and output name.

    `error` set means ingest already found the row bad (empty cell, ragged row): the renderer
    reports it as that item's failure, so every item is counted on one path. `style` holds the
    row's raw style overrides ({field: cell text}); the renderer merges and validates them.
    Fields are only ever appended, with defaults, so older encodings still decode.
    """

    index: int
    text: str
    name: str
    error: str | None = None
    style: dict[str, str] | None = None


class RenderTask(Struct, kw_only=True, forbid_unknown_fields=True):
    """`imagegen.tasks.<job_id>` (MessagePack): a batch of items sharing one style."""

    job_id: JobId
    attempt: Annotated[int, Meta(ge=1)]
    batch: Annotated[int, Meta(ge=0)]
    items: list[RenderItem]
    style: Style


# --- results and events -------------------------------------------------------------------


class ItemResult(_Wire):
    """The outcome of one item: where its image is, or why it failed."""

    index: int
    ok: bool
    file: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    error: str | None = None
    missing_glyphs: list[str] = field(default_factory=list)
    text: str | None = None  # set on failed items: what to render again on retry
    name: str | None = None
    style: dict[str, str] | None = None  # a failed item's per-row style overrides, for retry


class BatchResult(_Wire):
    """`imagegen.results.<job_id>`: the per-item outcomes of one render task."""

    job_id: str
    attempt: int
    batch: int
    items: list[ItemResult]
    renderer: str = ""
    delivery: int = 1  # which delivery of the task this is: >1 means it was redelivered
    at: datetime = field(default_factory=utcnow)


class JobEvent(_Wire):
    """`imagegen.events.<job_id>.<kind>`: a step in a job's life, with its counts so far."""

    job_id: str
    kind: EventKind
    status: JobStatus
    attempt: int = 1
    total: int | None = None
    done: int = 0
    failed: int = 0
    output: str | None = None
    message: str | None = None
    at: datetime = field(default_factory=utcnow)
    manifest: str | None = None  # on `completed`: the CSV manifest beside the images


class ItemFailure(_Wire):
    """One failed item of a job and the reason."""

    index: int
    reason: str


class JobInfo(_Wire):
    """Reply of `imagegen.jobs.get`: a job's ledger row."""

    job_id: str
    source: str
    status: JobStatus
    attempt: int
    total: int | None
    done: int
    failed: int
    output: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failures: list[ItemFailure] = field(default_factory=list)


class JobsGet(_Wire):
    job_id: JobId
    failures_limit: Annotated[int, Meta(ge=0, le=10_000)] = 100


class JobsList(_Wire):
    """`imagegen.jobs.list`: newest first; page with `before` = last `created_at` seen."""

    status: JobStatus | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 50
    before: datetime | None = None
    since: datetime | None = None


class JobRef(_Wire):
    """`imagegen.jobs.cancel` / `imagegen.jobs.retry`: the job to act on."""

    job_id: JobId


class JobsListReply(_Wire):
    jobs: list[JobInfo]


class PreviewRequest(_Wire):
    """`imagegen.preview`: render one text synchronously; the reply is the image bytes."""

    text: Annotated[str, Meta(min_length=1, max_length=10_000)]
    style: Style = field(default_factory=Style)


class FontInfo(Struct, kw_only=True, frozen=True):
    """One catalogue entry as `imagegen.fonts` lists it."""

    name: str
    family: str
    style: str
    file: str
    index: int = 0
    scripts: list[str] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)
    # Variable-font axes as {tag: [min, default, max]}; empty for static fonts.
    axes: dict[str, list[float]] = field(default_factory=dict)
    # Colour bitmap fonts load only at their strike size and are scaled to the text size.
    color: bool = False
    fixed_size: int | None = None
    bundled: bool = True


class ValidateReply(_Wire):
    """Reply of `imagegen.validate`: the style as the server understood it, defaults filled."""

    ok: bool
    style: dict[str, Any]
