"""Output file names: a small template language and the sanitising that keeps names in the job.

Templates take `{row}` (the source's own row number: the sheet row a spreadsheet shows, the JSON
Lines line, the query's result row), `{index}` (the item's 0-based position among the job's
items), either zero-padded (`{row:06}`), and `{row[COLUMN]}` (a column's value). Nothing else is
interpreted: unlike `str.format`, a template can never reach attributes or items of Python
objects.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from shared.contract.errors import BadRequest

_PLACEHOLDER = re.compile(r"\{(?:(?P<index>index|row)(?::(?P<pad>0?\d{1,2}))?|row\[(?P<col>[^\]{}]+)\])\}")
# C0 and C1 controls, path separators and characters Windows refuses.
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)
# A name's stem, in bytes. With an extension and the store's temporary suffix it stays under the
# 255 bytes file systems allow, and percent-encoded in a URL (3x) under common path limits.
MAX_NAME_BYTES = 150


def _visible(ch: str) -> bool:
    """Not a format character (Cf: bidi embeddings, overrides and isolates, zero-width space and
    joiners, soft hyphen, BOM): a file name holding one can show itself as another name."""
    return unicodedata.category(ch) != "Cf"


def sanitize_name(raw: str) -> str:
    """A safe single path component from `raw`, or '' when nothing usable is left.

    Separators and characters that are illegal on common file systems become '_', invisible
    format characters (bidi controls, zero-width ones) are dropped, leading and trailing dots and
    spaces go (so '..' and hidden files cannot appear), Windows device names get a '_' prefix,
    and the result is cut to a byte budget on a character boundary.
    """
    name = "".join(filter(_visible, unicodedata.normalize("NFC", raw)))
    name = _FORBIDDEN.sub("_", name).strip(" .")
    if not name:
        return ""
    if name.split(".")[0].lower() in _RESERVED:
        name = f"_{name}"
    encoded = name.encode("utf-8")[:MAX_NAME_BYTES]
    return encoded.decode("utf-8", errors="ignore").rstrip(" .")


_EXTENSION = re.compile(r"\.[a-z0-9]{1,5}")


def is_safe_file_name(filename: str) -> bool:
    """True for one safe path component: a sanitised stem and a short lowercase extension (what
    the stores write); anything else may not be written or read as a job's file."""
    stem, dot, extension = filename.rpartition(".")
    if not dot:
        stem, extension = filename, ""
    return (
        bool(stem)
        and sanitize_name(stem) == stem
        and (not dot or bool(_EXTENSION.fullmatch("." + extension)))
    )


class NameTemplate:
    """A parsed output-name template; `render` gives the name of one item (without extension)."""

    def __init__(self, template: str, *, field: str = "name_template") -> None:
        self.template = template
        self.columns = [m["col"] for m in _PLACEHOLDER.finditer(template) if m["col"]]
        stripped = _PLACEHOLDER.sub("", template)
        if "{" in stripped or "}" in stripped:
            raise BadRequest(
                "only {row}, {index}, {row:0N}, {index:0N} and {row[COLUMN]} placeholders are allowed",
                field=field,
            )
        if not _PLACEHOLDER.search(template):
            raise BadRequest("must contain {row}, {index} or {row[COLUMN]} so names differ", field=field)
        # Names that only depend on the index or row number cannot collide, unless the byte
        # budget can cut the number off (a long literal part, e.g. many CJK characters): bound
        # the rendered size by the normalised literal part, <= 20 digits per number (or its
        # padding) and 1 byte for the '_' of a reserved name. Other names are tracked.
        pads = [int(m["pad"] or 0) for m in _PLACEHOLDER.finditer(template) if m["index"]]
        literal = len(unicodedata.normalize("NFC", stripped).encode("utf-8"))
        longest = literal + sum(max(pad, 20) for pad in pads) + 1
        self.may_collide = bool(self.columns) or longest > MAX_NAME_BYTES
        self._seen: set[str] = set()

    def render_many(
        self, indices: Iterable[int], rows: Iterable[int], values: Iterable[Mapping[str, str] | None]
    ) -> list[str]:
        """`render` of each (index, row, values), in order: the names of a chunk of items."""
        if self.template == "{row}":
            return list(map(str, rows))  # the default, for every row of most jobs: no Python step
        return list(map(self.render, indices, rows, values))

    def render(self, index: int, row: int = 0, values: Mapping[str, str] | None = None) -> str:
        """The sanitised name of item `index` (source row `row`, cells `values`); falls back to
        the row number when empty, and de-duplicates deterministically by appending `-<row>`."""
        if self.template == "{row}":
            return str(row)  # the default, once per row of every job: skip the regex
        if self.template == "{index}":
            return str(index)

        def substitute(match: re.Match[str]) -> str:
            if match["index"]:
                number = index if match["index"] == "index" else row
                pad = match["pad"]
                return f"{number:0{int(pad)}d}" if pad else str(number)
            value = (values or {}).get(match["col"], "")
            return value.replace("/", "_").replace("\\", "_")

        name = sanitize_name(_PLACEHOLDER.sub(substitute, self.template)) or str(row)
        if self.may_collide:
            # The `-<row>` form can itself be taken by an earlier name (rows "a-3", "a", "a"):
            # keep suffixing until the name is free.
            base, attempt = name, 1
            while name.casefold() in self._seen:
                name = f"{base}-{row}" if attempt == 1 else f"{base}-{row}-{attempt}"
                attempt += 1
            self._seen.add(name.casefold())
        return name
