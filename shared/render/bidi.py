"""A compact bidi resolver for mixed-direction lines built from several fonts.

raqm runs the full Unicode bidi algorithm, but only inside one `getmask2` call, i.e. one font.
With font fallback a line is several runs in several fonts, so their visual order must be
decided here. This implements the parts of UAX #9 that matter for plain text without explicit
embeddings (those are stripped by hygiene): paragraph level (P2/P3), strong and number types,
neutrals between equal strong types (N1/N2), numbers after RTL (W2, I2), and reordering (L2).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TypeVar

import regex

# Any character whose bidi class could be R or AL; a quick test to skip bidi for most text.
_RTL_CHARS = regex.compile(r"[\p{Bidi_Class=R}\p{Bidi_Class=AL}]")

T = TypeVar("T")


def has_rtl(text: str) -> bool:
    return _RTL_CHARS.search(text) is not None


def _strong(cluster: str) -> str:
    """'L', 'R', 'N' (number) or '' (neutral) for a grapheme cluster, from its first char."""
    klass = unicodedata.bidirectional(cluster[0])
    if klass == "L":
        return "L"
    if klass in ("R", "AL"):
        return "R"
    if klass in ("EN", "AN"):
        return "N"
    return ""


def paragraph_level(clusters: Sequence[str], direction: str) -> int:
    """0 for LTR, 1 for RTL: explicit, else the first strong character decides (P2/P3)."""
    if direction == "ltr":
        return 0
    if direction == "rtl":
        return 1
    for cluster in clusters:
        kind = _strong(cluster)
        if kind == "L":
            return 0
        if kind == "R":
            return 1
    return 0


def resolve_levels(clusters: Sequence[str], base: int) -> list[int]:
    """An embedding level per cluster (0, 1 or 2)."""
    kinds = [_strong(c) for c in clusters]
    # W2/W7: a number takes the type of the strong character before it for neutral resolution.
    prev = "R" if base else "L"
    effective: list[str] = []
    for kind in kinds:
        if kind in ("L", "R"):
            prev = kind
            effective.append(kind)
        elif kind == "N":
            effective.append("NR" if prev == "R" else "NL")
        else:
            effective.append("")
    levels: list[int] = [base] * len(clusters)
    base_kind = "R" if base else "L"
    n = len(clusters)
    i = 0
    while i < n:
        kind = effective[i]
        if kind:
            if kind == "L":
                levels[i] = 2 if base else 0
            elif kind == "R":
                levels[i] = 1
            elif kind == "NR":
                levels[i] = 2  # I2: numbers inside RTL text stay left-to-right
            else:
                levels[i] = 2 if base else 0
            i += 1
            continue
        # A run of neutrals: N1 if both sides agree, else N2 (the paragraph direction).
        j = i
        while j < n and not effective[j]:
            j += 1
        before = effective[i - 1] if i > 0 else base_kind
        after = effective[j] if j < n else base_kind
        side_b = "R" if before in ("R", "NR") else "L" if before else base_kind
        side_a = "R" if after in ("R", "NR") else "L" if after else base_kind
        resolved = side_b if side_b == side_a else base_kind
        level = (1 if resolved == "R" else (2 if base else 0)) if side_b == side_a else base
        for k in range(i, j):
            levels[k] = level
        i = j
    return levels


def reorder(items: Sequence[T], levels: Sequence[int]) -> list[T]:
    """L2: from the highest level down to 1, reverse every run at that level or higher."""
    order = list(range(len(items)))
    if not levels:
        return []
    highest = max(levels)
    lowest_odd = min((lv for lv in levels if lv % 2), default=highest + 1)
    lv_seq = list(levels)
    for level in range(highest, lowest_odd - 1, -1):
        i = 0
        while i < len(order):
            if lv_seq[i] >= level:
                j = i
                while j < len(order) and lv_seq[j] >= level:
                    j += 1
                order[i:j] = reversed(order[i:j])
                lv_seq[i:j] = reversed(lv_seq[i:j])
                i = j
            else:
                i += 1
    return [items[k] for k in order]
