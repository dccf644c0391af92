"""The PNG writer: valid files (every chunk's CRC, chunk order, palette/tRNS bounds) that Pillow
and a second, independent decoder (pypng, pure Python) both decode to exactly the pixels of the
RGBA compositor, over a sample of styles; and the banded path for huge images."""

from __future__ import annotations

import io
import struct
import zlib

import png as pypng  # the independent decoder (PyPI pypng), not shared.render.png
import pytest
from PIL import Image

from shared.render import RenderEngine
from shared.render import png as writer

from .helpers import style

SAMPLE: list[tuple[str, dict[str, object]]] = [
    ("上海市浦东新区 Organic Tea ¥30.29", {}),
    ("半透明 translucent", {"color": "rgba(200, 30, 60, 0.5)"}),
    ("几乎透明", {"color": "#0a0a0a03"}),
    ("Opaque 背景", {"background": "#fffbe6", "padding": 6}),
    ("Translucent 背景", {"background": "rgba(0, 0, 80, 0.5)", "color": "#ffcc00", "stroke_width": 1}),
    ("Transparent red canvas", {"background": "#ff000000", "color": "#123456"}),
    ("Stroke 同色", {"stroke_width": 2, "color": "green"}),
    ("竖排文字，测试。", {"orientation": "vertical"}),
    ("שלום עולם 123", {}),
    ("مرحبا بالعالم", {"color": "#3366cc"}),
    # "j" hangs left of the pen: clipped at the canvas's left edge, next to the filter column.
    ("jjj 左", {"width": 200, "size": 60, "overflow": "clip"}),
    ("DPI 300", {"dpi": 300}),
    ("中", {}),
    ("Shadow 阴影", {"shadow": {"offset_x": 3, "offset_y": 3, "blur": 2}}),
    ("Blue shadow", {"shadow": {"blur": 1.5, "color": "#0000ff80"}, "color": "#00f"}),
    ("影", {"shadow": {"blur": 1}}),  # small enough for a palette of just its levels
    ("Red stroke 描边", {"stroke_width": 2, "stroke_color": "red"}),
    ("Emoji 🍵", {}),
]


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, checking the signature, lengths and each CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out: list[tuple[bytes, bytes]] = []
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert len(body) == length
        assert crc == zlib.crc32(kind + body), kind
        out.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    return out


def check_structure(data: bytes, width: int, height: int) -> None:
    """Chunk order and header fields as ISO/IEC 15948 requires, and palette bounds."""
    found = chunks(data)
    kinds = [kind for kind, _ in found]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and found[-1][1] == b""
    idats = [i for i, kind in enumerate(kinds) if kind == b"IDAT"]
    assert idats == list(range(idats[0], idats[-1] + 1))  # consecutive
    w, h, depth, color, compression, filtering, interlace = struct.unpack(">IIBBBBB", found[0][1])
    assert (w, h, depth, compression, filtering, interlace) == (width, height, 8, 0, 0, 0)
    assert color in (writer.COLOR_PALETTE, writer.COLOR_RGBA)
    body = {kind: chunk for kind, chunk in found}
    if color == writer.COLOR_PALETTE:
        plte = body[b"PLTE"]
        assert kinds.index(b"PLTE") < idats[0]
        assert len(plte) % 3 == 0 and 1 <= len(plte) // 3 <= 256
        if b"tRNS" in body:
            assert kinds.index(b"PLTE") < kinds.index(b"tRNS") < idats[0]
            assert len(body[b"tRNS"]) <= len(plte) // 3
        raw = zlib.decompress(b"".join(chunk for kind, chunk in found if kind == b"IDAT"))
        assert len(raw) == height * (width + 1)
        indices = [raw[y * (width + 1) + 1 : (y + 1) * (width + 1)] for y in range(height)]
        if all(raw[y * (width + 1)] == writer.FILTER_NONE for y in range(height)):
            assert max(max(row) for row in indices) < len(plte) // 3  # every index in the palette
    else:
        assert b"PLTE" not in body and b"tRNS" not in body


def pypng_rgba(data: bytes) -> bytes:
    width, height, rows, _ = pypng.Reader(bytes=data).asRGBA8()
    pixels = b"".join(bytes(row) for row in rows)
    assert len(pixels) == width * height * 4
    return pixels


@pytest.mark.parametrize(("text", "fields"), SAMPLE, ids=[repr(t) for t, _ in SAMPLE])
def test_files_are_valid_and_exact(engine: RenderEngine, text: str, fields: dict[str, object]) -> None:
    s = style(**fields)
    out = engine.render(text, s)
    check_structure(out.data, out.width, out.height)
    composite = engine.rasterise(text, s, force_rgba=True)
    assert composite.mode == "RGBA" and composite.size == (out.width, out.height)
    with Image.open(io.BytesIO(out.data)) as decoded:
        by_pillow = decoded.convert("RGBA").tobytes()
        if "dpi" in fields:
            assert tuple(round(v) for v in decoded.info["dpi"]) == (300, 300)
    assert by_pillow == composite.tobytes()
    assert pypng_rgba(out.data) == by_pillow
    if fields.get("overflow") == "clip":
        assert composite.getchannel("A").crop((0, 0, 1, out.height)).getbbox() is not None


def test_same_bytes_from_a_fresh_engine(engine: RenderEngine) -> None:
    fresh = RenderEngine(engine.catalogue)
    for text, fields in SAMPLE:
        assert fresh.render(text, style(**fields)).data == engine.render(text, style(**fields)).data


def _gradient(mode: str, width: int, height: int) -> Image.Image:
    """Rows that differ from each other and from left to right, so every filter has work."""
    band = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 40).convert("L")
    if mode == "L":
        return Image.blend(band, noise, 0.3)
    return Image.merge("RGBA", (band, noise, band.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise))


@pytest.mark.parametrize("how", [writer.Deflate("isal", 1), writer.Deflate("libdeflate", 5)], ids=str)
@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("kind", [writer.FILTER_NONE, writer.FILTER_SUB, writer.FILTER_UP])
@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_filters_round_trip(
    monkeypatch: pytest.MonkeyPatch, how: writer.Deflate, streamed: bool, kind: int, mode: str
) -> None:
    if streamed:
        # The banded zlib path, on a small image: bands of 7 rows, 1 MiB threshold lowered.
        monkeypatch.setattr(writer, "STREAM_ABOVE", 1000)
        monkeypatch.setattr(writer, "STREAM_BAND_BYTES", 7 * (4 * 61 + 1))
    image = _gradient(mode, 61, 50)
    if mode == "L":
        plte = bytes(v for i in range(256) for v in (i, 255 - i, i // 2))
        extra = writer.palette_chunks(plte, bytes(range(256)))
        data = writer.encode(image, writer.COLOR_PALETTE, how, kind=kind, extra=extra)
        expected = image.copy()
        expected.putpalette(plte, "RGB")
        expected.info["transparency"] = bytes(range(256))
        pixels = expected.convert("RGBA").tobytes()
    else:
        data = writer.encode(image, writer.COLOR_RGBA, how, kind=kind)
        pixels = image.tobytes()
    found = chunks(data)
    if how.library == "libdeflate":
        # zlib's stream hands out output band by band, one IDAT each (ISA-L's may hold it back).
        assert (sum(kind == b"IDAT" for kind, _ in found) > 1) == streamed
    raw = zlib.decompress(b"".join(body for kind_, body in found if kind_ == b"IDAT"))
    row = 61 * (1 if mode == "L" else 4) + 1
    assert {raw[y * row] for y in range(50)} == {kind}
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.convert("RGBA").tobytes() == pixels
    assert pypng_rgba(data) == pixels


def test_prefiltered_mask_is_written_as_is() -> None:
    """A mask drawn with a blank first column is its own scanlines (filter None)."""
    image = _gradient("L", 40, 9)
    rows = Image.new("L", (41, 9), 0)
    rows.paste(image, (1, 0))
    extra = writer.palette_chunks(bytes(768), b"")
    how = writer.Deflate("isal", 1)
    plain = writer.encode(image, writer.COLOR_PALETTE, how, extra=extra)
    ready = writer.encode(rows, writer.COLOR_PALETTE, how, extra=extra, filtered=True)
    assert plain == ready


def test_smallest_setting_keeps_pixels(engine: RenderEngine) -> None:
    """png_effort="smallest" (oxipng): never larger, same pixels, same bytes run to run."""
    small, again = (RenderEngine(engine.catalogue, png_effort="smallest") for _ in range(2))
    saved = 0
    for text, fields in SAMPLE[:4] + SAMPLE[13:]:
        s = style(**fields)
        fast, tight = engine.render(text, s), small.render(text, s)
        assert len(tight.data) <= len(fast.data)
        saved += len(fast.data) - len(tight.data)
        chunks(tight.data)  # valid chunks and CRCs
        with Image.open(io.BytesIO(tight.data)) as decoded:
            assert decoded.convert("RGBA").tobytes() == engine.rasterise(text, s, force_rgba=True).tobytes()
        assert pypng_rgba(tight.data) == pypng_rgba(fast.data)
        assert again.render(text, s).data == tight.data
    assert saved > 0
