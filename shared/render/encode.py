"""Encoding policy: which PNG an image becomes (palette or RGBA, filter, level), and WebP.

Single-colour text is one 8-bit coverage mask plus a 256-entry palette (the compositor run once
on a 0..255 strip, `raster.mask_palette`): written as a palette PNG with `tRNS`, it decodes
pixel for pixel to the RGBA render with a quarter of the bytes to compress. Multi-colour images
(stroke in another colour, shadow, emoji) are RGBA, except that an image whose colours are told
apart by one channel alone (text and shadow in one colour, say) is written exactly as a palette
PNG keyed by that channel. The chunks are written by `png.py`; this module only decides.
"""

from __future__ import annotations

import io
from functools import lru_cache

import oxipng
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from shared.render import png
from shared.render.raster import MaskPalette, lookup

# Palette indices (label masks, alpha-indexed shadows): ISA-L level 1, the fastest of the
# compressors measured; label files still come out ~11 % under Pillow's RGBA files (png.py).
PALETTE_DEFLATE = png.Deflate("isal", 1)
# RGBA text (stroke, emoji): unfiltered rows at libdeflate level 5 are ~10 % smaller than
# Pillow's default (zlib 6, adaptive filters) in well under half its time; every filter type
# measured larger on crisp text, whose rows are long runs of one pixel value.
RGBA_DEFLATE = png.Deflate("libdeflate", 5)
# Blurred shadows are smooth gradients: the Up filter makes them ~7 % smaller than no filter.
BLURRED_FILTER = png.FILTER_UP
COMPACT_PALETTE_MAX_PIXELS = 12_000
# The "smallest files" setting: oxipng (PyPI pyoxipng) at its level 2 retries filters, bit
# depths and palette orders and recompresses with libdeflate 11. Measured on 48 px labels:
# 7-13 % smaller than the fast path for 11-26 ms of CPU each (40-80x the fast encode); oxipng
# runs its trials on all cores.
SMALLEST_LEVEL = 2


@lru_cache(maxsize=256)
def _full_palette(palette: MaskPalette) -> bytes:
    """PLTE + tRNS of all 256 levels, built once per colour pair (palettes hash by identity)."""
    return png.palette_chunks(b"".join(palette.rgb), palette.alpha.rstrip(b"\xff"))


def _compact(mask: Image.Image, palette: MaskPalette) -> tuple[Image.Image, bytes]:
    """Indices and PLTE/tRNS chunks for the mask.

    A full 256-entry PLTE + tRNS costs ~1 KB per file. On big images that is noise, and a 48 px
    label uses ~250 of the levels anyway; on tiny ones (a single glyph) it can triple the file,
    so small masks get a palette of just their levels (remapped monotonically, so deflate sees
    the same runs).
    """
    if mask.width * mask.height > COMPACT_PALETTE_MAX_PIXELS:
        return mask, _full_palette(palette)
    histogram = mask.histogram()
    used = [level for level, count in enumerate(histogram) if count]
    if len(used) < 256:
        lut = [0] * 256
        for index, level in enumerate(used):
            lut[level] = index
        mask = mask.point(lut)
    plte = b"".join(palette.rgb[level] for level in used)
    trns = bytes(palette.alpha[level] for level in used).rstrip(b"\xff")  # missing = opaque
    return mask, png.palette_chunks(plte, trns)


def _exif_dpi(dpi: int) -> bytes:
    exif = Image.Exif()
    exif[0x011A] = IFDRational(dpi, 1)  # XResolution
    exif[0x011B] = IFDRational(dpi, 1)  # YResolution
    exif[0x0128] = 2  # ResolutionUnit: inch
    return exif.tobytes()


def _webp(image: Image.Image, dpi: int | None, lossless: bool, quality: int) -> bytes:
    buf = io.BytesIO()
    params: dict[str, object] = {"lossless": lossless, "quality": quality, "exact": False}
    if dpi:
        params["exif"] = _exif_dpi(dpi)
    image.save(buf, "WEBP", **params)
    return buf.getvalue()


def encode_mask(
    mask: Image.Image,
    palette: MaskPalette,
    fmt: str,
    dpi: int | None,
    lossless: bool,
    quality: int,
    *,
    filtered: bool = False,
) -> bytes:
    """Encode an image that is a palette lookup of one coverage mask (`filtered`: the mask
    leads with a blank filter column, `raster.draw_masks(filter_column=True)`)."""
    if fmt == "png":
        # Level 0 is always used when there is a filter column, so it keeps index 0 = None.
        indices, chunks = _compact(mask, palette)
        extra = chunks + png.phys(dpi) if dpi else chunks
        return png.encode(indices, png.COLOR_PALETTE, PALETTE_DEFLATE, extra=extra, filtered=filtered)
    if filtered:
        mask = mask.crop((1, 0, mask.width, mask.height))
    return _webp(lookup(mask, palette), dpi, lossless, quality)


def _alpha_indexed(image: Image.Image, palette: MaskPalette) -> Image.Image | None:
    """The alpha channel, if looking it up in `palette` gives back exactly `image`, else None.

    Layers of one colour over a transparent canvas differ only in alpha (text and its shadow
    in one colour, say), so alpha is a palette index; the lookup is compared with the actual
    pixels because compositing rounds and transparent pixels may keep either colour.
    """
    alpha = image.getchannel("A")
    return alpha if lookup(alpha, palette).tobytes() == image.tobytes() else None


def encode_rgba(
    image: Image.Image,
    fmt: str,
    dpi: int | None,
    lossless: bool,
    quality: int,
    *,
    blurred: bool = False,
    alpha_palette: MaskPalette | None = None,
) -> bytes:
    """Encode a composited RGBA image (`blurred`: it holds a blurred shadow); with
    `alpha_palette`, as a palette PNG indexed by alpha when that reproduces it exactly."""
    if fmt != "png":
        return _webp(image, dpi, lossless, quality)
    kind = BLURRED_FILTER if blurred else png.FILTER_NONE
    if alpha_palette is not None:
        alpha = _alpha_indexed(image, alpha_palette)
        if alpha is not None:
            indices, chunks = _compact(alpha, alpha_palette)
            extra = chunks + png.phys(dpi)
            return png.encode(indices, png.COLOR_PALETTE, PALETTE_DEFLATE, kind=kind, extra=extra)
    return png.encode(image, png.COLOR_RGBA, RGBA_DEFLATE, kind=kind, extra=png.phys(dpi))


def smallest(data: bytes) -> bytes:
    """The same pixels in as few bytes as oxipng finds. Lossless: transparent pixels keep their
    colour (optimize_alpha stays off), so the file still decodes byte for byte as before."""
    out = oxipng.optimize_from_memory(data, level=SMALLEST_LEVEL, optimize_alpha=False)
    return out if len(out) < len(data) else data
