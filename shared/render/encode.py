"""Encoding: the palette fast path for single-colour text, RGBA PNG, and WebP.

When every pixel is a function of one coverage value (one text colour, any background, no
shadow, stroke in the text colour), the image is an 8-bit index image plus a 256-entry palette:
the compositor is run once on a 0..255 gradient strip to get the colour and alpha of each level
(`raster.mask_palette`). Written as a palette PNG with a `tRNS` chunk that decodes pixel for
pixel to the RGBA render, zlib has a quarter of the bytes to compress: faster and smaller than
Pillow's default RGBA PNG.
"""

from __future__ import annotations

import io

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from shared.render.raster import MaskPalette

# Measured on 48 px labels: level 2 is both faster and smaller than level 1 for palette masks.
FAST_PNG_LEVEL = 2
# RGBA images (stroke, shadow, emoji) keep more detail; level 3 is close to level 6 in size at
# half its time for these small images.
RGBA_PNG_LEVEL = 3
COMPACT_PALETTE_MAX_PIXELS = 12_000


def _compact_palette(mask: Image.Image, palette: MaskPalette) -> tuple[Image.Image, bytes, bytes]:
    """PLTE and tRNS for the mask, indexing only the coverage levels a small mask uses.

    A full 256-entry PLTE + tRNS costs ~1 KB per file. On big images that is noise; on tiny
    ones (a single glyph) it can triple the file, so small masks get a palette of just their
    levels (remapped monotonically, so zlib sees the same runs). Not done for big masks: the
    histogram and remap cost more time than the bytes are worth.
    """
    entries, alphas = palette
    if mask.width * mask.height > COMPACT_PALETTE_MAX_PIXELS:
        return mask, b"".join(entries), alphas.rstrip(b"\xff")
    histogram = mask.histogram()
    used = [level for level, count in enumerate(histogram) if count]
    if len(used) < 256:
        lut = [0] * 256
        for index, level in enumerate(used):
            lut[level] = index
        mask = mask.point(lut)
    plte = b"".join(entries[level] for level in used)
    trns = bytes(alphas[level] for level in used).rstrip(b"\xff")  # missing entries are opaque
    return mask, plte, trns


def _exif_dpi(dpi: int) -> bytes:
    exif = Image.Exif()
    exif[0x011A] = IFDRational(dpi, 1)  # XResolution
    exif[0x011B] = IFDRational(dpi, 1)  # YResolution
    exif[0x0128] = 2  # ResolutionUnit: inch
    return exif.tobytes()


def encode_mask(
    mask: Image.Image, palette: MaskPalette, fmt: str, dpi: int | None, lossless: bool, quality: int
) -> bytes:
    """Encode an image that is a palette lookup of one coverage mask (consumes `mask`)."""
    indices, plte, trns = _compact_palette(mask, palette)
    indices.putpalette(plte, "RGB")  # L -> P in place, no pixel copy
    if fmt == "png":
        buf = io.BytesIO()
        params: dict[str, object] = {"compress_level": FAST_PNG_LEVEL}
        if trns:
            params["transparency"] = trns
        if dpi:
            params["dpi"] = (dpi, dpi)
        indices.save(buf, "PNG", **params)
        return buf.getvalue()
    if trns:
        indices.info["transparency"] = trns
    return encode_rgba(indices.convert("RGBA"), fmt, dpi, lossless, quality)


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
