"""A submit from an HTML form or `curl -F`: every field of a source's request as a form field.

Form fields are text, so values are converted the way msgspec converts strings (numbers,
`true`/`false`); `style` and `style_columns` may come as JSON, and any scalar style field may
also come on its own (`font`, `size`, `padding=4,8`...), winning over the JSON `style`.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from starlette.datastructures import FormData, UploadFile

from shared.contract.codec import bad_request_from
from shared.contract.errors import BadRequest
from shared.contract.style import SCALAR_FIELDS, style_from_text
from shared.contract.submit import SubmitBase, column_ref
from shared.sources import SourceSpec

_JSON_FIELDS = frozenset({"style", "style_columns"})
_COLUMN_FIELDS = frozenset({"column", "filename_column", "color_column", "font_column"})


def _json_field(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"not JSON: {exc}", field=name) from None


def request_from_form(spec: SourceSpec[Any], form: FormData, *, upload_name: str) -> SubmitBase:
    """The source's request from `form`, its file being the upload `upload_name`."""
    names = {f.name for f in msgspec.structs.fields(spec.request)}
    fields: dict[str, Any] = {}
    style_texts: dict[str, str] = {}
    by_position = str(form.get("has_header", "true")).lower() in ("false", "0", "no", "off")
    for name, value in form.multi_items():
        if isinstance(value, UploadFile) or value == "":
            continue
        if name in _JSON_FIELDS:
            fields[name] = _json_field(name, value)
        elif name in _COLUMN_FIELDS:
            fields[name] = column_ref(value, by_position=by_position)
        elif name in SCALAR_FIELDS and name not in names:
            style_texts[name] = value
        elif name in names and name not in ("object", "path", spec.inline):
            if name == "params":
                fields.setdefault(name, []).append(value)
            else:
                fields[name] = value
        elif name not in ("file", "api_key"):
            raise BadRequest(f"unknown field {name!r}", field=name)
    if style_texts:
        style = fields.get("style") or {}
        if not isinstance(style, dict):
            raise BadRequest("style must be a JSON object", field="style")
        fields["style"] = {**style, **style_from_text(style_texts)}
    fields["object"] = upload_name
    try:
        request: SubmitBase = msgspec.convert(fields, spec.request, strict=False)
    except msgspec.ValidationError as exc:
        raise bad_request_from(exc) from exc
    return request


def form_schema(spec: SourceSpec[Any]) -> dict[str, Any]:
    """The multipart body of `POST /generate/<source>`, for the OpenAPI document."""
    properties: dict[str, Any] = {"file": {"type": "string", "format": "binary", "description": "the file"}}
    for field in msgspec.structs.fields(spec.request):
        if field.name in ("object", "path", spec.inline):
            continue
        kind = "a JSON object" if field.name in _JSON_FIELDS else "text"
        properties[field.name] = {"type": "string", "description": f"{field.name} ({kind})"}
    for name in SCALAR_FIELDS:
        properties.setdefault(name, {"type": "string", "description": f"style.{name}, on its own"})
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["file", "column"], "properties": properties}
                }
            },
        }
    }
