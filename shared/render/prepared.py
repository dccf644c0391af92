"""What an engine derives from a Style before drawing, computed once per style object.

A task's items share one Style object (or one per distinct per-row override, which the renderer
caches), so colours, the coverage palette, padding, the layout parameters and the box limits
are worked out once and looked up by identity on every later item instead of being re-parsed
per item (~10 us an item, measured in bench/bench_render.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from shared.contract.colors import RGBA, parse_color
from shared.contract.errors import RenderError
from shared.contract.style import Style, padding_box
from shared.render.layout import Layout, LayoutParams
from shared.render.raster import MaskPalette, mask_palette

# Distinct style objects remembered per engine; past this the memo starts afresh.
MAX_STYLES = 512


@lru_cache(maxsize=1024)
def _parse_color(text: str) -> RGBA:
    return parse_color(text)


def color_of(text: str) -> RGBA:
    """A colour, or RenderError: styles built without parse_style can still carry a bad colour,
    and that must fail the item, not the batch."""
    try:
        return _parse_color(text)
    except ValueError as exc:
        raise RenderError(f"bad colour: {exc}") from None


def _params(style: Style, pad: tuple[int, int, int, int]) -> LayoutParams:
    vertical = style.orientation == "vertical"
    if vertical:
        fixed = style.height - pad[0] - pad[2] if style.height else None
        limit_src = style.max_height
    else:
        fixed = style.width - pad[1] - pad[3] if style.width else None
        limit_src = style.max_width
    limits = [v for v in (fixed, limit_src) if v is not None]
    variation: tuple[tuple[str, float], ...] = tuple(sorted((style.axes or {}).items()))
    if style.weight is not None:
        variation = tuple(sorted({**dict(variation), "wght": style.weight}.items()))
    return LayoutParams(
        size=style.size,
        variation=variation,
        language=style.language,
        direction=style.direction,
        vertical=vertical,
        align=style.align,
        line_spacing=style.line_spacing,
        letter_spacing=style.letter_spacing,
        limit=float(min(limits)) if limits else None,
        box=fixed,
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """One style, digested for drawing."""

    style: Style
    pad: tuple[int, int, int, int]  # top, right, bottom, left
    params: LayoutParams  # at style.size
    fill: RGBA
    stroke: RGBA | None  # None when the style has no stroke
    background: RGBA
    shadow: tuple[int, int, float, RGBA] | None  # dx, dy, blur, colour
    one_colour: bool  # every pixel a function of one coverage value (emoji aside)
    palette: MaskPalette  # coverage level -> pixel, for one-colour items
    alpha_palette: MaskPalette | None  # alpha -> pixel, when every layer has one colour
    main: int | None  # text-area limit along the lines (columns, when vertical)
    cross: int | None  # and across them

    def params_at(self, size: int) -> LayoutParams:
        return self.params if size == self.params.size else replace(self.params, size=size)

    def fits(self, layout: Layout) -> bool:
        """Whether a layout fits the box without splitting a word (auto-fit's test)."""
        if layout.split_words:
            return False
        along, across = (
            (layout.height, layout.width) if self.params.vertical else (layout.width, layout.height)
        )
        return (self.main is None or along <= self.main) and (self.cross is None or across <= self.cross)


def prepare(style: Style) -> Prepared:
    pad = padding_box(style.padding)
    fill = color_of(style.color)
    stroke = None
    if style.stroke_width:
        stroke = color_of(style.stroke_color) if style.stroke_color is not None else fill
    background = color_of(style.background)
    shadow = None
    if style.shadow is not None:
        s = style.shadow
        shadow = (s.offset_x, s.offset_y, s.blur, color_of(s.color))
    layers = {fill[:3], *([stroke[:3]] if stroke else []), *([shadow[3][:3]] if shadow else [])}
    alpha_palette = None
    if len(layers) == 1 and background[3] == 0:
        # Over a transparent canvas, same-colour layers composite to that colour at some alpha.
        (rgb,) = layers
        alpha_palette = MaskPalette.of((bytes(background[:3]),) + (bytes(rgb),) * 255, bytes(range(256)))
    inner_w = style.width - pad[1] - pad[3] if style.width else None
    inner_h = style.height - pad[0] - pad[2] if style.height else None
    max_w, max_h = style.max_width or inner_w, style.max_height or inner_h
    vertical = style.orientation == "vertical"
    return Prepared(
        style=style,
        pad=pad,
        params=_params(style, pad),
        fill=fill,
        stroke=stroke,
        background=background,
        shadow=shadow,
        one_colour=shadow is None and (stroke is None or stroke == fill),
        palette=mask_palette(fill, background),
        alpha_palette=alpha_palette,
        main=max_h if vertical else max_w,
        cross=max_w if vertical else max_h,
    )


class StyleMemo:
    """Prepared styles by object identity (Style holds dicts, so it cannot be hashed).

    Each entry keeps its style alive, so an id cannot be reused while it is remembered.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, Prepared] = {}

    def get(self, style: Style) -> Prepared:
        found = self._by_id.get(id(style))
        if found is not None and found.style is style:
            return found
        prepared = prepare(style)
        if len(self._by_id) >= MAX_STYLES:
            self._by_id.clear()
        self._by_id[id(style)] = prepared
        return prepared
