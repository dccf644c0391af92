"""The JSON Lines source's request: `imagegen.submit.jsonl`."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from shared.contract.submit import FileSubmit


class SubmitJsonl(FileSubmit, tag="jsonl", kw_only=True):
    """Render one image per line of a JSON Lines file: one JSON object per line.

    Columns are the objects' keys (`column`, `filename_column`, `style_columns` name keys); a
    value that is a string, a number or a boolean is used as text, `null` or a missing key is
    empty. The file is UTF-8 (RFC 8259), given inline (`jsonl`), as an upload or a server path.
    """

    jsonl: Annotated[str, Meta(description="the JSON Lines text itself (small files)")] | None = None
