"""Rendering helpers: the font catalogue, style validation and a one-off preview."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.gateway.deps import AUTH, Body, Nats, json_bytes
from services.gateway.openapi import errors, json_body, json_reply, ref
from shared.contract import subjects
from shared.contract.codec import decode_json, encode_json
from shared.contract.messages import PreviewRequest

router = APIRouter(tags=["render"], dependencies=AUTH)


def image_media_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


@router.get(
    "/fonts",
    summary="The font catalogue",
    responses={200: json_reply(None, schema={"type": "array", "items": ref("FontInfo")}), **errors()},
)
async def fonts(client: Nats) -> Response:
    return json_bytes(await client.request(subjects.FONTS, b"{}"))


@router.post(
    "/validate",
    summary="Check a style; returns it with the defaults filled in",
    openapi_extra=json_body("Style"),
    responses={200: json_reply("ValidateReply"), **errors(400, 413)},
)
async def validate(client: Nats, body: Body) -> Response:
    return json_bytes(await client.request(subjects.VALIDATE, body))


@router.post(
    "/preview",
    summary="Render one text now; returns the image",
    openapi_extra=json_body("PreviewRequest"),
    responses={
        200: {"description": "The image", "content": {"image/png": {}, "image/webp": {}}},
        **errors(400, 413, 422),
    },
)
async def preview(client: Nats, body: Body) -> Response:
    request = decode_json(body, PreviewRequest)  # field-named 400s before the round trip
    data = await client.request(subjects.PREVIEW, encode_json(request))
    return Response(content=data, media_type=image_media_type(data), headers={"Cache-Control": "no-store"})
