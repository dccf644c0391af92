"""The gateway's FastAPI app: the HTTP API, its error mapping, and the web console.

Every route is a thin translation to one NATS call through `shared.client.Client`; replies that
are already JSON pass through as bytes, so the HTTP body is exactly what the service said. The
request and reply shapes are the msgspec Structs of `shared.messages`, published in the OpenAPI
document as components (one source of truth for NATS and HTTP). Errors are JSON
`{"code", "error", "field"}` with the NATS reply's code as the HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import nats.errors
from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway.images import JobImages, media_type
from services.gateway.settings import GatewaySettings
from shared.bus.connect import connect
from shared.bus.discovery import ping_all
from shared.client import Client
from shared.contract import subjects
from shared.contract.codec import bad_request_from, decode_json, encode_json
from shared.contract.errors import BadRequest, Conflict, ImagegenError
from shared.contract.messages import (
    Accepted,
    ErrorReply,
    FontInfo,
    JobEvent,
    JobInfo,
    JobsListReply,
    PreviewRequest,
    SubmitCsv,
    SubmitDb,
    ValidateReply,
)
from shared.contract.states import TERMINAL_EVENTS, TERMINAL_STATUSES, JobStatus
from shared.contract.style import Style
from shared.contract.subjects import JOB_ID_PATTERN
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
REQUIRED_SERVICES = ("ingest-csv", "ingest-db", "renderer", "result-notifier")
JobIdPath = Annotated[str, PathParam(pattern=JOB_ID_PATTERN, description="1-64 letters, digits, '-', '_'")]
UPLOAD_PATHS = frozenset({"/generate/csv"})
# Browsers only talk to the console's own origin; images may be blob: (previews) or data:.
CONSOLE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


# --- errors -----------------------------------------------------------------------------------


def error_response(code: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "error": message, "field": field}, status_code=code)


def _field_of_loc(loc: tuple[Any, ...] | list[Any]) -> str | None:
    # FastAPI says ("body", "column_index") or ("path", "job_id"): the field is the rest.
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in {"body", "query", "path", "header"} else []
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ImagegenError)
    async def imagegen_error(_: Request, exc: ImagegenError) -> JSONResponse:
        code = exc.code if 400 <= exc.code <= 599 else 500
        return error_response(code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Bad input is 400 on NATS; HTTP says the same rather than FastAPI's 422.
        first = exc.errors()[0] if exc.errors() else {}
        return error_response(
            400, str(first.get("msg", "invalid request")), _field_of_loc(first.get("loc", ()))
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        field = "api_key" if exc.status_code == 401 else None
        response = error_response(exc.status_code, str(exc.detail), field)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(nats.errors.Error)
    async def nats_error(_: Request, exc: nats.errors.Error) -> JSONResponse:
        log.warning("gateway.nats_error", error=repr(exc))
        return error_response(503, f"NATS unavailable: {type(exc).__name__}")

    @app.exception_handler(Exception)
    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        log.exception("gateway.crashed")
        return error_response(500, f"internal error: {type(exc).__name__}")


# --- request size ------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuse request bodies over a limit with 413, before or while they arrive.

    A declared Content-Length over the limit is refused before a byte is read; a chunked body is
    counted as it streams, and the moment it passes the limit the 413 goes out and the app sees a
    disconnect (whatever it answers after that is dropped).
    """

    def __init__(self, app: ASGIApp, *, default: int, uploads: int) -> None:
        self.app = app
        self.default = default
        self.uploads = uploads

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps({"code": 413, "error": f"request body over {limit} bytes", "field": None}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.uploads if scope["path"] in UPLOAD_PATHS else self.default
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return
        received = 0
        rejected = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    rejected = True
                    if not started:
                        await self._reject(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception:
            if not rejected:
                raise


# --- OpenAPI: msgspec Structs as components -------------------------------------------------

COMPONENT_TYPES: tuple[Any, ...] = (
    SubmitDb,
    SubmitCsv,
    Accepted,
    ErrorReply,
    JobInfo,
    JobsListReply,
    JobEvent,
    PreviewRequest,
    Style,
    ValidateReply,
    FontInfo,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(name: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": _ref(name)}}}}


def _json_reply(
    name: str | None, description: str = "OK", schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or _ref(name or "")}},
    }


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _json_reply("ErrorReply", "Bad input: `field` names it"),
    401: _json_reply("ErrorReply", "Missing or wrong API key"),
    404: _json_reply("ErrorReply", "No such job, file or font"),
    409: _json_reply("ErrorReply", "Conflicts with the job's state"),
    413: _json_reply("ErrorReply", "Request body too large"),
    503: _json_reply("ErrorReply", "Services or NATS unavailable"),
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERRORS[code] for code in (401, 503, *codes)}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        _, components = msgspec.json.schema_components(
            COMPONENT_TYPES, ref_template="#/components/schemas/{name}"
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(components)
        # Validation failures answer 400 with ErrorReply (as on NATS), never FastAPI's 422.
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None:
                    responses.setdefault("400", ERRORS[400])
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# --- dependencies (module level: FastAPI resolves their annotations by name) -------------------

key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


async def require_key(
    request: Request,
    header_key: Annotated[str | None, Depends(key_header)],
    bearer_key: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    gateway: GatewaySettings = request.app.state.gateway
    if gateway.api_key is None:
        return
    # EventSource and <img> cannot send headers, so the console passes `api_key` in the query.
    given = (
        header_key or (bearer_key.credentials if bearer_key else None) or request.query_params.get("api_key")
    )
    expected = gateway.api_key.get_secret_value()
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise StarletteHTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})


def nats_client(request: Request) -> Client:
    result: Client = request.app.state.client
    return result


async def read_body(request: Request) -> bytes:
    return await request.body()


Nats = Annotated[Client, Depends(nats_client)]
Body = Annotated[bytes, Depends(read_body)]


# --- the app ------------------------------------------------------------------------------------


def json_bytes(data: bytes, status: int = 200) -> Response:
    return Response(content=data, media_type="application/json", status_code=status)


def image_media_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def job_links(job_id: str) -> dict[str, str]:
    return {
        "self": f"/jobs/{job_id}",
        "events": f"/jobs/{job_id}/events",
        "files": f"/jobs/{job_id}/files",
        "zip": f"/jobs/{job_id}/zip",
    }


def accepted_body(accepted: Accepted) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(accepted)
    body.setdefault("duplicate", accepted.duplicate)
    body["links"] = job_links(accepted.job_id)
    return body


ACCEPTED_SCHEMA: dict[str, Any] = {
    "allOf": [
        _ref("Accepted"),
        {
            "type": "object",
            "properties": {"links": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
    ]
}


def create_app(
    settings: Settings | None = None,
    gateway: GatewaySettings | None = None,
    *,
    client: Client | None = None,
) -> FastAPI:
    """The gateway app. Without `client` it connects to NATS in its lifespan and drains at exit."""
    settings = settings or Settings()
    gateway = gateway or GatewaySettings()
    output_dir = settings.output_dir
    in_bucket = settings.output_store == "object"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if client is not None:
            app.state.client = client
            yield
            return
        nc = await connect(settings, settings.instance or "gateway")
        owned = Client(nc, timeout=gateway.request_timeout_seconds)
        app.state.client = owned
        try:
            yield
        finally:
            await owned.close()

    app = FastAPI(
        title="imagegen gateway",
        version="0.1.0",
        description="HTTP access to imagegen: text from CSV files and SQL queries rendered to transparent "
        "PNG images. Errors are JSON `{code, error, field}` with the same codes as the NATS replies.",
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(BodyLimit, default=gateway.max_body_bytes, uploads=gateway.max_upload_bytes)
    if gateway.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=gateway.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization", "Last-Event-ID"],
        )

    auth = [Depends(require_key)]

    # --- console and health ------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(
            STATIC / "index.html",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": CONSOLE_CSP},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get(
        "/health",
        tags=["operations"],
        summary="Ready when NATS answers and the four services answer $SRV.PING",
        responses={503: ERRORS[503]},
    )
    async def health(client: Nats) -> JSONResponse:
        nats_ok = False
        counts: dict[str, int] = dict.fromkeys(REQUIRED_SERVICES, 0)
        if client.nc.is_connected:
            try:
                await client.nc.flush(timeout=2)
                nats_ok = True
                for reply in await ping_all(client.nc, wait=0.3):
                    name = str(reply.get("name", ""))
                    counts[name] = counts.get(name, 0) + 1
            except Exception as exc:
                log.warning("gateway.health_failed", error=repr(exc))
        missing = [name for name in REQUIRED_SERVICES if not counts.get(name)]
        ok = nats_ok and not missing
        body: dict[str, Any] = {
            "status": "ok" if ok else "unavailable",
            "nats": nats_ok,
            "services": counts,
            "missing": missing,
            "auth": gateway.api_key is not None,
        }
        if not ok:
            body |= {"code": 503, "field": None}
            body["error"] = (
                "NATS unreachable" if not nats_ok else f"services not answering: {', '.join(missing)}"
            )
        return JSONResponse(body, status_code=200 if ok else 503)

    # --- rendering helpers ---------------------------------------------------------------------

    @app.get(
        "/fonts",
        tags=["render"],
        dependencies=auth,
        summary="The font catalogue",
        responses={200: _json_reply(None, schema={"type": "array", "items": _ref("FontInfo")}), **_errors()},
    )
    async def fonts(client: Nats) -> Response:
        return json_bytes(await client.request(subjects.FONTS, b"{}"))

    @app.post(
        "/validate",
        tags=["render"],
        dependencies=auth,
        summary="Check a style; returns it with the defaults filled in",
        openapi_extra=_json_body("Style"),
        responses={200: _json_reply("ValidateReply"), **_errors(400, 413)},
    )
    async def validate(client: Nats, body: Body) -> Response:
        return json_bytes(await client.request(subjects.VALIDATE, body))

    @app.post(
        "/preview",
        tags=["render"],
        dependencies=auth,
        summary="Render one text now; returns the image",
        openapi_extra=_json_body("PreviewRequest"),
        responses={
            200: {"description": "The image", "content": {"image/png": {}, "image/webp": {}}},
            **_errors(400, 413),
        },
    )
    async def preview(client: Nats, body: Body) -> Response:
        request = decode_json(body, PreviewRequest)  # field-named 400s before the round trip
        data = await client.request(subjects.PREVIEW, encode_json(request))
        return Response(
            content=data, media_type=image_media_type(data), headers={"Cache-Control": "no-store"}
        )

    # --- submit ----------------------------------------------------------------------------------

    @app.post(
        "/generate/csv",
        tags=["jobs"],
        dependencies=auth,
        status_code=202,
        summary="Upload a CSV and render one image per row",
        description="The upload is streamed to the `imagegen-inputs` bucket (spooled to disk, never whole "
        "in memory), then submitted like `imagegen.submit.csv` with `object` set. Style: a JSON `style` "
        "object, and/or the single fields (font, size, color...), which win over it.",
        responses={202: _json_reply(None, "Accepted", ACCEPTED_SCHEMA), **_errors(400, 404, 409, 413)},
    )
    async def generate_csv(
        client: Nats,
        file: Annotated[UploadFile, File(description="The CSV file")],
        column: Annotated[str | None, Form(description="Text column by header name")] = None,
        column_index: Annotated[int | None, Form(ge=0, description="…or by 0-based index")] = None,
        has_header: Annotated[bool, Form()] = True,
        delimiter: Annotated[str | None, Form(min_length=1, max_length=1)] = None,
        encoding: Annotated[str | None, Form(max_length=40)] = None,
        name_template: Annotated[str, Form(min_length=1, max_length=200)] = "{index}",
        job_id: Annotated[str | None, Form(pattern=JOB_ID_PATTERN)] = None,
        batch_size: Annotated[int | None, Form(ge=1, le=1000)] = None,
        style: Annotated[str | None, Form(description="A Style as JSON")] = None,
        font: Annotated[str | None, Form(max_length=200)] = None,
        size: Annotated[int | None, Form(ge=1, le=1000)] = None,
        color: Annotated[str | None, Form(max_length=100)] = None,
        background: Annotated[str | None, Form(max_length=100)] = None,
        padding: Annotated[
            str | None, Form(max_length=40, description="1, 2 or 4 pixel values: '8' or '4,8'")
        ] = None,
        max_width: Annotated[int | None, Form(ge=1, le=16384, description="Wrap width in pixels")] = None,
        align: Annotated[str | None, Form(max_length=20)] = None,
    ) -> JSONResponse:
        ref: str | int
        if column is not None and column != "":
            ref = column
        elif column_index is not None:
            ref = column_index
        else:
            raise BadRequest(
                "name the text column (`column`) or give its index (`column_index`)", field="column"
            )
        raw_style = _style_from_form(style, font, size, color, background, padding, max_width, align)
        fields: dict[str, Any] = {
            "column": ref,
            "has_header": has_header,
            "name_template": name_template,
            "style": raw_style,
            "object": "-",
        }
        for key, value in (
            ("delimiter", delimiter),
            ("encoding", encoding),
            ("job_id", job_id),
            ("batch_size", batch_size),
        ):
            if value is not None and value != "":
                fields[key] = value
        try:
            submit = msgspec.convert(fields, SubmitCsv)  # shape and ranges, before any upload
        except msgspec.ValidationError as exc:
            raise bad_request_from(exc) from exc

        store = await client.js.object_store(subjects.BUCKET_INPUTS)
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in (file.filename or "upload.csv"))[-80:]
        name = f"gateway-{secrets.token_hex(8)}-{safe}"
        await store.put(name, file.file)  # type: ignore[arg-type]  # SpooledTemporaryFile is a reader
        try:
            accepted = await client.submit_csv(msgspec.structs.replace(submit, object=name))
        except BaseException:
            # No job references the upload: do not leave it in the bucket until its TTL.
            with contextlib.suppress(Exception):
                await store.delete(name)
            raise
        return JSONResponse(accepted_body(accepted), status_code=202)

    @app.post(
        "/generate/database",
        tags=["jobs"],
        dependencies=auth,
        status_code=202,
        summary="Render one image per row of a read-only query on a named data source",
        openapi_extra=_json_body("SubmitDb"),
        responses={202: _json_reply(None, "Accepted", ACCEPTED_SCHEMA), **_errors(400, 404, 409, 413)},
    )
    async def generate_database(client: Nats, body: Body) -> JSONResponse:
        submit = decode_json(body, SubmitDb)
        accepted = await client.submit_db(submit)
        return JSONResponse(accepted_body(accepted), status_code=202)

    # --- jobs ------------------------------------------------------------------------------------

    @app.get(
        "/jobs",
        tags=["jobs"],
        dependencies=auth,
        summary="Jobs, newest first; page with `before` = the last `created_at` seen",
        responses={200: _json_reply("JobsListReply"), **_errors(400)},
    )
    async def list_jobs(
        client: Nats,
        status: Annotated[JobStatus | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        before: Annotated[datetime | None, Query()] = None,
        since: Annotated[datetime | None, Query()] = None,
    ) -> Response:
        jobs = await client.list_jobs(status=status, limit=limit, before=before, since=since)
        return json_bytes(encode_json(JobsListReply(jobs=jobs)))

    @app.get(
        "/jobs/{job_id}",
        tags=["jobs"],
        dependencies=auth,
        summary="One job's ledger row, with its first item failures",
        responses={200: _json_reply("JobInfo"), **_errors(400, 404)},
    )
    async def get_job(
        client: Nats, job_id: JobIdPath, failures_limit: Annotated[int, Query(ge=0, le=10_000)] = 100
    ) -> Response:
        return json_bytes(encode_json(await client.get_job(job_id, failures_limit=failures_limit)))

    @app.post(
        "/jobs/{job_id}/cancel",
        tags=["jobs"],
        dependencies=auth,
        summary="Stop a job",
        responses={200: _json_reply("JobInfo"), **_errors(400, 404, 409)},
    )
    async def cancel_job(client: Nats, job_id: JobIdPath) -> Response:
        return json_bytes(encode_json(await client.cancel_job(job_id)))

    @app.post(
        "/jobs/{job_id}/retry",
        tags=["jobs"],
        dependencies=auth,
        summary="Re-render the failed items of a finished job as its next attempt",
        responses={200: _json_reply("JobInfo"), **_errors(400, 404, 409)},
    )
    async def retry_job(client: Nats, job_id: JobIdPath) -> Response:
        return json_bytes(encode_json(await client.retry_job(job_id)))

    @app.get(
        "/jobs/{job_id}/events",
        tags=["jobs"],
        dependencies=auth,
        summary="The job's events as Server-Sent Events: replayed from the first, then live",
        description="Each event is `id: <n>`, `event: <kind>`, `data: <JobEvent JSON>`. "
        "The stream ends after the terminal event of the job's current attempt. "
        "A reconnect with `Last-Event-ID` skips what was seen; one after the end gets 204, "
        "which stops an EventSource.",
        responses={
            200: {"description": "text/event-stream of JobEvent", "content": {"text/event-stream": {}}},
            204: {"description": "Nothing more: the job had ended before this reconnect"},
            **_errors(400, 404),
        },
    )
    async def job_events(client: Nats, request: Request, job_id: JobIdPath) -> Response:
        job = await client.get_job(job_id, failures_limit=0)
        last_seen = _last_event_id(request)
        if last_seen and job.status in TERMINAL_STATUSES:
            return Response(status_code=204)
        return StreamingResponse(
            _sse(client, job, last_seen, gateway.sse_keepalive_seconds),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # --- images ----------------------------------------------------------------------------------

    async def job_images(client: Client, job_id: str) -> tuple[JobInfo, JobImages]:
        job = await client.get_job(job_id, failures_limit=0)
        return job, JobImages(job_id, job.output, output_dir, client.js, in_bucket=in_bucket)

    @app.get(
        "/jobs/{job_id}/files",
        tags=["images"],
        dependencies=auth,
        summary="The job's images so far (name, size, URL), in name order",
        responses={
            200: _json_reply(
                None,
                schema={
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
                },
            ),
            **_errors(400, 404),
        },
    )
    async def list_files(
        client: Nats,
        job_id: JobIdPath,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int | None, Query(ge=1)] = None,
    ) -> JSONResponse:
        _, images = await job_images(client, job_id)
        files = await images.listing()
        page = files[offset : offset + min(limit or gateway.max_list_files, gateway.max_list_files)]
        return JSONResponse(
            {
                "job_id": job_id,
                "total": len(files),
                "files": [
                    {"name": f.name, "bytes": f.bytes, "url": f"/jobs/{job_id}/files/{_quote(f.name)}"}
                    for f in page
                ],
            }
        )

    @app.get(
        "/jobs/{job_id}/files/{name}",
        tags=["images"],
        dependencies=auth,
        summary="One image of the job",
        responses={
            200: {"description": "The image", "content": {"image/png": {}, "image/webp": {}}},
            **_errors(400, 404),
        },
    )
    async def get_file(
        client: Nats, job_id: JobIdPath, name: Annotated[str, PathParam(max_length=255)]
    ) -> Response:
        _, images = await job_images(client, job_id)
        if images.in_bucket:
            data = await images.read_object(name)
            return Response(content=data, media_type=media_type(name))
        return FileResponse(images.path_of(name), media_type=media_type(name))

    @app.get(
        "/jobs/{job_id}/zip",
        tags=["images"],
        dependencies=auth,
        summary="All images of a finished job as one zip, streamed",
        responses={
            200: {"description": "application/zip", "content": {"application/zip": {}}},
            **_errors(400, 404, 409),
        },
    )
    async def get_zip(client: Nats, job_id: JobIdPath) -> StreamingResponse:
        job, images = await job_images(client, job_id)
        if job.status not in TERMINAL_STATUSES:
            raise Conflict(
                f"job {job_id} is still {job.status}: the zip is ready when it finishes", field="job_id"
            )
        files = await images.listing()
        return StreamingResponse(
            images.zip_stream(files),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{job_id}.zip"'},
        )

    return app


# --- helpers -----------------------------------------------------------------------------------


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def _style_from_form(
    style_json: str | None,
    font: str | None,
    size: int | None,
    color: str | None,
    background: str | None,
    padding: str | None,
    max_width: int | None,
    align: str | None,
) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if style_json:
        try:
            parsed = json.loads(style_json)
        except ValueError as exc:
            raise BadRequest(f"not JSON: {exc}", field="style") from None
        if not isinstance(parsed, dict):
            raise BadRequest("style must be a JSON object", field="style")
        raw.update(parsed)
    for key, value in (
        ("font", font),
        ("size", size),
        ("color", color),
        ("background", background),
        ("max_width", max_width),
        ("align", align),
    ):
        if value is not None and value != "":
            raw[key] = value
    if padding:
        try:
            values = [int(part) for part in padding.replace(" ", ",").split(",") if part]
        except ValueError:
            raise BadRequest("padding is 1, 2 or 4 whole pixel values", field="style.padding") from None
        raw["padding"] = values[0] if len(values) == 1 else values
    return raw


def _last_event_id(request: Request) -> int:
    value = request.headers.get("last-event-id") or request.query_params.get("last_event_id") or "0"
    return int(value) if value.isdigit() else 0


async def _sse(client: Client, job: JobInfo, last_seen: int, keepalive: float) -> AsyncIterator[bytes]:
    """Replay the job's events, then live ones, as SSE frames, until its attempt ends.

    The NATS subscription runs in its own task feeding a queue, so keep-alive comments can go out
    while no event arrives without cancelling the subscription's iterator mid-read.
    """
    queue: asyncio.Queue[JobEvent | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in client.watch(job.job_id, attempt=job.attempt):
                await queue.put(event)
        except Exception as exc:
            log.warning("gateway.sse_failed", job_id=job.job_id, error=repr(exc))
        finally:
            await queue.put(None)

    task = asyncio.create_task(pump())
    try:
        yield b"retry: 2000\n\n"
        seq = 0
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if event is None:
                return
            seq += 1
            if seq <= last_seen:
                continue
            # Every field, defaults too: a browser reading `failed` should not meet `undefined`.
            data = encode_json({name: getattr(event, name) for name in event.__struct_fields__})
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event.kind.encode(), data)
            if event.kind in TERMINAL_EVENTS and event.attempt >= job.attempt:
                return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
