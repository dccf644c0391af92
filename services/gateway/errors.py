"""How the gateway answers errors: JSON `{code, error, field}` with the NATS reply's code as the
HTTP status; bad input is 400 (as on NATS), never FastAPI's 422; an unexpected error is 500
without internals."""

from __future__ import annotations

from typing import Any

import nats.errors
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.contract.errors import ImagegenError
from shared.runtime.logging import get_logger

log = get_logger(__name__)


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
