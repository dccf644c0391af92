"""What commands print: text for people, JSON with `--json` (errors included), on the right stream."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import msgspec


def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def emit(args: argparse.Namespace, value: Any, text: str | None = None) -> None:
    """`value` as JSON with `--json`, else `text` (or the value itself) for a person."""
    if wants_json(args):
        print(msgspec.json.encode(value).decode())
    else:
        print(text if text is not None else value)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell, with a header row."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def error(args: argparse.Namespace, message: str, *, code: int, field: str | None = None) -> None:
    """A refused request or a failure: JSON `{code, error, field}` on stdout with `--json`, so a
    script parsing the output sees it; text on stderr otherwise."""
    if wants_json(args):
        print(msgspec.json.encode({"code": code, "error": message, "field": field}).decode())
    else:
        print(f"error: {f'{field}: ' if field else ''}{message}", file=sys.stderr)
