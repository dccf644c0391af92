"""`imagegen render TEXT -o FILE`: one image, rendered locally with the bundled fonts."""

from __future__ import annotations

import argparse
import sys

import msgspec

from shared.cli.options import style_from_args
from shared.cli.output import emit
from shared.contract.errors import BadRequest


def render(args: argparse.Namespace) -> int:
    from shared.render import RenderEngine, default_catalogue, parse_style  # the engine is heavy

    style = parse_style(style_from_args(args), catalogue=default_catalogue())
    suffix = args.output.suffix.lower()
    if suffix not in (".png", ".webp"):
        raise BadRequest("the output file must end in .png or .webp", field="--output")
    if f".{style.format}" != suffix:
        style = msgspec.structs.replace(style, format=suffix[1:])
    image = RenderEngine().render(args.text, style)
    args.output.write_bytes(image.data)
    emit(
        args,
        {
            "file": str(args.output),
            "width": image.width,
            "height": image.height,
            "bytes": len(image.data),
            "missing_glyphs": list(image.missing_glyphs),
        },
        f"{args.output}: {image.width}x{image.height}, {len(image.data)} bytes",
    )
    if image.missing_glyphs:
        # An image that lost characters is not a success, even though it was written.
        if not getattr(args, "json", False):
            print(f"incomplete: no font covers {' '.join(image.missing_glyphs)}", file=sys.stderr)
        return 1
    return 0
