"""Pixel checks shared by the image tests: decode, alpha, ink, bounding boxes."""

from __future__ import annotations

import io

from PIL import Image


def decode_rgba(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGBA")


def alpha_of(image: Image.Image) -> Image.Image:
    return image.getchannel("A")


def corners_transparent(image: Image.Image) -> bool:
    alpha = alpha_of(image)
    w, h = image.size
    return all(alpha.getpixel(xy) == 0 for xy in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)))


def ink_pixels(image: Image.Image, threshold: int = 128) -> int:
    """How many pixels are mostly opaque."""
    return sum(alpha_of(image).point(lambda a: 255 if a >= threshold else 0).histogram()[255:])


def ink_bbox(image: Image.Image) -> tuple[int, int, int, int] | None:
    return alpha_of(image).getbbox()
