"""Command-line options generated from the wire Structs, so flags cannot drift from the contract.

Every scalar `Style` field is a `--flag` (with its description as help), and every option a
source's request adds (a CSV's `--delimiter`, a workbook's `--sheet`, a query's `--param`) comes
from that request's Struct; values go through the same checks as any NATS request.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from shared.contract.errors import BadRequest
from shared.contract.style import SCALAR_FIELDS, Style, style_from_text
from shared.contract.submit import FileSubmit, SubmitBase
from shared.sources import SourceSpec

# Fields every file source has, given on the command line as the FILE argument instead.
_FILE_FIELDS = frozenset(f.name for f in msgspec.structs.fields(FileSubmit))
_BASE_FIELDS = frozenset(f.name for f in msgspec.structs.fields(SubmitBase))
# How a few request fields are spelled as flags.
_FLAG_NAMES = {"params": "--param", "has_header": "--header"}


def _flag(name: str) -> str:
    return _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def _unwrap(tp: Any) -> tuple[Any, str | None]:
    """(the bare type of a field, its description) without Annotated and Optional."""
    description = None
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            for meta in typing.get_args(tp)[1:]:
                if isinstance(meta, msgspec.Meta) and meta.description:
                    description = description or meta.description
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
            # A union such as "a column name or an index": take the first readable form.
            inner = [_unwrap(a) for a in args]
            description = description or next((d for _, d in inner if d), None)
            return tp, description
        else:
            return tp, description


def add_fields(
    group: argparse._ArgumentGroup | argparse.ArgumentParser,
    struct: type[msgspec.Struct],
    names: Iterable[str],
    *,
    dest_prefix: str = "",
) -> None:
    """One option per field in `names` of `struct`, typed and described from the Struct."""
    fields = {f.name: f for f in msgspec.structs.fields(struct)}
    for name in names:
        field = fields[name]
        tp, description = _unwrap(field.type)
        dest = dest_prefix + name
        default_note = "" if field.default in (msgspec.NODEFAULT, None) else f" (default {field.default})"
        help_text = (description or name.replace("_", " ")) + default_note
        if tp is bool:
            group.add_argument(
                _flag(name), dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif typing.get_origin(tp) is Literal:
            group.add_argument(_flag(name), dest=dest, choices=typing.get_args(tp), help=help_text)
        elif typing.get_origin(tp) is list:
            group.add_argument(_flag(name), dest=dest, action="append", help=help_text + " (repeatable)")
        elif tp in (int, float):
            group.add_argument(_flag(name), dest=dest, type=tp, metavar=tp.__name__.upper(), help=help_text)
        else:
            group.add_argument(_flag(name), dest=dest, metavar="VALUE", help=help_text)


def add_style_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("style (any field of the Style model; see `imagegen fonts` for fonts)")
    add_fields(group, Style, SCALAR_FIELDS, dest_prefix="style__")
    group.add_argument(
        "--style-json", metavar="JSON", help="a whole style as JSON; the flags above win over it"
    )


def style_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The style the flags describe, as a mapping for `parse_style`."""
    style: dict[str, Any] = {}
    if getattr(args, "style_json", None):
        try:
            loaded = json.loads(args.style_json)
        except ValueError as exc:
            raise BadRequest(f"not JSON: {exc}", field="--style-json") from None
        if not isinstance(loaded, dict):
            raise BadRequest("must be a JSON object", field="--style-json")
        style.update(loaded)
    texts = {}
    for name in SCALAR_FIELDS:
        value = getattr(args, f"style__{name}", None)
        if value is None:
            continue
        if isinstance(value, bool | int | float):
            style[name] = value
        else:
            texts[name] = str(value)
    style.update(style_from_text(texts))
    return style


def request_fields(spec: SourceSpec[Any]) -> list[str]:
    """The fields of a source's request that get their own flags (not the common ones, not the
    file's location or inline text: the FILE argument gives those)."""
    skip = set(_BASE_FIELDS) | {"style"}
    if spec.takes_files:
        skip |= _FILE_FIELDS | ({spec.inline} if spec.inline else set())
    return [f.name for f in msgspec.structs.fields(spec.request) if f.name not in skip]
