"""Rasterisation: placed pieces -> coverage masks -> (for multi-colour styles) an RGBA image.

Single-colour text only needs one 8-bit coverage mask; colour is applied at encode time through
a palette (see `encode.py`). Styles with several colours (stroke, shadow, background, emoji)
composite one colour layer per mask onto an RGBA canvas. Both paths derive alpha from the same
mask with the same ramp, so a single-colour style gives identical pixels either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from PIL import Image, ImageChops, ImageDraw, ImageFilter, _imaging

from shared.contract.colors import RGBA
from shared.render.faces import Bitmap, FaceCache
from shared.render.layout import Placed


class Inked(NamedTuple):
    """A placed piece with its bitmaps (fill, and stroke when the style has one); a tuple
    because one is built per piece per item."""

    placed: Placed
    fill: Bitmap
    stroke: Bitmap | None


def ink(placed: Sequence[Placed], faces: FaceCache, stroke: int) -> list[Inked]:
    out: list[Inked] = []
    for pc in placed:
        fill = faces.bitmap(pc.key, pc.text, pc.direction, pc.features, pc.language, 0)
        stroked = (
            faces.bitmap(pc.key, pc.text, pc.direction, pc.features, pc.language, stroke)
            if stroke and not pc.color
            else None
        )
        out.append(Inked(pc, fill, stroked))
    return out


def ink_box(inked: Sequence[Inked]) -> tuple[int, int, int, int] | None:
    """Union of every bitmap's box in layout coordinates, or None if nothing has ink."""
    x0 = y0 = 1 << 30
    x1 = y1 = -(1 << 30)
    for item in inked:
        px, py = item.placed.x, item.placed.y
        for bmp in (item.fill, item.stroke):
            if bmp is None or not bmp.width or not bmp.height:
                continue
            bx, by = px + bmp.offset[0], py + bmp.offset[1]
            if bx < x0:
                x0 = bx
            if by < y0:
                y0 = by
            if bx + bmp.width > x1:
                x1 = bx + bmp.width
            if by + bmp.height > y1:
                y1 = by + bmp.height
    if x1 < x0:
        return None
    return (x0, y0, x1, y1)


@lru_cache(maxsize=256)
def ramp(alpha: int) -> tuple[int, ...]:
    """Coverage 0-255 -> alpha, rounded exactly like Pillow's blend (DIV255)."""
    out = []
    for i in range(256):
        t = alpha * i + 128
        out.append((t + (t >> 8)) >> 8)
    return tuple(out)


def draw_masks(
    inked: Sequence[Inked],
    size: tuple[int, int],
    origin: tuple[int, int],
    use_stroke: bool,
    *,
    filter_column: bool = False,
) -> Image.Image:
    """One L coverage mask of the outline fonts' pieces (stroke mask if `use_stroke`).

    `filter_column` adds a blank first column: a PNG scanline is a filter-type byte and the
    row, and 0 is filter None, so such a mask's bytes are its PNG scanlines as they stand
    (saves a copy of the image per item).
    """
    width, height = size
    mask = Image.new("L", (width + filter_column, height), 0)
    # The core drawing object ImageDraw.Draw wraps (blend off, as for an L image).
    draw_bitmap = _imaging.draw(mask.im, 0).draw_bitmap
    ox, oy = origin[0] + filter_column, origin[1]
    for item in inked:
        bmp = item.stroke if use_stroke and item.stroke is not None else item.fill
        if item.placed.color or not bmp.width:
            continue
        # draw_bitmap blends like ImageDraw.text (alpha "over"), so overlaps match Pillow.
        draw_bitmap((item.placed.x + bmp.offset[0] + ox, item.placed.y + bmp.offset[1] + oy), bmp.core, 255)
    if filter_column:
        mask.paste(0, (0, 0, 1, height))  # ink clipped at the left edge (overflow: clip)
    return mask


@dataclass(frozen=True, slots=True, eq=False)
class MaskPalette:
    """What each level 0..255 of a mask becomes: its RGB bytes, its alpha, and both as one
    RGBA table (for Pillow's palette lookups).

    Hashed by identity: one object per colour pair (`mask_palette` is cached), so encoders can
    cache the chunks built from it without hashing 256 entries per item.
    """

    rgb: tuple[bytes, ...]
    alpha: bytes
    rgba: bytes

    @classmethod
    def of(cls, rgb: tuple[bytes, ...], alpha: bytes) -> MaskPalette:
        return cls(rgb, alpha, b"".join(c + bytes((a,)) for c, a in zip(rgb, alpha, strict=True)))


def lookup(mask: Image.Image, palette: MaskPalette) -> Image.Image:
    """The RGBA image whose pixel is `palette[level]` for each mask level: one C pass."""
    indexed = mask.copy()
    indexed.putpalette(palette.rgba, "RGBA")
    return indexed.convert("RGBA")


@lru_cache(maxsize=256)
def mask_palette(fill: RGBA, background: RGBA) -> MaskPalette:
    """What coverage level i becomes on the canvas: the compositor run on a 0..255 strip.

    Compositing is per pixel, so a mask's image is exactly this table looked up per pixel;
    the palette path and the RGBA path therefore cannot disagree.
    """
    strip = Image.frombytes("L", (256, 1), bytes(range(256)))
    canvas = Image.new("RGBA", (256, 1), background)
    if background[3] == 0:
        # ImageDraw.text's blend on an empty canvas: colour where the mask is non-zero,
        # alpha = mask x colour alpha; so one-colour output matches Pillow bit for bit.
        draw = ImageDraw.Draw(canvas).draw
        draw.draw_bitmap((0, 0), strip.im, draw.draw_ink(fill))
    else:
        canvas.alpha_composite(lookup(strip, _layer_palette(fill)))
    data = canvas.tobytes()
    return MaskPalette.of(tuple(data[i * 4 : i * 4 + 3] for i in range(256)), data[3::4])


@lru_cache(maxsize=256)
def _layer_palette(rgba: RGBA) -> MaskPalette:
    """A colour layer's levels: the colour at alpha = coverage x its alpha (DIV255-rounded)."""
    rgb = bytes(rgba[:3])
    return MaskPalette.of((rgb,) * 256, bytes(ramp(rgba[3])))


def has_color_pieces(inked: Sequence[Inked]) -> bool:
    return any(item.placed.color for item in inked)


def _paint(canvas: Image.Image | None, mask: Image.Image, rgba: RGBA, background: RGBA) -> Image.Image:
    """Composite `rgba` through `mask` onto the canvas (None: an empty transparent canvas of
    `background`, painted as `mask_palette` defines it); true alpha "over" otherwise."""
    if canvas is None:
        return lookup(mask, mask_palette(rgba, background))
    canvas.alpha_composite(lookup(mask, _layer_palette(rgba)))
    return canvas


def _paste_rgba(canvas: Image.Image, image: Image.Image, x: int, y: int) -> None:
    """alpha_composite that tolerates a source partly outside the canvas (overflow: clip)."""
    left, top = max(0, -x), max(0, -y)
    right = min(image.width, canvas.width - x)
    bottom = min(image.height, canvas.height - y)
    if right <= left or bottom <= top:
        return
    if (left, top, right, bottom) != (0, 0, image.width, image.height):
        image = image.crop((left, top, right, bottom))
    canvas.alpha_composite(image, dest=(x + left, y + top))


def emoji_layer(inked: Sequence[Inked], size: tuple[int, int], origin: tuple[int, int]) -> Image.Image:
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    for item in inked:
        if not item.placed.color or not item.fill.width:
            continue
        _paste_rgba(
            layer,
            item.fill.image,
            item.placed.x + item.fill.offset[0] + origin[0],
            item.placed.y + item.fill.offset[1] + origin[1],
        )
    return layer


def compose_rgba(
    inked: Sequence[Inked],
    size: tuple[int, int],
    origin: tuple[int, int],
    *,
    fill: RGBA,
    stroke: RGBA | None,
    background: RGBA,
    shadow: tuple[int, int, float, RGBA] | None,
) -> Image.Image:
    """The RGBA image: background, shadow, stroke, fill, then colour glyphs on top."""
    # Painting the first layer onto an empty transparent canvas is a palette lookup.
    canvas = None if background[3] == 0 else Image.new("RGBA", size, background)
    fill_mask = draw_masks(inked, size, origin, use_stroke=False)
    stroke_mask = draw_masks(inked, size, origin, use_stroke=True) if stroke is not None else None
    emoji = emoji_layer(inked, size, origin) if has_color_pieces(inked) else None
    if shadow is not None:
        dx, dy, blur, shadow_rgba = shadow
        source = stroke_mask if stroke_mask is not None else fill_mask
        if emoji is not None:
            source = ImageChops.lighter(source, emoji.getchannel("A"))
        shifted = Image.new("L", size, 0)
        shifted.paste(source, (dx, dy))
        if blur > 0:
            shifted = shifted.filter(ImageFilter.GaussianBlur(blur))
        canvas = _paint(canvas, shifted, shadow_rgba, background)
    if stroke_mask is not None and stroke is not None:
        canvas = _paint(canvas, stroke_mask, stroke, background)
    canvas = _paint(canvas, fill_mask, fill, background)
    if emoji is not None:
        canvas.alpha_composite(emoji)
    return canvas
