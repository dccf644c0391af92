"""Layout: paragraphs -> measured pieces -> lines -> pen positions on baselines.

Coordinates are in pixels with y growing downwards; the first line's top is y = 0 and the text
box starts at x = 0. The raster step later adds ink overhangs and padding. Nothing is allocated
here except small Python objects, so limits can be checked before any image exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.render import bidi
from shared.render.faces import FaceCache, FaceKey
from shared.render.itemize import FontPicker, Piece, itemize
from shared.render.linebreak import wrap
from shared.render.segment import clusters_of

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
    language: str | None = None


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
                # Upright stacking in em cells: the cells, not the glyphs, set the advance.
                cells = len(piece.clusters)
                spaces = cells - len(clusters_of(piece.text.rstrip()))
                piece.advance = float(p.size * cells)
                piece.trail = float(p.size * spaces)
                continue
            em = self.faces.em_advance(key, piece.text) if piece.cjk else None
            piece.advance = (
                em
                if em is not None
                else self.faces.advance(key, piece.text, piece.direction, features, p.language)
            )
            spaces = len(piece.text) - len(piece.text.rstrip())
            # Trailing spaces measured on their own (cached per count) rather than re-shaping
            # the word without them: kerning against a space is negligible.
            piece.trail = (
                self.faces.advance(key, piece.text[-spaces:], piece.direction, features, p.language)
                if spaces
                else 0.0
            )

    def layout(self, text: str, picker: FontPicker, p: LayoutParams) -> Layout:
        features: tuple[str, ...] = ("vert",) if p.vertical else ()
        split_all = p.vertical or p.letter_spacing != 0
        out = Layout()
        lines: list[tuple[list[Piece], bidi.Paragraph, bool]] = []  # pieces, paragraph, last line
        for paragraph_text in text.split("\n"):
            pieces, missing, paragraph = itemize(
                paragraph_text, picker, p.direction, split_all, self.faces.is_color, p.limit is not None
            )
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
                lines.append((line, paragraph, i == len(wrapped) - 1))
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
        lines: list[tuple[list[Piece], bidi.Paragraph, bool]],
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
        for index, ((line, paragraph, last), width) in enumerate(zip(lines, widths, strict=True)):
            base = paragraph.base
            ascent, descent = self._line_metrics(line, picker, p)
            baseline = float(ascent) if index == 0 else y_top + (previous_descent + ascent) * p.line_spacing
            y_top = baseline
            previous_descent = descent
            visual = _visual_order(line, paragraph)
            # start/end follow the paragraph direction; left/right are absolute, as in CSS.
            align = p.align
            gap_extra = 0.0
            if align == "justify":
                if not last and len(visual) > 1 and box > width:
                    gap_extra = (box - width) / (len(visual) - 1)
                align = "start"
            if align in ("start", "end"):
                align = "right" if (align == "start") == bool(base) else "left"
            if align == "left":
                x = 0.0
            elif align == "right":
                x = box - width
            else:
                x = (box - width) / 2
            if gap_extra:
                x = 0.0
            for piece in visual:
                # The line's trailing spaces take the paragraph level (UAX #9 L1) and sit past
                # the line end: the logically last piece takes no room for them.
                hang = piece is line[-1]
                advance = piece.advance - piece.trail if hang else piece.advance
                # Trailing spaces have no ink but would widen the bitmap: draw the text without
                # them (an RTL piece's trailing space sits at its visual left, so shift by it).
                ink_text = piece.text.rstrip()
                if ink_text:
                    shift = piece.trail if piece.level % 2 and not hang else 0.0
                    key = FaceKey(piece.font, p.size, p.variation)
                    out.placed.append(
                        Placed(
                            key,
                            ink_text,
                            piece.direction,
                            (),
                            round(x + shift),
                            round(baseline),
                            piece.color,
                            p.language,
                        )
                    )
                x += advance + spacing + gap_extra
        out.width = round(box)
        out.height = round(y_top + previous_descent) if lines else 0

    def _place_vertical(
        self,
        lines: list[tuple[list[Piece], bidi.Paragraph, bool]],
        picker: FontPicker,
        p: LayoutParams,
        features: tuple[str, ...],
        out: Layout,
    ) -> None:
        cell = p.size + p.letter_spacing
        ascent, descent = self._line_metrics([pc for line, _, _ in lines for pc in line], picker, p)
        pitch = round((ascent + descent) * p.line_spacing)
        lengths = [
            max(0.0, sum(len(pc.clusters) for pc in line) * cell - p.letter_spacing) for line, _, _ in lines
        ]
        box = float(p.box) if p.box is not None else max(lengths, default=0.0)
        columns = len(lines)
        total_width = pitch * columns
        for col, ((line, _, _), length) in enumerate(zip(lines, lengths, strict=True)):
            # Columns run right to left; glyphs are centred on the column axis.
            center = total_width - col * pitch - pitch / 2
            if p.align == "center":
                y = (box - length) / 2
            elif p.align in ("right", "end"):
                y = box - length
            else:
                y = 0.0
            for piece in line:
                # One cell per cluster (a CJK piece may carry trailing spaces, which keep
                # their cells but draw nothing).
                ink_text = piece.text.rstrip()
                if ink_text:
                    key = FaceKey(piece.font, p.size, p.variation)
                    piece_features = () if piece.color else features
                    advance = self.faces.advance(key, ink_text, "ltr", piece_features, p.language)
                    out.placed.append(
                        Placed(
                            key,
                            ink_text,
                            "ltr",
                            piece_features,
                            round(center - advance / 2),
                            round(y + _EMBOX_ASCENT * p.size),
                            piece.color,
                            p.language,
                        )
                    )
                y += cell * len(piece.clusters)
        out.width = total_width
        out.height = round(box)


def _visual_order(line: list[Piece], paragraph: bidi.Paragraph) -> list[Piece]:
    """The line's pieces from left to right (UAX #9 L1/L2 on the line's characters; a piece is
    one level, so it lands where its first character does)."""
    if paragraph.plain or not line:
        return line
    start = line[0].start
    end = line[-1].start + len(line[-1].text)
    _, order = bidi.line(paragraph, start, end)
    where = {logical: visual for visual, logical in enumerate(order)}
    return sorted(line, key=lambda piece: where[piece.start - start])
