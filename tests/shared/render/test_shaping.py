"""Complex scripts are shaped: the engine draws the glyphs HarfBuzz chooses, where it puts them.

Pillow does not expose raqm's glyph ids, so the engine's image is checked against HarfBuzz's own
output (PyPI `uharfbuzz`, dev dependency) glyph by glyph: each piece the engine placed is shaped
by uharfbuzz with the same font file, and every glyph id HarfBuzz returns is drawn on its own
(through a copy of the font whose cmap maps U+F0000 + glyph id to that glyph, with Pillow's
basic layout, which does no shaping) and must be found in the engine's image at HarfBuzz's
position (within 2 px: FreeType hinting moves glyphs by a pixel), and the engine's ink must be
all explained by those glyphs. The same check run on an unshaped rendering of the text (the
nominal glyph of each character, in logical order) fails, so it does test the shaping: the
conjuncts, the pre-base vowels and the Khmer/Myanmar subscripts and medials.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import uharfbuzz as hb
from fontTools.ttLib import TTFont
from fontTools.ttLib.tables._c_m_a_p import CmapSubtable
from PIL import Image, ImageChops, ImageFilter, ImageFont

from shared.render import RenderEngine, default_catalogue

from .helpers import decode, style

SIZE = 48
PUA = 0xF0000  # glyph g of the copy is mapped from U+F0000 + g
SLACK = 2  # px a glyph may sit from HarfBuzz's position (hinting rounds advances and offsets)
FOUND = 0.9  # share of a glyph's ink the engine's image must cover at its position
UNEXPLAINED = 0.02  # share of the engine's ink allowed outside every glyph HarfBuzz placed

# Conjuncts, reph, pre-base and split vowels, subscripts and medials, in real words.
CASES = [
    ("devanagari", "क्षत्रिय हिन्दी र्क"),  # conjuncts क्ष त्र, pre-base ि, reph र्
    ("bengali", "ক্ষ্মা কোলকাতা"),  # three-consonant conjunct, split vowel ো
    ("tamil", "கொழும்பு ஸ்ரீ"),  # split vowel ொ, the ஸ்ரீ ligature
    ("myanmar", "မြန်မာ ကြွေး"),  # medial ra ြ drawn before its consonant, asat
    ("khmer", "ខ្មែរ ស្ត្រី"),  # coeng subscripts, pre-base ែ
]


@dataclass(frozen=True)
class Glyph:
    image: Image.Image  # L coverage of the glyph alone
    x: int  # top-left on the engine's canvas
    y: int


def _glyph_copy(source: Path, target: Path) -> None:
    """A copy of the font whose cmap also maps U+F0000 + g to glyph g (layout tables intact)."""
    font = TTFont(str(source))
    cmap = font["cmap"]
    table = next((t for t in cmap.tables if t.format == 12), None)
    if table is None:
        table = CmapSubtable.newSubtable(12)
        table.platformID, table.platEncID, table.language, table.cmap = 3, 10, 0, {}
        cmap.tables.append(table)
    table.cmap.update({PUA + gid: name for gid, name in enumerate(font.getGlyphOrder())})
    font.save(str(target))


class Reference:
    """HarfBuzz's shaping of one font, and each glyph drawn alone."""

    def __init__(self, font_name: str, folder: Path) -> None:
        path = default_catalogue().path(font_name)
        copy = folder / f"{font_name}-glyphs.ttf"
        _glyph_copy(path, copy)
        self.glyphs = ImageFont.truetype(str(copy), SIZE, layout_engine=ImageFont.Layout.BASIC)
        blob = hb.Blob.from_file_path(str(path))
        parent = hb.Font(hb.Face(blob))
        parent.scale = (SIZE * 64, SIZE * 64)
        # Advances as FreeType's hinting gives them (raqm shapes through FreeType); everything
        # else, the GSUB/GPOS tables included, is HarfBuzz's own.
        self.font = hb.Font(parent)
        funcs = hb.FontFuncs()
        funcs.set_glyph_h_advance_func(lambda _font, gid, _data: self._advance(gid), None)
        self.font.funcs = funcs
        self._advances: dict[int, int] = {}

    def _advance(self, gid: int) -> int:
        if gid not in self._advances:
            self._advances[gid] = round(self.glyphs.getlength(chr(PUA + gid)) * 64)
        return self._advances[gid]

    def shape(self, text: str, direction: str) -> list[tuple[int, int, int]]:
        """(glyph id, x, y) in 26.6 units from the pen, as HarfBuzz positions them."""
        buffer = hb.Buffer()
        buffer.add_str(text)
        buffer.guess_segment_properties()
        buffer.direction = direction
        hb.shape(self.font, buffer, {})
        out: list[tuple[int, int, int]] = []
        pen = 0
        for info, pos in zip(buffer.glyph_infos, buffer.glyph_positions, strict=True):
            out.append((info.codepoint, pen + pos.x_offset, pos.y_offset))
            pen += pos.x_advance
        return out

    def draw(self, gid: int, x: int, y: int) -> Glyph | None:
        """Glyph `gid` with its pen at (x, y) on the canvas (x, y in 26.6 units)."""
        mask, offset = self.glyphs.getmask2(chr(PUA + gid), "L", anchor="ls")
        image = Image.Image()._new(mask)
        if image.getbbox() is None:
            return None
        return Glyph(image, ((x + 32) >> 6) + offset[0], ((y + 32) >> 6) + offset[1])


def _ink(image: Image.Image) -> int:
    return sum(value * count for value, count in enumerate(image.histogram()))


def _found(glyph: Glyph, canvas: Image.Image) -> float:
    """Best share of the glyph's ink that `canvas` covers, within SLACK px of its place."""
    best = 0.0
    total = _ink(glyph.image)
    w, h = glyph.image.size
    for dy in range(-SLACK, SLACK + 1):
        for dx in range(-SLACK, SLACK + 1):
            box = (glyph.x + dx, glyph.y + dy, glyph.x + dx + w, glyph.y + dy + h)
            covered = ImageChops.darker(glyph.image, canvas.crop(box))
            best = max(best, _ink(covered) / total)
    return best


def _check(canvas: Image.Image, glyphs: list[Glyph]) -> tuple[float, float]:
    """(worst glyph's found share, share of the canvas's ink no glyph explains)."""
    worst = min(_found(glyph, canvas) for glyph in glyphs)
    union = Image.new("L", canvas.size)
    for glyph in glyphs:
        box = (glyph.x, glyph.y, glyph.x + glyph.image.width, glyph.y + glyph.image.height)
        union.paste(ImageChops.lighter(union.crop(box), glyph.image), box[:2])
    near = union.filter(ImageFilter.MaxFilter(2 * SLACK + 1)).point(lambda v: 255 if v else 0)
    stray = ImageChops.subtract(canvas, near)
    return worst, _ink(stray) / _ink(canvas)


@pytest.mark.parametrize(("font", "text"), CASES, ids=[font for font, _ in CASES])
def test_engine_draws_harfbuzz_glyphs(
    engine: RenderEngine, tmp_path: Path, report: list[str], font: str, text: str
) -> None:
    s = style(size=SIZE)  # the default `sans`: the script face is reached by fallback
    canvas = decode(engine.render(text, s)).getchannel("A")
    reference = Reference(font, tmp_path)
    placements = engine.placements(text, s)
    assert {p.font for p in placements} == {font}, "every piece in the script's own face"
    assert len(placements) == len(text.split()), "one piece per word: shaping sees whole words"
    glyphs: list[Glyph] = []
    unshaped = Image.new("L", canvas.size)
    nominal = ImageFont.truetype(
        str(default_catalogue().path(font)), SIZE, layout_engine=ImageFont.Layout.BASIC
    )
    for p in placements:
        assert p.size == SIZE and p.features == ()
        for gid, x, y in reference.shape(p.text, p.direction):
            glyph = reference.draw(gid, p.x * 64 + x, p.y * 64 - y)
            if glyph is not None:
                glyphs.append(glyph)
        # The control: the same piece at the same pen position without shaping.
        mask, offset = nominal.getmask2(p.text, "L", anchor="ls")
        unshaped.paste(Image.Image()._new(mask), (p.x + offset[0], p.y + offset[1]))
    found, stray = _check(canvas, glyphs)
    control_found, control_stray = _check(unshaped, glyphs)
    report.append(
        f"shaping {font}: {len(glyphs)} HarfBuzz glyphs, worst found {found:.2f}, unexplained ink "
        f"{stray:.3f} (unshaped control: {control_found:.2f}, {control_stray:.3f})"
    )
    assert found >= FOUND and stray <= UNEXPLAINED
    assert control_found < FOUND or control_stray > UNEXPLAINED, "the check must fail without shaping"
