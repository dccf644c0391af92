"""The CSV source's request: `imagegen.submit.csv`."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from shared.contract.submit import FileSubmit


class SubmitCsv(FileSubmit, tag="csv", kw_only=True):
    """Render one image per row of a CSV file.

    Exactly one of `csv` (the text inline), `object` (an upload in the `imagegen-inputs` bucket)
    or `path` (relative to the server's allowed folder) names the file. Encoding and delimiter
    are detected unless given.
    """

    csv: Annotated[str, Meta(description="the CSV text itself (small files)")] | None = None
    has_header: Annotated[bool, Meta(description="the first non-blank line names the columns")] = True
    delimiter: (
        Annotated[str, Meta(min_length=1, max_length=1, description="field delimiter (default: sniffed)")]
        | None
    ) = None
    encoding: (
        Annotated[
            str, Meta(min_length=1, max_length=40, description="the file's encoding (default: detected)")
        ]
        | None
    ) = None
