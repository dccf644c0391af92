"""CSV files: uploaded, on a server path, or inline; encoding and dialect detected."""

from shared.sources.base import SourceSpec
from shared.sources.csv.request import SubmitCsv

SOURCE = SourceSpec(
    name="csv",
    request=SubmitCsv,
    summary="one image per row of a CSV file",
    implementation="shared.sources.csv.source:CsvSource",
    inline="csv",
    uploads=(".csv", ".tsv", ".txt"),
)

__all__ = ["SOURCE", "SubmitCsv"]
