"""Encoding and decoding wire messages, and turning a decode failure into a field-named error.

`decode_json` / `decode_msgpack` raise `BadRequest` whose `field` names the offending field, so an
edge never parses msgspec's wording itself. `decode_lenient` is for stream messages a client
reads: it ignores fields a newer server added.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from shared.contract.errors import BadRequest

T = TypeVar("T")

_json_encoder = msgspec.json.Encoder()
_msgpack_encoder = msgspec.msgpack.Encoder()
_NAMED_FIELD = re.compile(r"(?:missing required|unknown) field `([^`]+)`")
_AT_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def encode_json(message: Any) -> bytes:
    return _json_encoder.encode(message)


def encode_msgpack(message: Any) -> bytes:
    return _msgpack_encoder.encode(message)


def _field_of(path: str) -> str | None:
    """`$.style.color` -> `style.color`; `$.items[3]` -> `items[3]`."""
    path = path.lstrip(".")
    return path or None


def bad_request_from(exc: msgspec.MsgspecError, *, prefix: str = "") -> BadRequest:
    """Turn msgspec's 'Expected `int`, got `str` - at `$.size`' into a BadRequest naming `size`."""
    match = _AT_PATH.match(str(exc))
    assert match is not None  # the pattern matches any string
    field_name = _field_of(match.group("path") or "")
    named = _NAMED_FIELD.search(match.group("msg"))
    if named:  # "Object missing required field `column`": the field is the named one
        field_name = f"{field_name}.{named.group(1)}" if field_name else named.group(1)
    if prefix:
        field_name = f"{prefix}.{field_name}" if field_name else prefix
    message = match.group("msg")
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        message = f"malformed payload: {message}"
    return BadRequest(message, field=field_name)


def decode_json(data: bytes, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(data, type=type_)
    except msgspec.MsgspecError as exc:
        raise bad_request_from(exc) from exc


def decode_msgpack(data: bytes, type_: type[T]) -> T:
    try:
        return msgspec.msgpack.decode(data, type=type_)
    except msgspec.MsgspecError as exc:
        raise bad_request_from(exc) from exc


def decode_lenient(data: bytes, type_: type[T]) -> T:
    """Decode a stream message, ignoring fields this reader does not know yet.

    The wire Structs forbid unknown fields (right for requests: a typo is refused), but a newer
    server may add optional fields to events and results; an older client must still see its
    job complete rather than skip the event.
    """
    try:
        return msgspec.json.decode(data, type=type_)
    except msgspec.ValidationError:
        raw = msgspec.json.decode(data)
        if not isinstance(raw, dict):
            raise
        known = {f.encode_name for f in msgspec.structs.fields(type_)}  # type: ignore[arg-type]
        return msgspec.convert({k: v for k, v in raw.items() if k in known}, type_)


def refuse_nul(message: Any, *, path: str = "") -> None:
    """`BadRequest` naming the first field whose text holds a NUL character: Postgres text and
    JSON cannot store it, and no source can mean it (checked on every submit at the edge)."""
    if isinstance(message, str):
        if "\x00" in message:
            raise BadRequest("must not contain NUL characters", field=path or None)
    elif isinstance(message, dict):
        for key, value in message.items():
            refuse_nul(key, path=path)
            refuse_nul(value, path=f"{path}.{key}" if path else str(key))
    elif isinstance(message, list | tuple):
        for i, value in enumerate(message):
            refuse_nul(value, path=f"{path}[{i}]")
    elif isinstance(message, msgspec.Struct):
        refuse_nul(msgspec.to_builtins(message), path=path)
