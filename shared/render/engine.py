"""RenderEngine: text + Style -> encoded PNG/WebP, with fallback fonts and limits.

The pipeline per item: hygiene and limits -> layout (itemize, fallback, bidi, wrap, auto-fit)
-> canvas size checked against limits -> masks -> palette PNG (single colour on transparent)
or RGBA composite -> bytes. All caches (faces, advances, glyph masks, fallback pickers) live in
the engine, so an engine must be used by one thread at a time; a lock enforces that.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from shared.contract.errors import ImagegenError, RenderError
from shared.contract.style import Style
from shared.render.encode import encode_mask, encode_rgba, smallest
from shared.render.faces import MASK_CACHE_BYTES, FaceCache
from shared.render.fonts import FontCatalogue, default_catalogue
from shared.render.hygiene import Limits, check_canvas, clean_text
from shared.render.itemize import FontPicker
from shared.render.layout import Layout, Layouter
from shared.render.prepared import Prepared, StyleMemo, prepare
from shared.render.raster import (
    Inked,
    MaskPalette,
    compose_rgba,
    draw_masks,
    has_color_pieces,
    ink,
    ink_box,
)
from shared.render.warm import unboxed, warm_texts


@dataclass(frozen=True, slots=True)
class RenderedImage:
    """One encoded image and what a result message reports about it."""

    data: bytes
    width: int
    height: int
    format: str  # "png" | "webp"
    missing_glyphs: tuple[str, ...] = ()
    render_seconds: float = 0.0  # layout and rasterisation
    encode_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Placement:
    """One shaped piece of text at its pen position (left end of its baseline) on the canvas."""

    font: str
    size: int
    text: str
    direction: str
    features: tuple[str, ...]
    x: int
    y: int
    color: bool


@dataclass(frozen=True, slots=True)
class _Drawn:
    """A rasterised item before encoding: an L coverage mask plus its palette, or RGBA."""

    image: Image.Image
    palette: MaskPalette | None
    missing: tuple[str, ...]
    alpha_palette: MaskPalette | None = None  # an RGBA image that may be alpha-indexed
    filtered: bool = False  # a mask with a leading PNG filter column (one pixel wider)

    @property
    def size(self) -> tuple[int, int]:
        return (self.image.width - self.filtered, self.image.height)

    def picture(self) -> Image.Image:
        """The image itself, without any filter column."""
        if not self.filtered:
            return self.image
        return self.image.crop((1, 0, self.image.width, self.image.height))


@dataclass(frozen=True, slots=True)
class _Frame:
    """Where the layout lands on the canvas."""

    width: int
    height: int
    origin: tuple[int, int]


class RenderEngine:
    """Renders items one at a time with cached fonts and glyphs."""

    def __init__(
        self,
        catalogue: FontCatalogue | None = None,
        *,
        limits: Limits | None = None,
        png_effort: Literal["fast", "smallest"] = "fast",
    ) -> None:
        """`png_effort="smallest"` runs every PNG through oxipng (`encode.smallest`): files
        7-13 % smaller at 40-80x the encode time, for outputs that are stored or served long."""
        self.catalogue = catalogue if catalogue is not None else default_catalogue()
        self.limits = limits or Limits()
        self.png_effort = png_effort
        self.faces = FaceCache(self.catalogue)
        self._layouter = Layouter(self.faces)
        self._pickers: dict[str, FontPicker] = {}
        self._styles = StyleMemo()
        self._lock = threading.Lock()

    # --- public ----------------------------------------------------------------------------

    def render(self, text: str, style: Style) -> RenderedImage:
        """Render one item; raises RenderError when this item cannot be rendered."""
        with self._lock:
            return self._render(text, style)

    def warm_up(self, fonts: tuple[str, ...] = ("sans",)) -> None:
        """Load coverage tables and faces ahead of the first item (about a second for the
        default chain), so a service pays it at start-up rather than on its first task."""
        with self._lock:
            for font in fonts:
                self._render("Warm 预热 ٠ א क 😀", Style(font=font))

    def warm(self, style: Style, samples: Iterable[str] = ()) -> int:
        """Fill the caches for `style` before its first item; returns the glyph masks cached.

        Renders the samples (a job's first items, say: their words, numbers and faces) and,
        when they hold Han characters, the common ones (`warm.common_han`) at the style's size,
        so a render child starts where a long-running one would be. A sample (or a style) that
        cannot be rendered is skipped: warming never fails a job; its items report the reason.
        """
        with self._lock:
            texts = list(samples)
            try:
                prep, plain = self._styles.get(style), prepare(unboxed(style))
            except ImagegenError:
                return self.faces.cached_masks
            lines = warm_texts(texts, style, MASK_CACHE_BYTES)
            for text, how in [*((t, prep) for t in texts), *((line, plain) for line in lines)]:
                with contextlib.suppress(ImagegenError, OSError, ValueError):
                    self._draw(text, how, False)
            return self.faces.cached_masks

    def render_rgba(self, text: str, style: Style) -> RenderedImage:
        """Like `render` but always through the RGBA compositor (for tests and benchmarks)."""
        with self._lock:
            return self._render(text, style, force_rgba=True)

    def rasterise(self, text: str, style: Style, *, force_rgba: bool = False) -> Image.Image:
        """The image without encoding: an L coverage mask when the style is one colour (its
        palette is applied at encode time) unless `force_rgba`, else RGBA. For benchmarks."""
        with self._lock:
            return self._draw(text, self._styles.get(style), force_rgba).picture()

    def placements(self, text: str, style: Style) -> list[Placement]:
        """Where each piece lands on the canvas (pen position on the baseline), for tests and
        debugging: drawing these with `ImageDraw.text(..., anchor="ls")` reproduces the image."""
        with self._lock:
            prep = self._styles.get(style)
            clean = clean_text(text, style.control_chars, self.limits)
            layout = self._layout(clean, prep)
            inked = ink(layout.placed, self.faces, style.stroke_width)
            frame = self._frame(layout, inked, prep)
            ox, oy = frame.origin
            return [
                Placement(
                    font=pc.key.font,
                    size=pc.key.size,
                    text=pc.text,
                    direction=pc.direction,
                    features=pc.features,
                    x=pc.x + ox,
                    y=pc.y + oy,
                    color=pc.color,
                )
                for pc in layout.placed
            ]

    # --- pipeline --------------------------------------------------------------------------

    def _picker(self, font: str) -> FontPicker:
        picker = self._pickers.get(font)
        if picker is None:
            if font not in self.catalogue:
                raise RenderError(f"unknown font {font!r}")
            picker = FontPicker(self.catalogue.chain(font), self.catalogue.coverage, self.faces.is_color)
            self._pickers[font] = picker
        return picker

    def _layout(self, text: str, prep: Prepared) -> Layout:
        style = prep.style
        picker = self._picker(style.font)
        if not style.auto_fit:
            return self._layouter.layout(text, picker, prep.params)
        low = style.min_size
        high = style.size
        if style.auto_fit_grow:
            pad = prep.pad
            extents = [
                style.max_width,
                style.max_height,
                style.width - pad[1] - pad[3] if style.width else None,
                style.height - pad[0] - pad[2] if style.height else None,
            ]
            high = max(style.size, min(1000, max(e for e in extents if e is not None)))
        best: Layout | None = None
        first = self._layouter.layout(text, picker, prep.params_at(high))
        if prep.fits(first):
            return first
        high -= 1
        while low <= high:
            mid = (low + high) // 2
            trial = self._layouter.layout(text, picker, prep.params_at(mid))
            if prep.fits(trial):
                best, low = trial, mid + 1
            else:
                high = mid - 1
        if best is not None:
            return best
        # Nothing fits: render at the minimum size and let the overflow policy decide.
        return self._layouter.layout(text, picker, prep.params_at(style.min_size))

    def _precheck(self, layout: Layout, prep: Prepared) -> None:
        """Refuse an oversized item from its layout box, before any glyph is rasterised.

        Ink can overhang the advance box by a fraction of the size (italics, marks), so the
        estimate adds an em; the exact check follows in `_frame`.
        """
        style = prep.style
        top, right, bottom, left = prep.pad
        margin = style.size + 2 * style.stroke_width
        if style.shadow is not None:
            margin += abs(style.shadow.offset_x) + abs(style.shadow.offset_y) + int(style.shadow.blur * 3)
        width = style.width or layout.width + left + right + margin
        height = style.height or layout.height + top + bottom + margin
        check_canvas(width, height, self.limits)

    def _frame(self, layout: Layout, inked: list[Inked], prep: Prepared) -> _Frame:
        style = prep.style
        top, right, bottom, left = prep.pad
        box = ink_box(inked)
        x0, y0, x1, y1 = 0, 0, layout.width, layout.height
        if box is not None:
            x0, y0, x1, y1 = min(x0, box[0]), min(y0, box[1]), max(x1, box[2]), max(y1, box[3])
        if style.shadow is not None:
            spread = int(style.shadow.blur * 3 + 0.999)
            dx, dy = style.shadow.offset_x, style.shadow.offset_y
            x0, x1 = min(x0, x0 + dx - spread), max(x1, x1 + dx + spread)
            y0, y1 = min(y0, y0 + dy - spread), max(y1, y1 + dy + spread)
        if style.width is not None:
            width = style.width
            ox = left
        else:
            width = (x1 - x0) + left + right
            ox = left - x0
        if style.height is not None:
            height = style.height
            inner = height - top - bottom
            slack = inner - layout.height
            shift = {"top": 0, "middle": slack // 2, "bottom": slack}[style.valign]
            oy = top + shift
        else:
            height = (y1 - y0) + top + bottom
            oy = top - y0
        check_canvas(width, height, self.limits)
        fixed = style.width is not None or style.height is not None
        if (
            style.overflow == "error"
            and fixed
            and box is not None
            and (box[0] + ox < 0 or box[1] + oy < 0 or box[2] + ox > width or box[3] + oy > height)
        ):
            raise RenderError(
                f"text needs {box[2] - box[0]}x{box[3] - box[1]} px and does not fit the "
                f"{width}x{height} canvas; use auto_fit, a larger box or overflow='clip'"
            )
        return _Frame(max(1, width), max(1, height), (ox, oy))

    def _draw(self, text: str, prep: Prepared, force_rgba: bool) -> _Drawn:
        style = prep.style
        if style.width is not None and style.height is not None:
            check_canvas(style.width, style.height, self.limits)
        clean = clean_text(text, style.control_chars, self.limits)
        layout = self._layout(clean, prep)
        missing = tuple(dict.fromkeys(layout.missing)) if layout.missing else ()
        if missing and style.strict:
            listed = " ".join("+".join(f"U+{ord(ch):04X}" for ch in c) for c in missing)
            raise RenderError(f"no font covers: {listed}")
        if layout.lines > self.limits.max_lines:
            raise RenderError(f"text wraps to {layout.lines} lines; the limit is {self.limits.max_lines}")
        if not layout.placed:
            raise RenderError("nothing to draw: no font covers any character of the text")
        self._precheck(layout, prep)
        inked = ink(layout.placed, self.faces, style.stroke_width)
        frame = self._frame(layout, inked, prep)
        size = (frame.width, frame.height)
        emoji = has_color_pieces(inked)
        if prep.one_colour and not force_rgba and not emoji:
            mask = draw_masks(
                inked, size, frame.origin, use_stroke=prep.stroke is not None, filter_column=True
            )
            return _Drawn(mask, prep.palette, missing, filtered=True)
        image = compose_rgba(
            inked,
            size,
            frame.origin,
            fill=prep.fill,
            stroke=prep.stroke,
            background=prep.background,
            shadow=prep.shadow,
        )
        return _Drawn(image, None, missing, None if emoji else prep.alpha_palette)

    def _render(self, text: str, style: Style, force_rgba: bool = False) -> RenderedImage:
        try:
            return self._render_checked(text, style, force_rgba)
        except (OSError, ValueError) as exc:
            # FreeType and the encoders report trouble as OSError/ValueError (e.g. a face that
            # cannot be sized): that fails this item with a reason, never the whole batch.
            raise RenderError(f"rendering failed: {exc}") from exc

    def _render_checked(self, text: str, style: Style, force_rgba: bool) -> RenderedImage:
        started = time.perf_counter()
        prep = self._styles.get(style)
        drawn = self._draw(text, prep, force_rgba)
        drawn_at = time.perf_counter()
        image = drawn.image
        if drawn.palette is not None:
            data = encode_mask(
                image,
                drawn.palette,
                style.format,
                style.dpi,
                style.webp_lossless,
                style.webp_quality,
                filtered=drawn.filtered,
            )
        else:
            data = encode_rgba(
                image,
                style.format,
                style.dpi,
                style.webp_lossless,
                style.webp_quality,
                blurred=prep.shadow is not None and prep.shadow[2] > 0,
                alpha_palette=drawn.alpha_palette,
            )
        if self.png_effort == "smallest" and style.format == "png":
            data = smallest(data)
        # Timings feed the renderer's render/encode histograms (two clock reads per item).
        width, height = drawn.size
        return RenderedImage(
            data,
            width,
            height,
            style.format,
            drawn.missing,
            render_seconds=drawn_at - started,
            encode_seconds=time.perf_counter() - drawn_at,
        )
