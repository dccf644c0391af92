"""Jobs: list, show, cancel, retry, and follow one as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse

from services.gateway.deps import AUTH, Nats, json_bytes
from services.gateway.openapi import errors, json_reply
from services.gateway.public import public_job
from services.gateway.settings import GatewaySettings
from services.gateway.sse import event_stream, last_event_id
from shared.contract.codec import encode_json
from shared.contract.errors import TooMany
from shared.contract.messages import JobsListReply
from shared.contract.states import TERMINAL_STATUSES, JobStatus
from shared.contract.subjects import JOB_ID_PATTERN

JobIdPath = Annotated[str, PathParam(pattern=JOB_ID_PATTERN, description="1-64 letters, digits, '-', '_'")]

router = APIRouter(tags=["jobs"], dependencies=AUTH)

# Over HTTP a job's `output` and `manifest` are the gateway's URLs of its files (public.py).
_OUTPUT_NOTE = "`output` is the URL of the job's file list (`/jobs/{job_id}/files`), not a server path."


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


@router.get(
    "/jobs",
    summary="Jobs, newest first; page with `before` = the last `created_at` seen",
    description=_OUTPUT_NOTE,
    responses={200: json_reply("JobsListReply"), **errors(400)},
)
async def list_jobs(
    client: Nats,
    request: Request,
    status: Annotated[JobStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: Annotated[datetime | None, Query()] = None,
    since: Annotated[datetime | None, Query()] = None,
) -> Response:
    jobs = await client.list_jobs(status=status, limit=limit, before=before, since=since)
    root = _root(request)
    return json_bytes(encode_json(JobsListReply(jobs=[public_job(job, root) for job in jobs])))


@router.get(
    "/jobs/{job_id}",
    summary="One job's ledger row, with its first item failures",
    description=_OUTPUT_NOTE,
    responses={200: json_reply("JobInfo"), **errors(400, 404)},
)
async def get_job(
    client: Nats,
    request: Request,
    job_id: JobIdPath,
    failures_limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
) -> Response:
    job = await client.get_job(job_id, failures_limit=failures_limit)
    return json_bytes(encode_json(public_job(job, _root(request))))


@router.post(
    "/jobs/{job_id}/cancel",
    summary="Stop a job now: nothing more is rendered and its counts stay as they are",
    responses={200: json_reply("JobInfo"), **errors(400, 404, 409)},
)
async def cancel_job(client: Nats, request: Request, job_id: JobIdPath) -> Response:
    return json_bytes(encode_json(public_job(await client.cancel_job(job_id), _root(request))))


@router.post(
    "/jobs/{job_id}/retry",
    summary="The job's next attempt: re-render failed items, or resume a cancelled or failed job",
    responses={200: json_reply("JobInfo"), **errors(400, 404, 409)},
)
async def retry_job(client: Nats, request: Request, job_id: JobIdPath) -> Response:
    return json_bytes(encode_json(public_job(await client.retry_job(job_id), _root(request))))


@router.get(
    "/jobs/{job_id}/events",
    summary="The job's events as Server-Sent Events: replayed from the first, then live",
    description="Each event is `id: <n>`, `event: <kind>`, `data: <JobEvent JSON>`; its `output` "
    "and `manifest` are the URLs of the job's file list and manifest. "
    "The stream ends after the terminal event of the job's current attempt. "
    "A reconnect with `Last-Event-ID` skips what was seen; one after the end gets 204, "
    "which stops an EventSource.",
    responses={
        200: {"description": "text/event-stream of JobEvent", "content": {"text/event-stream": {}}},
        204: {"description": "Nothing more: the job had ended before this reconnect"},
        **errors(400, 404, 429),
    },
)
async def job_events(client: Nats, request: Request, job_id: JobIdPath) -> Response:
    gateway: GatewaySettings = request.app.state.gateway
    job = await client.get_job(job_id, failures_limit=0)
    last_seen = last_event_id(request)
    if last_seen and job.status in TERMINAL_STATUSES:
        return Response(status_code=204)
    # Each open stream holds a NATS consumer: a client gets a bounded number at once.
    open_streams: dict[str, int] = request.app.state.event_streams
    who = request.client.host if request.client else "unknown"
    if open_streams.get(who, 0) >= gateway.max_event_streams_per_client:
        raise TooMany(f"{gateway.max_event_streams_per_client} event streams are open from here already")
    open_streams[who] = open_streams.get(who, 0) + 1

    async def counted() -> AsyncIterator[bytes]:
        try:
            async for frame in event_stream(
                client, job, last_seen, gateway.sse_keepalive_seconds, _root(request)
            ):
                yield frame
        finally:
            open_streams[who] -= 1
            if not open_streams[who]:
                del open_streams[who]

    return StreamingResponse(
        counted(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
