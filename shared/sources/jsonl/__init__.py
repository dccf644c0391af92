"""JSON Lines files: one JSON object per line, its keys as columns."""

from shared.sources.base import SourceSpec
from shared.sources.jsonl.request import SubmitJsonl

SOURCE = SourceSpec(
    name="jsonl",
    request=SubmitJsonl,
    summary="one image per line of a JSON Lines file",
    implementation="shared.sources.jsonl.source:JsonlSource",
    inline="jsonl",
    uploads=(".jsonl", ".ndjson"),
)

__all__ = ["SOURCE", "SubmitJsonl"]
