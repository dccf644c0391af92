"""What every submit request has in common; each input source adds its own fields.

A submit is a tagged union: `{"source": "csv", ...}`, `{"source": "db", ...}`. Each source plug-in
(`shared.sources.<name>`) defines its request as a subclass of `SubmitBase` with `tag=<name>`,
holding the options only it understands (a CSV's delimiter, a workbook's sheet, a query). Sent on
the source's own subject (`imagegen.submit.<name>`) the tag may be left out.

The fields here apply to every source: which column holds the text, the style, how images are
named, and per-row overrides read from other columns (a file name, a colour, any scalar style
field). A bad override value fails that row's item, not the job.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Annotated, Final

from msgspec import Meta, Struct, field

from shared.contract.errors import BadRequest
from shared.contract.style import Style
from shared.contract.subjects import JOB_ID_PATTERN

TAG_FIELD: Final = "source"
DEFAULT_NAME_TEMPLATE: Final = "{row}"

ColumnRef = (
    Annotated[str, Meta(min_length=1, max_length=200, description="a column by name")]
    | Annotated[int, Meta(ge=0, le=100_000, description="a column by 0-based position")]
)
StyleField = Annotated[str, Meta(pattern=r"^[a-z_]{1,40}$")]
JobId = Annotated[
    str,
    Meta(
        pattern=JOB_ID_PATTERN,
        description="your own job id (1-64 letters, digits, - and _); the same id again is the "
        "same job, not a second one",
    ),
]
NameTemplateText = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        description="output names: {row} (the source's row number), {index}, {row:06}, {row[COLUMN]};"
        " the extension is added",
    ),
]
MAX_BATCH_SIZE: Final = 1000
BatchSize = Annotated[int, Meta(ge=1, le=MAX_BATCH_SIZE, description="items per render task")]


_UPLOAD_NAME = re.compile(r"^(?:gateway-)?[0-9a-f]{16}-(.+)$")  # "gateway-": the older gateway's


def upload_name(filename: str | None, default: str) -> str:
    """A fresh name in the inputs bucket for an upload of `filename`: 16 random hex digits, then
    the file's own name (letters and digits of any script, spaces and `._-()`, at most 80
    characters; else `default`), so a job can still say which file it read."""
    name = unicodedata.normalize("NFC", filename or "")  # macOS hands out decomposed names
    safe = "".join(c if c.isalnum() or c in " ._-()" else "_" for c in name).strip()[-80:]
    return f"{secrets.token_hex(8)}-{safe or default}"


def upload_label(name: str) -> str:
    """The file name an upload was made from, as `upload_name` kept it."""
    match = _UPLOAD_NAME.match(name)
    return match.group(1) if match else name


def column_ref(text: str, *, by_position: bool) -> str | int:
    """A column as a person types it: without a header row, digits mean a 0-based position."""
    return int(text) if by_position and text.isdigit() else text


class SubmitBase(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True, tag_field=TAG_FIELD):
    """Fields of every submit. Subclasses add a source's own options and set `tag=<name>`."""

    column: Annotated[ColumnRef, Meta(description="the column (or key) holding each image's text")]
    style: Style = field(default_factory=Style)
    name_template: NameTemplateText = DEFAULT_NAME_TEMPLATE
    job_id: JobId | None = None
    batch_size: BatchSize | None = None
    filename_column: Annotated[
        ColumnRef | None, Meta(description="name each image after this column's value")
    ] = None
    style_columns: Annotated[
        dict[StyleField, ColumnRef],
        Meta(description="style field -> column whose non-empty cells override the job's style"),
    ] = field(default_factory=dict)
    color_column: Annotated[ColumnRef | None, Meta(description="text colour per row")] = None
    font_column: Annotated[ColumnRef | None, Meta(description="font per row")] = None

    def override_columns(self) -> dict[str, tuple[str, str | int]]:
        """Every per-row style override, shorthands folded in: {style field: (request field, column)}.

        The request field is the one the user wrote (`color_column`, `style_columns.size`), so
        a missing column is reported against it.
        """
        columns: dict[str, tuple[str, str | int]] = {
            name: (f"style_columns.{name}", ref) for name, ref in self.style_columns.items()
        }
        for name, ref in (("color", self.color_column), ("font", self.font_column)):
            if ref is not None:
                if name in columns:
                    raise BadRequest(
                        f"{name} is mapped twice (style_columns.{name} and {name}_column)",
                        field=f"{name}_column",
                    )
                columns[name] = (f"{name}_column", ref)
        return columns


class FileSubmit(SubmitBase, kw_only=True):
    """A submit whose rows come from a file: an upload in the `imagegen-inputs` bucket (`object`)
    or a file under the server's allowed folder (`path`); text formats also take it inline."""

    object: (
        Annotated[str, Meta(min_length=1, max_length=255, description="an upload in imagegen-inputs")] | None
    ) = None
    path: (
        Annotated[
            str, Meta(min_length=1, max_length=1024, description="a file under the server's allowed folder")
        ]
        | None
    ) = None
