"""Text hygiene and size limits, applied before any layout or image allocation.

Input text arrives from CSV files and databases: it may carry Windows line ends, decomposed
accents, control characters, invisible zero-width characters and bidi overrides (which can
reorder what a reader sees, the "Trojan Source" trick). Policy: NFC, fold line ends (every
mandatory break of UAX #14), tabs become spaces, and the rest is stripped or refused
(`Style.control_chars`). ZWJ and ZWNJ stay: emoji sequences and Persian/Indic shaping need them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from shared.contract.errors import RenderError

# Bidi embeddings, overrides and isolates, plus the implicit marks: layout decides direction.
_BIDI_CONTROLS = frozenset([0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
# Invisible characters with no shaping role (ZWSP, word joiner, BOM, soft hyphen...).
_ZERO_WIDTH = frozenset([0x200B, 0x2060, 0xFEFF, 0x00AD, 0x180E, *range(0x2061, 0x2065)])
_KEEP = frozenset([0x200C, 0x200D, 0x0A])
# Every mandatory break of UAX #14 (BK, CR, NL classes) ends a line; a tab is one space.
_LINE_ENDS = {0x0D: "\n", 0x0B: "\n", 0x0C: "\n", 0x85: "\n", 0x2028: "\n", 0x2029: "\n", 0x09: " "}


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-item limits; each failure fails that one item with a reason."""

    max_chars: int = 5000
    max_lines: int = 200
    max_pixels: int = 40_000_000
    max_side: int = 16384


def _unwanted(ch: str) -> bool:
    cp = ord(ch)
    if cp in _KEEP:
        return False
    if cp in _BIDI_CONTROLS or cp in _ZERO_WIDTH:
        return True
    category = unicodedata.category(ch)
    # Cc: C0/C1 controls; Cs: lone surrogates; Co/Cn: private use and unassigned are allowed
    # (a server font may map PUA), so only controls and surrogates go.
    return category in ("Cc", "Cs")


def clean_text(text: str, policy: str, limits: Limits) -> str:
    """Normalise `text` for layout; raise RenderError for refused content or limits."""
    if len(text) > limits.max_chars * 4:
        # Checked before normalising so a hostile megabyte string costs nothing.
        raise RenderError(f"text has {len(text)} characters; the limit is {limits.max_chars}")
    text = text.replace("\r\n", "\n")
    if not text.isprintable():  # every character _LINE_ENDS maps is unprintable
        text = text.translate(_LINE_ENDS)
    text = unicodedata.normalize("NFC", text)
    if not text.isprintable():
        bad = [ch for ch in text if _unwanted(ch)]
        if bad:
            if policy == "refuse":
                names = ", ".join(sorted({f"U+{ord(c):04X}" for c in bad}))
                raise RenderError(f"text contains control/invisible characters: {names}")
            text = "".join(ch for ch in text if not _unwanted(ch))
    if len(text) > limits.max_chars:
        raise RenderError(f"text has {len(text)} characters; the limit is {limits.max_chars}")
    if text.count("\n") + 1 > limits.max_lines:
        raise RenderError(f"text has {text.count(chr(10)) + 1} lines; the limit is {limits.max_lines}")
    if not text.strip():
        raise RenderError("text is empty after removing control and invisible characters")
    return text


def check_canvas(width: int, height: int, limits: Limits) -> None:
    """Refuse a canvas before it is allocated (Pillow itself never refuses)."""
    if width > limits.max_side or height > limits.max_side:
        raise RenderError(f"image would be {width}x{height} px; each side is limited to {limits.max_side}")
    if width * height > limits.max_pixels:
        raise RenderError(
            f"image would be {width}x{height} = {width * height} px; the limit is {limits.max_pixels}"
        )
