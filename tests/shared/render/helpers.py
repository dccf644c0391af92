"""Pixel helpers for the render tests: decode, style shorthand, alpha boxes."""

from __future__ import annotations

import io

from PIL import Image

from shared.render import RenderedImage, RenderEngine, Style, parse_style


def decode(rendered: RenderedImage) -> Image.Image:
    """The image as a viewer would see it: decoded and converted to RGBA."""
    image = Image.open(io.BytesIO(rendered.data))
    image.load()
    return image.convert("RGBA")


def style(**fields: object) -> Style:
    return parse_style(fields)


def alpha_bbox(image: Image.Image, threshold: int = 1) -> tuple[int, int, int, int] | None:
    """Bounding box of pixels whose alpha is at least `threshold`."""
    alpha = image.getchannel("A").point(lambda a: 255 if a >= threshold else 0)
    return alpha.getbbox()


def ink_sum(image: Image.Image) -> int:
    """Total alpha: a cheap fingerprint of how much was drawn."""
    histogram = image.getchannel("A").histogram()
    return sum(value * count for value, count in enumerate(histogram))


def rows_with_ink(image: Image.Image) -> list[int]:
    alpha = image.getchannel("A")
    return [y for y in range(image.height) if alpha.crop((0, y, image.width, y + 1)).getbbox()]


def pixels(image: Image.Image) -> list[tuple[int, ...]]:
    return list(image.get_flattened_data())  # type: ignore[arg-type]


def line_crops(engine: RenderEngine, text: str, s: Style) -> list[Image.Image]:
    """One horizontal band per text line, located from the layout's baselines."""
    image = decode(engine.render(text, s))
    baselines = sorted({p.y for p in engine.placements(text, s)})
    return [
        image.crop((0, max(0, y - int(s.size * 0.7)), image.width, min(image.height, y + int(s.size * 0.15))))
        for y in baselines
    ]
