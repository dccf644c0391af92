"""Output file names: a small template language and the sanitising that keeps names in the job.

Templates take `{index}` (the item's 0-based position in the source), `{index:06}` (zero-padded)
and `{row[COLUMN]}` (a column's value). Nothing else is interpreted: unlike `str.format`, a
template can never reach attributes or items of Python objects.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from shared.contract.errors import BadRequest

_PLACEHOLDER = re.compile(r"\{(?:(?P<index>index)(?::(?P<pad>0?\d{1,2}))?|row\[(?P<col>[^\]{}]+)\])\}")
# Fix: C1 control characters (U+0080-U+009F) are control characters too, and were kept.
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)
MAX_NAME_BYTES = 200


def sanitize_name(raw: str) -> str:
    """A safe single path component from `raw`, or '' when nothing usable is left.

    Separators and characters that are illegal on common file systems become '_', leading and
    trailing dots and spaces go (so '..' and hidden files cannot appear), Windows device names
    get a '_' prefix, and the result is cut to a byte budget on a character boundary.
    """
    name = unicodedata.normalize("NFC", raw)
    name = _FORBIDDEN.sub("_", name).strip(" .")
    if not name:
        return ""
    if name.split(".")[0].lower() in _RESERVED:
        name = f"_{name}"
    encoded = name.encode("utf-8")[:MAX_NAME_BYTES]
    return encoded.decode("utf-8", errors="ignore").rstrip(" .")


class NameTemplate:
    """A parsed output-name template; `render` gives the name of one item (without extension)."""

    def __init__(self, template: str, *, field: str = "name_template") -> None:
        self.template = template
        self.columns = [m["col"] for m in _PLACEHOLDER.finditer(template) if m["col"]]
        stripped = _PLACEHOLDER.sub("", template)
        if "{" in stripped or "}" in stripped:
            raise BadRequest(
                "only {index}, {index:0N} and {row[COLUMN]} placeholders are allowed", field=field
            )
        if not _PLACEHOLDER.search(template):
            raise BadRequest("must contain {index} or {row[COLUMN]} so names differ", field=field)
        # Names that only depend on the index cannot collide; others are tracked.
        # Fix: unless the byte budget can cut the index off (a long literal part, e.g. many CJK
        # characters): then every name became the same cut prefix and the files overwrote each
        # other. Bound the rendered size: the normalised literal part, <= 20 digits per index
        # (or its padding) and 1 byte for the '_' of a reserved name.
        pads = [int(m["pad"] or 0) for m in _PLACEHOLDER.finditer(template) if m["index"]]
        literal = len(unicodedata.normalize("NFC", stripped).encode("utf-8"))
        longest = literal + sum(max(pad, 20) for pad in pads) + 1
        self.may_collide = bool(self.columns) or longest > MAX_NAME_BYTES
        self._seen: set[str] = set()

    def render(self, index: int, row: Mapping[str, str] | None = None) -> str:
        """The sanitised name of item `index`; falls back to the index when empty, and
        de-duplicates deterministically by appending `-<index>`."""
        if self.template == "{index}":
            return str(index)  # the default, once per row of every job: skip the regex

        def substitute(match: re.Match[str]) -> str:
            if match["index"]:
                pad = match["pad"]
                return f"{index:0{int(pad)}d}" if pad else str(index)
            value = (row or {}).get(match["col"], "")
            return value.replace("/", "_").replace("\\", "_")

        name = sanitize_name(_PLACEHOLDER.sub(substitute, self.template)) or str(index)
        if self.may_collide:
            # Fix: the `-<index>` form could itself be taken by an earlier name (rows "a-2", "a",
            # "a" gave item 2 the name of item 0); keep suffixing until the name is free.
            base, attempt = name, 1
            while name.casefold() in self._seen:
                name = f"{base}-{index}" if attempt == 1 else f"{base}-{index}-{attempt}"
                attempt += 1
            self._seen.add(name.casefold())
        return name
