"""Every message on the wire, as msgspec Structs: the single source of truth of the format.

User-facing messages (submit requests, replies, results, events) are JSON so any NATS client in
any language can speak them; the internal render task is MessagePack (`shared.contract.codec`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct, field

from shared.contract.states import EventKind, JobStatus
from shared.contract.style import Style
from shared.contract.submit import JobId


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Wire(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every user-facing message: keyword-only, strict about unknown fields."""


# --- submit replies -------------------------------------------------------------------------


class Accepted(_Wire):
    """Reply to a submit: the job exists and its work is durably queued.

    `detected` is what the source's check found and the job will use, e.g. for a CSV its
    `encoding`, `encoding_confidence` (0-1), `encoding_evidence` (bom, utf-8, detected, given)
    and `delimiter`.
    """

    job_id: str
    status: JobStatus
    results_subject: str
    events_subject: str
    duplicate: bool = False
    detected: dict[str, str] = field(default_factory=dict)


class ErrorReply(_Wire):
    """Body of a NATS service error reply (the code and text are in the headers too)."""

    code: int
    error: str
    field: str | None = None


# --- internal hand-offs ---------------------------------------------------------------------


class IngestRequest(_Wire):
    """`imagegen.requests.<source>`: an accepted job, durably handed to an ingest worker.

    Only the job's identity travels: ingest runs the request stored in the ledger when the job
    was accepted, never one a message carries. `resume` (a cancelled or failed job started
    again) has ingest skip the items earlier attempts rendered.
    """

    job_id: JobId
    attempt: Annotated[int, Meta(ge=1)]
    source: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,30}$")]
    resume: bool = False


class RenderItem(Struct, array_like=True):
    """One row to render: its 0-based position among the job's items, its text, its output name
    (without extension) and `row`, the source's own row number (a sheet row, a JSON Lines line).

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
    row: int = 0


class MaxDeliveries(Struct, kw_only=True):
    """The server's `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`: message
    `stream_seq` was delivered `deliveries` times, never acked, and is delivered no more. Only
    the fields read here (the server's JSON has more)."""

    stream: str
    consumer: str
    stream_seq: Annotated[int, Meta(ge=1)]
    deliveries: int = 0


class RenderTask(Struct, kw_only=True, forbid_unknown_fields=True):
    """`imagegen.tasks.<job_id>` (MessagePack): a batch of items sharing one style."""

    job_id: JobId
    attempt: Annotated[int, Meta(ge=1)]
    batch: Annotated[int, Meta(ge=0)]
    items: list[RenderItem]
    style: Style


# --- results and events -------------------------------------------------------------------


class ItemResult(_Wire):
    """The outcome of one item: its image's file name in the job's output, or why it failed.

    `row` is the source's own row number (as in the manifest); `text` is what was rendered. An
    item that rendered with `missing_glyphs` (characters no font covers, left out of the image)
    is *incomplete*: `ok`, but never to be taken for a complete image (see `item_status`).
    """

    index: int
    ok: bool
    row: int = 0
    file: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    error: str | None = None
    missing_glyphs: list[str] = field(default_factory=list)
    text: str | None = None
    name: str | None = None  # set on failed items, with `style`: what a retry renders again
    style: dict[str, str] | None = None


class BatchResult(_Wire):
    """`imagegen.results.<job_id>`: the per-item outcomes of one render task."""

    job_id: str
    attempt: int
    batch: int
    items: list[ItemResult]
    renderer: str = ""
    delivery: int = 1  # which delivery of the task this is: >1 means it was redelivered
    at: datetime = field(default_factory=utcnow)
    # Published by result-notifier for a batch whose result the ledger could not hold: its items,
    # failed, are what the ledger counted, so they replace that result's rows in the manifest.
    replaces: bool = False


ItemKind = Literal["failed", "incomplete"]
ItemStatus = Literal["ok", "incomplete", "failed"]


# Failure reasons are clipped to this many characters: a reason quoting a cell stays bounded,
# and so does a result (shared/runtime/bus/limits.py counts on it).
MAX_REASON_CHARS = 300
# Control characters in a reason or message: line breaks and tabs read as spaces, the rest as
# U+FFFD. JSON would escape each in six bytes; a replaced reason takes at most 4 bytes a character.
_CONTROLS = {c: " " if c in (9, 10, 13) else "\ufffd" for c in (*range(0x20), *range(0x7F, 0xA0))}


def clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """`text` for a reason or a message: control characters replaced, cut to `limit`
    characters and marked with an ellipsis when it was cut."""
    text = text.translate(_CONTROLS) if not text.isprintable() else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failed_item(item: RenderItem, error: str) -> ItemResult:
    """A failed item's result: it carries its text, name and style so a retry can render it; its
    reason is clipped, so a result's size stays bounded whatever the reason quotes."""
    return ItemResult(
        index=item.index,
        ok=False,
        row=item.row,
        error=clip(error),
        text=item.text,
        name=item.name,
        style=item.style,
    )


def item_status(item: ItemResult) -> ItemStatus:
    """One item's outcome in one word, the rule every report uses."""
    if not item.ok:
        return "failed"
    return "incomplete" if item.missing_glyphs else "ok"


def missing_reason(item: ItemResult) -> str:
    """Why an incomplete item is incomplete, in the words of every report."""
    return "no font covers: " + " ".join(item.missing_glyphs)


class JobEvent(_Wire):
    """`imagegen.events.<job_id>.<kind>`: a step in a job's life, with its counts so far."""

    job_id: str
    kind: EventKind
    status: JobStatus
    attempt: int = 1
    total: int | None = None
    done: int = 0
    failed: int = 0
    incomplete: int = 0  # of `done`: rendered with characters no font covers
    output: str | None = None
    message: str | None = None
    at: datetime = field(default_factory=utcnow)
    manifest: str | None = None  # on `completed`: the CSV manifest beside the images


class ItemFailure(_Wire):
    """One failed or incomplete item of a job: its index, its source row number and the reason
    (for an incomplete item, the characters that are missing from its image)."""

    index: int
    reason: str
    row: int = 0
    kind: ItemKind = "failed"


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
    incomplete: int = 0  # of `done`: rendered with characters no font covers
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failures: list[ItemFailure] = field(default_factory=list)
    # What it read: an upload's file name, a server file's path, or a query's data source.
    label: str | None = None


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
