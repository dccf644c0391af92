"""`POST /generate/<source>` for every registered source: a file source takes a multipart upload
(streamed to the `imagegen-inputs` bucket, spooled to disk, never whole in memory), any other
source its request as JSON. Routes are made from the registry, so a new source gets one."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from services.gateway.deps import AUTH, Nats
from services.gateway.forms import form_schema, request_from_form
from services.gateway.openapi import ACCEPTED_SCHEMA, errors, json_body, json_reply
from shared.contract import subjects
from shared.contract.codec import decode_json
from shared.contract.errors import BadRequest
from shared.contract.messages import Accepted
from shared.contract.submit import upload_name
from shared.sources import SOURCES, SourceSpec
from shared.storage.uploads import put_upload

router = APIRouter(tags=["jobs"], dependencies=AUTH)

_UPLOAD_NOTE = (
    f"The upload is streamed to the `{subjects.BUCKET_INPUTS}` bucket, then submitted with `object` set. "
    "Form fields are the request's fields; `style` may be JSON and any style field may also be given "
    "on its own."
)


def job_links(job_id: str) -> dict[str, str]:
    return {
        "self": f"/jobs/{job_id}",
        "events": f"/jobs/{job_id}/events",
        "files": f"/jobs/{job_id}/files",
        "manifest": f"/jobs/{job_id}/manifest",
        "zip": f"/jobs/{job_id}/zip",
    }


def accepted_body(accepted: Accepted) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(accepted)
    body.setdefault("duplicate", accepted.duplicate)
    body["links"] = job_links(accepted.job_id)
    return body


def upload_paths() -> frozenset[str]:
    return frozenset(f"/generate/{spec.name}" for spec in SOURCES.values() if spec.takes_files)


def _add_upload_route(spec: SourceSpec[Any]) -> None:
    async def generate(client: Nats, request: Request) -> JSONResponse:
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest("attach the file as the `file` field", field="file")
        name = upload_name(upload.filename, "upload" + spec.uploads[0])
        submit = request_from_form(spec, form, upload_name=name)  # field-named 400s before the upload
        # A refused submit leaves the upload to expire with the bucket's TTL: the gateway, like
        # every client, may write uploads but not read or delete them (docs/security.md).
        await put_upload(client.js, name, upload.file)  # type: ignore[arg-type]  # it reads like a file
        accepted = await client.submit(submit)
        return JSONResponse(accepted_body(accepted), status_code=202)

    router.add_api_route(
        f"/generate/{spec.name}",
        generate,
        methods=["POST"],
        status_code=202,
        summary=f"Upload a file: {spec.summary}",
        description=f"{spec.request.__doc__}\n\n{_UPLOAD_NOTE}",
        openapi_extra=form_schema(spec),
        responses={202: json_reply(None, "Accepted", ACCEPTED_SCHEMA), **errors(400, 404, 409, 413)},
    )


def _add_json_route(spec: SourceSpec[Any]) -> None:
    async def generate(client: Nats, request: Request) -> JSONResponse:
        submit = decode_json(await request.body(), spec.request)
        return JSONResponse(accepted_body(await client.submit(submit)), status_code=202)

    router.add_api_route(
        f"/generate/{spec.name}",
        generate,
        methods=["POST"],
        status_code=202,
        summary=spec.summary[:1].upper() + spec.summary[1:],
        description=spec.request.__doc__,
        openapi_extra=json_body(spec.request.__name__),
        responses={202: json_reply(None, "Accepted", ACCEPTED_SCHEMA), **errors(400, 404, 409, 413)},
    )


for _spec in SOURCES.values():
    (_add_upload_route if _spec.takes_files else _add_json_route)(_spec)
