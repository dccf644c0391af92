"""Excel workbooks (.xlsx), streamed sheet by sheet with openpyxl's read-only mode."""

from shared.sources.base import SourceSpec
from shared.sources.xlsx.request import SubmitXlsx

SOURCE = SourceSpec(
    name="xlsx",
    request=SubmitXlsx,
    summary="one image per row of a sheet of an Excel workbook",
    implementation="shared.sources.xlsx.source:XlsxSource",
    uploads=(".xlsx",),
)

__all__ = ["SOURCE", "SubmitXlsx"]
