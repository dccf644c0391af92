"""Numbers composed from cached glyphs draw and measure exactly as raqm shapes them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image

from shared.render import FontCatalogue, RenderEngine
from shared.render.faces import NUMERIC, FaceCache, FaceKey

FIXED = ["¥30.29", "1,234.50", "12:30", "50%", "(2)", "-3.5", "+86", "#7", "2026/11/30", "€9", "£0.99", "1;2"]


def _pieces() -> list[str]:
    rng = random.Random(7)
    chars = sorted(NUMERIC)
    return FIXED + ["".join(rng.choice(chars) for _ in range(rng.randint(2, 9))) for _ in range(40)]


def _shaped(
    faces: FaceCache, key: FaceKey, text: str, stroke: int
) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
    """Pillow's own raqm rendering of the whole piece, cropped to its ink."""
    core, offset = faces.face(key).getmask2(text, "L", "ltr", None, None, stroke, "ls", stroke_filled=True)
    image = Image.Image()._new(core)
    box = image.getbbox()
    assert box is not None
    image = image.crop(box)
    return image.tobytes(), image.size, (offset[0] + box[0], offset[1] + box[1])


@pytest.mark.parametrize("font", ["sans-sc", "sans", "serif", "mono"])
@pytest.mark.parametrize("size", [13, 20, 48])
def test_numbers_compose_exactly(font: str, size: int) -> None:
    faces = RenderEngine().faces  # fresh caches: every piece below is composed, not recalled
    key = FaceKey(font, size)
    for text in _pieces():
        assert faces.composable(key, text, "ltr", (), None, 0), text
        assert faces.advance(key, text, "ltr", (), None) == faces.face(key).getlength(text, "L", "ltr")
        for stroke in (0, 2):
            composed = faces.bitmap(key, text, "ltr", (), None, stroke)
            pixels = (composed.image.tobytes(), composed.image.size, composed.offset)
            assert pixels == _shaped(faces, key, text, stroke), (text, stroke)


def test_letters_and_other_directions_are_shaped(engine: RenderEngine) -> None:
    key = FaceKey("sans-sc", 20)
    # A Latin letter makes the run Latin, and this font then draws "1" differently.
    assert not engine.faces.composable(key, "1g", "ltr", (), None, 0)
    assert not engine.faces.composable(key, "12", "rtl", (), None, 0)
    assert not engine.faces.composable(key, "12", "ltr", ("vert",), None, 0)
    assert not engine.faces.composable(key, "7", "ltr", (), None, 0)


def _kerned_font(path: Path) -> None:
    """Digits one and two as bars, with a kerning pair one-one that pulls them together."""
    from fontTools.feaLib.builder import addOpenTypeFeaturesFromString
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    def bar(width: int) -> object:
        pen = TTGlyphPen(None)
        pen.moveTo((100, 0))
        pen.lineTo((100, 700))
        pen.lineTo((100 + width, 700))
        pen.lineTo((100 + width, 0))
        pen.closePath()
        return pen.glyph()

    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder([".notdef", "space", "one", "two"])
    fb.setupCharacterMap({32: "space", 0x31: "one", 0x32: "two"})
    fb.setupGlyf({".notdef": bar(400), "space": TTGlyphPen(None).glyph(), "one": bar(120), "two": bar(300)})
    fb.setupHorizontalMetrics(
        {".notdef": (600, 100), "space": (300, 0), "one": (500, 100), "two": (600, 100)}
    )
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "Test Kern", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=800, usWinAscent=800, usWinDescent=200)
    fb.setupPost()
    kern = "languagesystem DFLT dflt;\nfeature kern { pos one one -250; } kern;"
    addOpenTypeFeaturesFromString(fb.font, kern)
    fb.save(str(path))


def test_kerned_pairs_are_shaped(tmp_path: Path) -> None:
    _kerned_font(tmp_path / "TestKern.ttf")
    engine = RenderEngine(FontCatalogue.load([tmp_path]))
    (name,) = [n for n in engine.catalogue.names() if n.startswith("test-kern")]
    faces, key = engine.faces, FaceKey(name, 40)
    assert not faces.composable(key, "11", "ltr", (), None, 0)  # the pair check sees the kern
    assert faces.composable(key, "12", "ltr", (), None, 0)
    assert faces.composable(key, "2122", "ltr", (), None, 0)
    assert not faces.composable(key, "2112", "ltr", (), None, 0)
    for text in ("11", "211", "1212", "22"):
        shaped = faces.face(key).getlength(text, "L", "ltr")
        assert faces.advance(key, text, "ltr", (), None) == shaped
        drawn = faces.bitmap(key, text, "ltr", (), None, 0)
        assert (drawn.image.tobytes(), drawn.image.size, drawn.offset) == _shaped(faces, key, text, 0)
    # The kern is really there: "11" is narrower than twice "1".
    assert faces.advance(key, "11", "ltr", (), None) < 2 * faces.advance(key, "1", "ltr", (), None)
