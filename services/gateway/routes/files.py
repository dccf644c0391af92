"""A job's files over HTTP: the image list, one image, the manifest, and everything as a zip.

Files are read through the deployment's image store (`shared.storage`), chosen from the
gateway's own settings: a URL never chooses a folder, and every name is checked before it is
read (one safe component, an image extension, a regular file).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse

from services.gateway.deps import AUTH, Nats, Store
from services.gateway.openapi import errors, json_reply
from services.gateway.routes.jobs import JobIdPath
from services.gateway.settings import GatewaySettings
from services.gateway.zipstream import zip_stream
from shared.contract.errors import Conflict
from shared.contract.states import TERMINAL_STATUSES
from shared.storage import MANIFEST_NAME, ImageStore, check_image_name, media_type

router = APIRouter(tags=["images"], dependencies=AUTH)


async def _stream(
    store: ImageStore, job_id: str, name: str, headers: dict[str, str] | None = None
) -> StreamingResponse:
    """A stored file as the response body; a missing one is a 404 before the response starts."""
    pieces = store.read(job_id, name)
    first = await anext(pieces, b"")

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for piece in pieces:
            yield piece

    return StreamingResponse(body(), media_type=media_type(name), headers=headers)


_FILES_SCHEMA = {
    "type": "object",
    "properties": {
        "job_id": {"type": "string"},
        "total": {"type": "integer"},
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "bytes": {"type": "integer"},
                    "url": {"type": "string"},
                },
            },
        },
    },
}


@router.get(
    "/jobs/{job_id}/files",
    summary="The job's images so far (name, size, URL), in natural name order",
    responses={200: json_reply(None, schema=_FILES_SCHEMA), **errors(400, 404)},
)
async def list_files(
    client: Nats,
    store: Store,
    request: Request,
    job_id: JobIdPath,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> JSONResponse:
    gateway: GatewaySettings = request.app.state.gateway
    await client.get_job(job_id, failures_limit=0)  # 404 for an unknown job
    files = await store.list(job_id)
    page = files[offset : offset + min(limit or gateway.max_list_files, gateway.max_list_files)]
    return JSONResponse(
        {
            "job_id": job_id,
            "total": len(files),
            "files": [
                {"name": f.name, "bytes": f.bytes, "url": f"/jobs/{job_id}/files/{quote(f.name, safe='')}"}
                for f in page
            ],
        }
    )


@router.get(
    "/jobs/{job_id}/files/{name}",
    summary="One image of the job",
    responses={
        200: {"description": "The image", "content": {"image/png": {}, "image/webp": {}}},
        **errors(400, 404),
    },
)
async def get_file(
    client: Nats, store: Store, job_id: JobIdPath, name: Annotated[str, PathParam(max_length=255)]
) -> StreamingResponse:
    check_image_name(name)
    await client.get_job(job_id, failures_limit=0)
    return await _stream(store, job_id, name)


@router.get(
    "/jobs/{job_id}/manifest",
    summary="The job's manifest.csv: one row per item (row, text, file, size, status, error)",
    responses={
        200: {"description": "CSV, UTF-8 with a BOM", "content": {"text/csv": {}}},
        **errors(400, 404),
    },
)
async def get_manifest(client: Nats, store: Store, job_id: JobIdPath) -> StreamingResponse:
    await client.get_job(job_id, failures_limit=0)
    disposition = {"Content-Disposition": f'attachment; filename="{job_id}-{MANIFEST_NAME}"'}
    return await _stream(store, job_id, MANIFEST_NAME, disposition)


@router.get(
    "/jobs/{job_id}/zip",
    summary="All images of a finished job and its manifest as one zip, streamed",
    responses={
        200: {"description": "application/zip", "content": {"application/zip": {}}},
        **errors(400, 404, 409),
    },
)
async def get_zip(client: Nats, store: Store, job_id: JobIdPath) -> StreamingResponse:
    job = await client.get_job(job_id, failures_limit=0)
    if job.status not in TERMINAL_STATUSES:
        raise Conflict(
            f"job {job_id} is still {job.status}: the zip is ready when it finishes", field="job_id"
        )
    files = await store.list(job_id)
    return StreamingResponse(
        zip_stream(store, job_id, files),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{job_id}.zip"'},
    )
