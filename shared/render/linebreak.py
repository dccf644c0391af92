"""Greedy line breaking over measured pieces, for text with or without spaces.

Break opportunities come from itemization (`Piece.break_after`, i.e. UAX #14 with the tailorings
of `segment.py`: after spaces and hyphens, between CJK characters except where kinsoku forbids
it, between Thai/Lao/Khmer/Myanmar words). A word longer than the line is split between clusters.
Pillow's `ImageText.wrap` splits on whitespace only and refuses Chinese, hence this module.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from shared.render.itemize import Piece, split_piece


def wrap(
    pieces: list[Piece],
    limit: float,
    spacing: float,
    measure: Callable[[list[Piece]], None],
) -> tuple[list[list[Piece]], bool]:
    """Lines of pieces no wider than `limit` where possible; True if a word had to be split.

    `measure` fills in `advance`/`trail` of freshly split pieces.
    """
    lines: list[list[Piece]] = []
    line: list[Piece] = []
    width = 0.0
    last_break = -1
    split = False
    queue = deque(pieces)
    while queue:
        piece = queue.popleft()
        needed = width + piece.advance - piece.trail
        if needed > limit and line:
            if last_break >= 0:
                rest = line[last_break + 1 :]
                lines.append(line[: last_break + 1])
                queue.appendleft(piece)
                queue.extendleft(reversed(rest))
            elif len(piece.clusters) > 1 and not piece.cjk:
                parts = split_piece(piece)
                measure(parts)
                queue.extendleft(reversed(parts))
                split = True
                continue
            else:
                # No opportunity anywhere on the line: break here regardless (rare: a long
                # run of kinsoku punctuation, or two fonts inside one word).
                lines.append(line)
                queue.appendleft(piece)
                split = True
            line, width, last_break = [], 0.0, -1
            continue
        if not line and piece.advance - piece.trail > limit and len(piece.clusters) > 1:
            parts = split_piece(piece)
            measure(parts)
            queue.extendleft(reversed(parts))
            split = True
            continue
        line.append(piece)
        width += piece.advance + spacing
        if piece.break_after:
            last_break = len(line) - 1
    if line:
        lines.append(line)
    return lines, split
