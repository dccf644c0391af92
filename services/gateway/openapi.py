"""The OpenAPI document: FastAPI's routes, with the msgspec Structs of the wire contract as its
components, so HTTP and NATS share one definition of every body (no Pydantic copies)."""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.contract.messages import (
    Accepted,
    ErrorReply,
    FontInfo,
    JobEvent,
    JobInfo,
    JobsListReply,
    PreviewRequest,
    ValidateReply,
)
from shared.contract.style import Style
from shared.sources import SUBMIT_TYPES

COMPONENT_TYPES: tuple[Any, ...] = (
    *SUBMIT_TYPES,
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


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(name: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref(name)}}}}


def json_reply(
    name: str | None, description: str = "OK", schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or ref(name or "")}},
    }


ERRORS: dict[int | str, dict[str, Any]] = {
    400: json_reply("ErrorReply", "Bad input: `field` names it"),
    401: json_reply("ErrorReply", "Missing or wrong API key"),
    403: json_reply("ErrorReply", "Refused: a cross-site request or a host that is not allowed"),
    404: json_reply("ErrorReply", "No such job, file or font"),
    409: json_reply("ErrorReply", "Conflicts with the job's state"),
    413: json_reply("ErrorReply", "Too large: the body, a reply over NATS's max_payload, a preview's memory"),
    422: json_reply("ErrorReply", "The text could not be rendered (a limit, a timeout): `error` says why"),
    429: json_reply("ErrorReply", "Too many open event streams"),
    503: json_reply("ErrorReply", "Services or NATS unavailable, or busy: try again shortly"),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERRORS[code] for code in (401, 503, *codes)}


ACCEPTED_SCHEMA: dict[str, Any] = {
    "allOf": [
        ref("Accepted"),
        {
            "type": "object",
            "properties": {"links": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
    ]
}


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
