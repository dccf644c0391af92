"""Encoding: the palette fast path for single-colour text, RGBA PNG, and WebP.

A single-colour text on a transparent background is fully described by its coverage mask, so it
is written as an 8-bit palette PNG whose 256 entries all hold the text colour and whose `tRNS`
chunk holds the alpha ramp. Decoded, that is pixel-identical to the RGBA image, and zlib has a
quarter of the bytes to compress; level 1 is then both faster and still smaller than Pillow's
default RGBA at level 6.
"""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from shared.render.colors import RGBA
from shared.render.raster import ramp

FAST_PNG_LEVEL = 1
# RGBA images (stroke, shadow, emoji) keep more detail; level 3 is close to level 6 in size at a
# fraction of its time for these small images.
RGBA_PNG_LEVEL = 3


@lru_cache(maxsize=256)
def _palette_for(rgba: RGBA) -> tuple[bytes, bytes]:
    """(palette, tRNS) for a colour: entries whose alpha rounds to 0 decode as (0,0,0,0),
    the same as an RGBA canvas that was never drawn on."""
    alphas = ramp(rgba[3])
    palette = bytearray()
    for alpha in alphas:
        palette += bytes(rgba[:3]) if alpha else b"\0\0\0"
    return bytes(palette), bytes(alphas)


def mask_to_palette(mask: Image.Image, rgba: RGBA) -> Image.Image:
    """The mask becomes a P image in place (no pixel copy)."""
    palette, _ = _palette_for(rgba)
    mask.putpalette(palette, "RGB")
    mask.info["transparency"] = _palette_for(rgba)[1]
    return mask


def _exif_dpi(dpi: int) -> bytes:
    exif = Image.Exif()
    exif[0x011A] = IFDRational(dpi, 1)  # XResolution
    exif[0x011B] = IFDRational(dpi, 1)  # YResolution
    exif[0x0128] = 2  # ResolutionUnit: inch
    return exif.tobytes()


def encode_mask(
    mask: Image.Image, rgba: RGBA, fmt: str, dpi: int | None, lossless: bool, quality: int
) -> bytes:
    """Encode single-colour text from its coverage mask."""
    if fmt == "png":
        palette, trns = _palette_for(rgba)
        mask.putpalette(palette, "RGB")
        buf = io.BytesIO()
        params: dict[str, object] = {"compress_level": FAST_PNG_LEVEL, "transparency": trns}
        if dpi:
            params["dpi"] = (dpi, dpi)
        mask.save(buf, "PNG", **params)
        return buf.getvalue()
    image = Image.new("RGBA", mask.size, (rgba[0], rgba[1], rgba[2], 0))
    image.putalpha(mask.point(ramp(rgba[3])))
    return encode_rgba(image, fmt, dpi, lossless, quality)


def encode_rgba(image: Image.Image, fmt: str, dpi: int | None, lossless: bool, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        params: dict[str, object] = {"compress_level": RGBA_PNG_LEVEL}
        if dpi:
            params["dpi"] = (dpi, dpi)
        image.save(buf, "PNG", **params)
    else:
        webp: dict[str, object] = {"lossless": lossless, "quality": quality, "exact": False}
        if dpi:
            webp["exif"] = _exif_dpi(dpi)
        image.save(buf, "WEBP", **webp)
    return buf.getvalue()
