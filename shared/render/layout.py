"""Layout: paragraphs -> measured pieces -> lines -> pen positions on baselines.

Coordinates are in pixels with y growing downwards; the first line's top is y = 0 and the text
box starts at x = 0. The raster step later adds ink overhangs and padding. Nothing is allocated
here except small Python objects, so limits can be checked before any image exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.render.bidi import reorder
from shared.render.faces import FaceCache, FaceKey
from shared.render.itemize import FontPicker, Piece, itemize
from shared.render.linebreak import wrap

# Ideographic em box: the baseline sits at 0.88 em below the top of a vertical cell
# (the OpenType ideographic embox of CJK fonts is 880/-120 units per 1000).
_EMBOX_ASCENT = 0.88


@dataclass(frozen=True, slots=True)
class Placed:
    """A piece at its pen position (left edge, baseline)."""

    key: FaceKey
    text: str
    direction: str
    features: tuple[str, ...]
    x: int
    y: int
    color: bool


@dataclass(slots=True)
class Layout:
    placed: list[Placed] = field(default_factory=list)
    width: int = 0  # the text box (advance-based, before ink overhang)
    height: int = 0
    lines: int = 0
    split_words: bool = False
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LayoutParams:
    size: int
    variation: tuple[tuple[str, float], ...]
    language: str | None
    direction: str
    vertical: bool
    align: str
    line_spacing: float
    letter_spacing: float
    limit: float | None  # wrap extent along the line (width, or height when vertical)
    box: int | None  # fixed extent along the line for alignment, else shrink to fit


class Layouter:
    """Lays text out with one engine's caches."""

    def __init__(self, faces: FaceCache) -> None:
        self.faces = faces

    def _measure(self, pieces: list[Piece], p: LayoutParams, features: tuple[str, ...]) -> None:
        for piece in pieces:
            key = FaceKey(piece.font, p.size, p.variation)
            if p.vertical:
                # Upright stacking in em cells: the cell, not the glyph, sets the advance.
                piece.advance = float(p.size)
                piece.trail = float(p.size) if piece.text.isspace() else 0.0
                continue
            piece.advance = self.faces.advance(key, piece.text, piece.direction, features, p.language)
            stripped = piece.text.rstrip()
            if len(stripped) != len(piece.text):
                piece.trail = piece.advance - (
                    self.faces.advance(key, stripped, piece.direction, features, p.language)
                    if stripped
                    else 0.0
                )
            else:
                piece.trail = 0.0

    def layout(self, text: str, picker: FontPicker, p: LayoutParams) -> Layout:
        features: tuple[str, ...] = ("vert",) if p.vertical else ()
        split_all = p.vertical or p.letter_spacing != 0
        out = Layout()
        lines: list[tuple[list[Piece], int, bool]] = []  # pieces, paragraph level, last line
        for paragraph in text.split("\n"):
            pieces, missing, base = itemize(paragraph, picker, p.direction, split_all, self.faces.is_color)
            out.missing.extend(missing)
            self._measure(pieces, p, features)
            if p.limit is not None and pieces:
                wrapped, split = wrap(
                    pieces,
                    p.limit,
                    p.letter_spacing,
                    lambda parts: self._measure(parts, p, features),
                )
                out.split_words = out.split_words or split
            else:
                wrapped = [pieces]
            for i, line in enumerate(wrapped):
                lines.append((line, base, i == len(wrapped) - 1))
        out.lines = len(lines)
        if p.vertical:
            self._place_vertical(lines, picker, p, features, out)
        else:
            self._place_horizontal(lines, picker, p, out)
        return out

    def _line_metrics(self, line: list[Piece], picker: FontPicker, p: LayoutParams) -> tuple[int, int]:
        fonts = {picker.chain[0]} | {piece.font for piece in line}
        ascent = descent = 0
        for font in fonts:
            a, d = self.faces.metrics(FaceKey(font, p.size, p.variation))
            ascent, descent = max(ascent, a), max(descent, d)
        return ascent, descent

    def _place_horizontal(
        self,
        lines: list[tuple[list[Piece], int, bool]],
        picker: FontPicker,
        p: LayoutParams,
        out: Layout,
    ) -> None:
        spacing = p.letter_spacing
        widths: list[float] = []
        for line, _, _ in lines:
            w = sum(pc.advance for pc in line) + spacing * (len(line) - 1) - line[-1].trail if line else 0.0
            widths.append(max(0.0, w))
        box = float(p.box) if p.box is not None else max(widths, default=0.0)
        y_top = 0.0
        previous_descent = 0
        for index, ((line, base, last), width) in enumerate(zip(lines, widths, strict=True)):
            ascent, descent = self._line_metrics(line, picker, p)
            baseline = float(ascent) if index == 0 else y_top + (previous_descent + ascent) * p.line_spacing
            y_top = baseline
            previous_descent = descent
            visual = (
                reorder(line, [pc.level for pc in line]) if base or any(pc.level for pc in line) else line
            )
            align = p.align
            gap_extra = 0.0
            if align == "justify":
                if not last and len(visual) > 1 and box > width:
                    gap_extra = (box - width) / (len(visual) - 1)
                align = "right" if base else "left"
            if align == "left":
                x = 0.0
            elif align == "right":
                x = box - width
            else:
                x = (box - width) / 2
            if base and align in ("left", "right") and p.align != "justify":
                pass  # explicit alignment wins over paragraph direction, as in CSS `left/right`
            for piece in visual:
                key = FaceKey(piece.font, p.size, p.variation)
                out.placed.append(
                    Placed(key, piece.text, piece.direction, (), round(x), round(baseline), piece.color)
                )
                x += piece.advance + spacing + gap_extra
        out.width = round(box)
        out.height = round(y_top + previous_descent) if lines else 0

    def _place_vertical(
        self,
        lines: list[tuple[list[Piece], int, bool]],
        picker: FontPicker,
        p: LayoutParams,
        features: tuple[str, ...],
        out: Layout,
    ) -> None:
        cell = p.size + p.letter_spacing
        ascent, descent = self._line_metrics([pc for line, _, _ in lines for pc in line], picker, p)
        pitch = round((ascent + descent) * p.line_spacing)
        lengths = [max(0.0, len(line) * cell - p.letter_spacing) for line, _, _ in lines]
        box = float(p.box) if p.box is not None else max(lengths, default=0.0)
        columns = len(lines)
        total_width = pitch * columns
        for col, ((line, _, _), length) in enumerate(zip(lines, lengths, strict=True)):
            # Columns run right to left; glyphs are centred on the column axis.
            center = total_width - col * pitch - pitch / 2
            if p.align in ("center",):
                y = (box - length) / 2
            elif p.align == "right":
                y = box - length
            else:
                y = 0.0
            for piece in line:
                key = FaceKey(piece.font, p.size, p.variation)
                advance = self.faces.advance(key, piece.text, "ltr", features, p.language)
                baseline = y + _EMBOX_ASCENT * p.size
                out.placed.append(
                    Placed(
                        key,
                        piece.text,
                        "ltr",
                        () if piece.color else features,
                        round(center - advance / 2),
                        round(baseline),
                        piece.color,
                    )
                )
                y += cell
        out.width = total_width
        out.height = round(box)
