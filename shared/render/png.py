"""PNG files written chunk by chunk: scanline filters, one IDAT compressed in one call.

Pillow's PNG save spends about as long in its Python save machinery (encoder set-up, chunk
callbacks, buffer loops) as zlib spends compressing a 48 px label; writing the handful of
chunks directly and compressing the scanlines in one call halves the encode time. Two
compressors, chosen per image by the caller (`Deflate`), measured on bench_render's labels:

- ISA-L (PyPI `isal`) level 1 for one-byte-per-pixel images: ~50 us for a 33 KB label mask,
  against ~115 us for libdeflate level 1 and ~125 us for zlib-ng level 2 (Pillow's palette
  save), with a stream ~5 % larger than libdeflate's and ~1 % larger than zlib-ng's.
- libdeflate (PyPI `deflate`) level 5 for RGBA: ~10 % smaller than Pillow's zlib level 6 with
  adaptive filters in under half its time; ISA-L's RGBA streams are larger than Pillow's.

Pixels are never changed here: the caller hands over the exact bytes of an 8-bit palette or
RGBA image, and the file decodes back to them. Files are a pure function of pixels, settings
and the compressor build (no time stamps, no text chunks): the same item gives the same bytes
on every run; a different CPU architecture may pick other matches and so other (equally exact)
bytes. Images of more than `STREAM_ABOVE` bytes of pixels are compressed band by band through a
streaming compressor instead, so their peak memory stays at the image plus one band.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final, Literal, NamedTuple, Protocol

import deflate
from isal import isal_zlib
from PIL import Image, ImageChops

SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
COLOR_PALETTE: Final = 3
COLOR_RGBA: Final = 6
# PNG filter types (ISO/IEC 15948 section 9.2).
FILTER_NONE: Final = 0
FILTER_SUB: Final = 1
FILTER_UP: Final = 2
# Scanline bytes above which compression streams through zlib in bands (bounded memory).
STREAM_ABOVE: Final = 8 * 1024 * 1024
STREAM_BAND_BYTES: Final = 1024 * 1024
_BYTES_PER_PIXEL: Final = {"L": 1, "P": 1, "RGBA": 4}


class _Stream(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


class Deflate(NamedTuple):
    """A compressor and its level: ("isal", 0-3) or ("libdeflate", 1-12)."""

    library: Literal["isal", "libdeflate"]
    level: int

    def __call__(self, data: bytes) -> bytes | bytearray:
        if self.library == "isal":
            return isal_zlib.compress(data, self.level)
        return deflate.zlib_compress(data, self.level)

    def stream(self) -> _Stream:
        if self.library == "isal":
            return isal_zlib.compressobj(self.level)
        return zlib.compressobj(min(self.level, 9))  # libdeflate has no streaming API


def chunk(kind: bytes, data: bytes | bytearray) -> bytes:
    """One chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


_IEND: Final = chunk(b"IEND", b"")


def palette_chunks(plte: bytes, trns: bytes) -> bytes:
    """PLTE (RGB triples) and, when any entry is translucent, tRNS (alphas, trailing 255s cut)."""
    return chunk(b"PLTE", plte) + (chunk(b"tRNS", trns) if trns else b"")


def phys(dpi: int | None) -> bytes:
    """pHYs in pixels per metre, rounded as Pillow writes it (so Pillow reads the dpi back)."""
    if not dpi:
        return b""
    ppm = int(dpi / 0.0254 + 0.5)
    return chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))


def scanlines(image: Image.Image, kind: int = FILTER_NONE) -> bytes:
    """The image's rows, each led by its filter-type byte, ready for deflate.

    The rows are viewed as an 8-bit image `bpp * width` wide and pasted one column to the right
    into a canvas whose first column is the filter byte: a few C calls, no per-row Python.
    Sub and Up subtract the left (bpp bytes back) or upper neighbour modulo 256, which is
    exactly what ImageChops.subtract_modulo computes against a shifted crop (zero outside).
    """
    bpp = _BYTES_PER_PIXEL[image.mode]
    width, height = image.width * bpp, image.height
    raw = image if image.mode == "L" else Image.frombuffer("L", (width, height), image.tobytes())
    if kind == FILTER_SUB:
        raw = ImageChops.subtract_modulo(raw, raw.crop((-bpp, 0, width - bpp, height)))
    elif kind == FILTER_UP:
        raw = ImageChops.subtract_modulo(raw, raw.crop((0, -1, width, height - 1)))
    rows = Image.new("L", (width + 1, height), kind)
    rows.paste(raw, (1, 0))
    return rows.tobytes()


def _rows(image: Image.Image, kind: int, filtered: bool) -> bytes:
    return image.tobytes() if filtered else scanlines(image, kind)


def _streamed_idat(image: Image.Image, kind: int, how: Deflate, filtered: bool) -> bytes:
    """IDAT chunks for a huge image, filtered and compressed one band of rows at a time."""
    row_bytes = len(_rows(image.crop((0, 0, image.width, 1)), kind, filtered))
    band = max(1, STREAM_BAND_BYTES // row_bytes)
    compressor = how.stream()
    chunks = []
    for top in range(0, image.height, band):
        # Up needs the row above the band; it is filtered along and then dropped.
        above = 1 if kind == FILTER_UP and top and not filtered else 0
        rows = _rows(image.crop((0, top - above, image.width, min(image.height, top + band))), kind, filtered)
        data = compressor.compress(rows[above * row_bytes :])
        if data:
            chunks.append(chunk(b"IDAT", data))
    chunks.append(chunk(b"IDAT", compressor.flush()))
    return b"".join(chunks)


def encode(
    image: Image.Image,
    color_type: int,
    how: Deflate,
    *,
    kind: int = FILTER_NONE,
    extra: bytes = b"",
    filtered: bool = False,
) -> bytes:
    """A whole file: signature, IHDR, the ancillary chunks in `extra` (PLTE, tRNS, pHYs), IDAT,
    IEND. `image` holds the stored bytes: palette indices as mode L, or RGBA; `filtered`: an L
    image whose first column already is each row's filter byte (see `raster.draw_masks`)."""
    width = image.width - 1 if filtered else image.width
    head = SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, image.height, 8, color_type, 0, 0, 0))
    if image.width * image.height * _BYTES_PER_PIXEL[image.mode] > STREAM_ABOVE:
        body = _streamed_idat(image, kind, how, filtered)
    else:
        body = chunk(b"IDAT", how(_rows(image, kind, filtered)))
    return b"".join((head, extra, body, _IEND))
