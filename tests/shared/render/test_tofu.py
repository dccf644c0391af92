"""No `.notdef` boxes: every cluster of a multilingual sample draws a real glyph.

Independent of the cmap logic the engine uses for fallback: each cluster is rasterised alone in
the font the engine chose for it and compared with that font's `.notdef` rendering (a code point
the font does not map). Equal bitmaps mean tofu.
"""

from __future__ import annotations

import pytest
from PIL import Image, ImageFont

from shared.contract.errors import RenderError
from shared.render import RenderEngine
from shared.render.faces import FaceKey
from shared.render.segment import clusters_of

from .helpers import style

SAMPLES = {
    "Latin": "Hello Café façade Œuvre",
    "Cyrillic": "Привет, мир! Ёлка",
    "Greek": "Καλημέρα κόσμε",
    "Chinese": "你好世界，繁體中文：東華門街道。",
    "Japanese": "こんにちは、カタカナ・ひらがな「日本語」",
    "Korean": "안녕하세요 세계",
    "Arabic": "مرحبا بالعالم ١٢٣",
    "Hebrew": "שלום עולם",
    "Devanagari": "नमस्ते दुनिया",
    "Emoji": "😀🚀👍🏽👨‍👩‍👧🇨🇳❤️",
    "Symbols": "→ ★ © ™ € ¥ ½ ±",
}


def _bitmap(face: ImageFont.FreeTypeFont, text: str, color: bool) -> bytes:
    core, _ = face.getmask2(text, "RGBA" if color else "L", anchor="ls")
    image = Image.Image()._new(core)
    return repr(image.size).encode() + image.tobytes()


def _notdef(engine: RenderEngine, font: str, face: ImageFont.FreeTypeFont, color: bool) -> bytes:
    coverage = engine.catalogue.coverage(font)
    unmapped = next(cp for cp in range(0xE000, 0xF900) if cp not in coverage)
    return _bitmap(face, chr(unmapped), color)


def assert_no_tofu(engine: RenderEngine, text: str, font: str = "sans") -> None:
    s = style(font=font, size=32)
    result = engine.render(text, s)
    assert result.missing_glyphs == ()
    for placement in engine.placements(text, s):
        face = engine.faces.face(FaceKey(placement.font, placement.size))
        notdef = _notdef(engine, placement.font, face, placement.color)
        for cluster in clusters_of(placement.text):
            if cluster.isspace():
                continue
            drawn = _bitmap(face, cluster, placement.color)
            assert drawn != notdef, f"{cluster!r} drew as .notdef in {placement.font}"


@pytest.mark.parametrize("script", list(SAMPLES))
def test_sample_has_no_tofu(engine: RenderEngine, script: str) -> None:
    assert_no_tofu(engine, SAMPLES[script])


@pytest.mark.parametrize("font", ["sans", "sans-bold", "serif", "sans-jp", "sans-kr", "sans-tc", "mono"])
def test_every_family_falls_back(engine: RenderEngine, font: str) -> None:
    assert_no_tofu(engine, " ".join(SAMPLES.values()), font)


def test_detector_sees_tofu(engine: RenderEngine) -> None:
    """Control: Noto Sans alone has no Han, so '中' must compare equal to its .notdef."""
    face = engine.faces.face(FaceKey("sans", 32))
    assert _bitmap(face, "中", False) == _notdef(engine, "sans", face, False)


def test_uncovered_character_is_reported_not_drawn(engine: RenderEngine) -> None:
    text = "abc \U0010fffd 中"  # plane-16 private use: no bundled font maps it
    result = engine.render(text, style())
    assert result.missing_glyphs == ("\U0010fffd",)
    with pytest.raises(RenderError, match="U\\+10FFFD"):
        engine.render(text, style(strict=True))
    assert engine.render("abc 中", style(strict=True)).missing_glyphs == ()
