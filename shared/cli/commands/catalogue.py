"""`imagegen fonts` (the renderers' font catalogue) and `imagegen asyncapi` (the NATS contract)."""

from __future__ import annotations

import argparse
import json

from shared.cli import session
from shared.cli.output import emit, table


async def fonts(args: argparse.Namespace) -> int:
    async with await session.connect(args) as client:
        found = await client.fonts()
    rows = [(f.name, f.family, f.style, ", ".join(f.scripts)) for f in found]
    emit(args, found, table(("NAME", "FAMILY", "STYLE", "SCRIPTS"), rows))
    return 0


def asyncapi(args: argparse.Namespace) -> int:
    from shared.asyncapi import document  # only this command needs the generator

    print(json.dumps(document(), indent=2, ensure_ascii=False))
    return 0
