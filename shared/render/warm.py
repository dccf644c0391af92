"""What to render ahead of a job so its first items find warm glyph caches.

A render child starts with empty caches, and rasterising a glyph for the first time costs
~60 us for a CJK character (FreeType outlines) against a few microseconds to paste it once
cached. Chinese text draws on a small common core: the 3,755 characters of GB 2312 level 1,
which the standard selected by frequency of use, are read here from Python's own `gb2312`
codec (no data file to ship). Rendering them once per style costs ~0.25 s and ~8 MB of masks
at 48 px; larger sizes warm them only while they fit a quarter of the mask cache.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import msgspec

from shared.contract.style import Style

# GB 2312 level 1: rows 16-55 (lead bytes 0xB0-0xD7), 94 cells each (0xA1-0xFE).
_LEVEL1_LEADS = range(0xB0, 0xD8)
_CELLS = range(0xA1, 0xFF)
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Characters per warm-up line: one line, no wrapping, well inside the canvas limits.
LINE_CHARS = 64
# Rough mask bytes per glyph at size s: an ideograph's ink box is about 0.9 em square.
_INK_SIDE = 0.9


@lru_cache(maxsize=1)
def common_han() -> str:
    """GB 2312 level-1 hanzi in code order (3,755 characters)."""
    chars = []
    for lead in _LEVEL1_LEADS:
        for cell in _CELLS:
            try:
                chars.append(bytes((lead, cell)).decode("gb2312"))
            except UnicodeDecodeError:
                continue  # row 55 ends at cell 0xF9
    return "".join(chars)


def unboxed(style: Style) -> Style:
    """The style drawing at its own size on one unbounded line: what glyph warming needs."""
    return msgspec.structs.replace(
        style,
        width=None,
        height=None,
        max_width=None,
        max_height=None,
        auto_fit=False,
        padding=0,
        shadow=None,
        letter_spacing=0.0,
    )


def warm_texts(samples: Sequence[str], style: Style, budget: int) -> list[str]:
    """Lines of common characters worth pre-rasterising for `style`, given the samples.

    Empty unless the samples hold Han characters and the masks fit a quarter of `budget`.
    """
    if not any(_HAN.search(text) for text in samples):
        return []
    han = common_han()
    layers = 2 if style.stroke_width else 1
    per_glyph = int((style.size * _INK_SIDE + 2 * style.stroke_width) ** 2) * layers
    if per_glyph * len(han) > budget // 4:
        return []
    return [han[i : i + LINE_CHARS] for i in range(0, len(han), LINE_CHARS)]
