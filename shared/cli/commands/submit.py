"""`imagegen submit SOURCE ...`: build a source's request from flags, upload a file, submit."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from shared.cli import session
from shared.cli.follow import follow_job, print_summary
from shared.cli.options import request_fields, style_from_args
from shared.cli.output import emit
from shared.contract.codec import bad_request_from
from shared.contract.errors import BadRequest
from shared.contract.style import parse_style
from shared.contract.submit import FileSubmit, SubmitBase, column_ref
from shared.sources import SourceSpec, source


def _style_columns(args: argparse.Namespace, by_position: bool) -> dict[str, str | int]:
    columns: dict[str, str | int] = {}
    for spec in args.style_column:
        field, sep, ref = spec.partition("=")
        if not sep or not field.strip() or not ref.strip():
            raise BadRequest(f"expected FIELD=COLUMN, got {spec!r}", field="--style-column")
        columns[field.strip()] = column_ref(ref.strip(), by_position=by_position)
    return columns


def build_request(spec: SourceSpec[Any], args: argparse.Namespace) -> SubmitBase:
    """The request the flags describe, checked as the server will (minus the fonts it has)."""
    by_position = getattr(args, "has_header", None) is False
    fields: dict[str, Any] = {"column": column_ref(args.column, by_position=by_position)}
    for name in request_fields(spec):
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = value
    for name in ("name_template", "job_id", "batch_size"):
        if getattr(args, name, None) is not None:
            fields[name] = getattr(args, name)
    for name in ("filename_column", "color_column", "font_column"):
        if getattr(args, name, None) is not None:
            fields[name] = column_ref(getattr(args, name), by_position=by_position)
    if args.style_column:
        fields["style_columns"] = _style_columns(args, by_position)
    fields["style"] = parse_style(style_from_args(args))
    if spec.takes_files:
        fields["object"] = "-"  # replaced by the upload's name
    try:
        request: SubmitBase = msgspec.convert(fields, spec.request, strict=False)
    except msgspec.ValidationError as exc:
        raise bad_request_from(exc) from exc
    return request


async def submit(args: argparse.Namespace) -> int:
    spec = source(args.source)
    request = build_request(spec, args)
    async with await session.connect(args) as client:
        if isinstance(request, FileSubmit):
            accepted = await client.submit_file(args.file, request)
        else:
            accepted = await client.submit(request)
        detected = ", ".join(f"{key} {value}" for key, value in accepted.detected.items())
        if not args.wait:
            emit(args, accepted, f"accepted job {accepted.job_id}" + (f" ({detected})" if detected else ""))
            return 0
        if detected and not getattr(args, "json", False):
            print(f"read as: {detected}", file=sys.stderr)
        followed = await follow_job(client, accepted.job_id, quiet=bool(getattr(args, "json", False)))
        final = followed.final
        job = await client.get_job(accepted.job_id)
        if getattr(args, "json", False):
            emit(args, {**msgspec.to_builtins(job), "manifest": final.manifest})
        else:
            print_summary(job, followed)
        return 0 if final.kind == "completed" and final.failed == 0 and final.incomplete == 0 else 1
