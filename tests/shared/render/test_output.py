"""Output formats and metadata: PNG/WebP, DPI, reported sizes, thread use."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from shared.render import RenderedImage, RenderEngine

from .helpers import decode, ink_sum, pixels, style


def test_png_dpi(engine: RenderEngine) -> None:
    out = engine.render("DPI", style(dpi=300))
    with Image.open(io.BytesIO(out.data)) as image:
        assert image.format == "PNG"
        assert tuple(round(v) for v in image.info["dpi"]) == (300, 300)


def test_webp_lossless_matches_png(engine: RenderEngine) -> None:
    png = engine.render("WebP 图片", style(color="#123456"))
    webp = engine.render("WebP 图片", style(color="#123456", format="webp"))
    assert webp.format == "webp" and webp.data[8:12] == b"WEBP"
    assert (webp.width, webp.height) == (png.width, png.height)
    a, b = decode(png), decode(webp)
    # Lossless WebP may drop the colour of fully transparent pixels; compare what is visible.
    assert a.getchannel("A").tobytes() == b.getchannel("A").tobytes()
    visible = [(pa, pb) for pa, pb in zip(pixels(a), pixels(b), strict=True) if pa[3]]
    assert all(pa == pb for pa, pb in visible)


def test_webp_dpi_and_lossy(engine: RenderEngine) -> None:
    out = engine.render("WebP", style(format="webp", dpi=144, webp_lossless=False, webp_quality=50))
    with Image.open(io.BytesIO(out.data)) as image:
        assert image.format == "WEBP"
        exif = image.getexif()
        assert float(exif[0x011A]) == 144.0


def test_reported_size_matches_pixels(engine: RenderEngine) -> None:
    out = engine.render("尺寸 size", style(padding=[2, 4]))
    assert decode(out).size == (out.width, out.height)
    assert out.format == "png" and out.missing_glyphs == ()


def test_batch_in_worker_thread(engine: RenderEngine) -> None:
    """How the renderer service calls it: a batch inside asyncio.to_thread."""

    def batch() -> list[RenderedImage]:
        return [engine.render(f"item {i} 项目", style()) for i in range(20)]

    images = [decode(out) for out in asyncio.run(asyncio.to_thread(batch))]
    assert len(images) == 20
    for i, image in enumerate(images):  # the same pixels as a render on this thread
        assert image.tobytes() == decode(engine.render(f"item {i} 项目", style())).tobytes(), i
        assert ink_sum(image) > 0


def test_deterministic(engine: RenderEngine) -> None:
    fresh = RenderEngine(engine.catalogue)
    text, s = "确定性 deterministic ✓ 😀", style(stroke_width=1, stroke_color="red")
    assert engine.render(text, s).data == fresh.render(text, s).data
