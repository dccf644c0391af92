"""Golden pixel tests: boxes, padding, alignment, stroke, shadow, clipping, canvases."""

from __future__ import annotations

import pytest

from shared.contract.errors import RenderError
from shared.render import RenderEngine

from .helpers import alpha_bbox, decode, ink_sum, line_crops, pixels, rows_with_ink, style


def test_size_to_text_bbox_is_tight(engine: RenderEngine) -> None:
    out = engine.render("Hello 世界", style())
    image = decode(out)
    assert (out.width, out.height) == image.size
    box = alpha_bbox(image)
    assert box is not None
    # Ink reaches (within antialiasing) the left and right edges; the line box sets the height.
    assert box[0] <= 4 and box[2] >= image.width - 4
    assert 48 <= image.height <= 48 * 2


@pytest.mark.parametrize("text", ["Gjpqy|ÅÉÎ", "yjgq 中文", "ÁÉÍÓÚ ÂĈ Ṩ", "ऋषि कृष्ण", "لإيـــــــه"])
def test_no_clipped_ascenders_or_descenders(engine: RenderEngine, text: str) -> None:
    """Rendering with generous padding and cropping it away gives back every inked pixel."""
    tight = decode(engine.render(text, style(size=40)))
    padded = decode(engine.render(text, style(size=40, padding=30)))
    assert padded.size == (tight.width + 60, tight.height + 60)
    box = alpha_bbox(padded)
    assert box is not None
    assert box[0] >= 30 and box[1] >= 30 and box[2] <= padded.width - 30 and box[3] <= padded.height - 30
    assert ink_sum(padded) == ink_sum(tight)
    assert padded.crop((30, 30, 30 + tight.width, 30 + tight.height)).tobytes() == tight.tobytes()


@pytest.mark.parametrize(
    ("padding", "expected"),
    [(7, (7, 7, 7, 7)), ([3, 11], (3, 11, 3, 11)), ([1, 2, 3, 4], (1, 2, 3, 4))],
)
def test_padding(engine: RenderEngine, padding: object, expected: tuple[int, int, int, int]) -> None:
    top, right, bottom, left = expected
    plain = decode(engine.render("Pad 填充", style()))
    padded = decode(engine.render("Pad 填充", style(padding=padding)))
    assert padded.size == (plain.width + left + right, plain.height + top + bottom)
    crop = padded.crop((left, top, left + plain.width, top + plain.height))
    assert crop.tobytes() == plain.tobytes()


def _line_boxes(image_rows: list[int]) -> list[tuple[int, int]]:
    """Group consecutive inked rows into (first, last) bands: one band per text line."""
    bands: list[tuple[int, int]] = []
    for y in image_rows:
        if bands and y == bands[-1][1] + 1:
            bands[-1] = (bands[-1][0], y)
        else:
            bands.append((y, y))
    return bands


@pytest.mark.parametrize("align", ["left", "center", "right"])
def test_alignment(engine: RenderEngine, align: str) -> None:
    text = "A long first line\nshort"
    image = decode(engine.render(text, style(align=align, width=600)))
    bands = _line_boxes(rows_with_ink(image))
    assert len(bands) == 2
    second = image.crop((0, bands[1][0], image.width, bands[1][1] + 1))
    box = alpha_bbox(second)
    assert box is not None
    left_gap, right_gap = box[0], image.width - box[2]
    if align == "left":
        assert left_gap <= 4 and right_gap > 300
    elif align == "right":
        assert right_gap <= 4 and left_gap > 300
    else:
        assert abs(left_gap - right_gap) <= 4


def test_justify_fills_all_but_last_line(engine: RenderEngine) -> None:
    text = "The quick brown fox jumps over the lazy dog and keeps on running"
    s = style(max_width=420, align="justify", size=32)
    lines = line_crops(engine, text, s)
    assert len(lines) >= 3
    width = lines[0].width
    rights = []
    for line in lines:
        box = alpha_bbox(line)
        assert box is not None and box[0] <= 4
        rights.append(box[2])
    assert all(abs(r - width) <= 4 for r in rights[:-1])
    assert rights[-1] < width - 40


def test_rtl_paragraph_starts_at_right(engine: RenderEngine) -> None:
    image = decode(engine.render("שלום\nעולם גדול מאוד", style(width=500)))
    bands = _line_boxes(rows_with_ink(image))
    first = alpha_bbox(image.crop((0, bands[0][0], image.width, bands[0][1] + 1)))
    assert first is not None and image.width - first[2] <= 4 and first[0] > 200


def test_stroke_grows_ink_by_width(engine: RenderEngine) -> None:
    plain = decode(engine.render("Stroke 描边", style(padding=10)))
    stroked = decode(engine.render("Stroke 描边", style(padding=10, stroke_width=4, stroke_color="red")))
    pb, sb = alpha_bbox(plain), alpha_bbox(stroked)
    assert pb is not None and sb is not None
    assert stroked.width >= plain.width and stroked.height >= plain.height
    assert (sb[2] - sb[0]) - (pb[2] - pb[0]) in range(6, 10)
    # The outline is red, the inside black.
    reds = [px for px in pixels(stroked) if px[3] == 255 and px[0] > 200 and px[1] < 50]
    blacks = [px for px in pixels(stroked) if px[3] == 255 and max(px[:3]) < 30]
    assert reds and blacks


def test_shadow_offset_and_colour(engine: RenderEngine) -> None:
    out = decode(engine.render("Shadow", style(shadow={"offset_x": 6, "offset_y": 6, "color": "#ff0000"})))
    plain = decode(engine.render("Shadow", style()))
    assert out.width >= plain.width + 6 and out.height >= plain.height + 6
    red = [px for px in pixels(out) if px[3] == 255 and px[0] > 200 and px[1] < 60]
    assert red


def test_background_fills_canvas(engine: RenderEngine) -> None:
    out = decode(engine.render("BG", style(background="#336699", padding=5)))
    assert out.getpixel((0, 0)) == (0x33, 0x66, 0x99, 255)
    assert out.getpixel((out.width - 1, out.height - 1)) == (0x33, 0x66, 0x99, 255)


@pytest.mark.parametrize("valign", ["top", "middle", "bottom"])
def test_fixed_canvas_and_valign(engine: RenderEngine, valign: str) -> None:
    out = decode(engine.render("Box", style(width=300, height=200, valign=valign, align="center")))
    assert out.size == (300, 200)
    box = alpha_bbox(out)
    assert box is not None
    top_gap, bottom_gap = box[1], 200 - box[3]
    if valign == "top":
        assert top_gap < 25
    elif valign == "bottom":
        assert bottom_gap < 25
    else:
        assert abs(top_gap - bottom_gap) < 20
    assert abs(box[0] - (300 - box[2])) <= 4


def test_fixed_canvas_overflow(engine: RenderEngine) -> None:
    with pytest.raises(RenderError, match="does not fit"):
        engine.render("Much too long for this box", style(width=120, height=60))
    text = "Much too long for this box"
    wrapped = _line_boxes(rows_with_ink(decode(engine.render(text, style(max_width=120)))))
    assert len(wrapped) == 6
    # Clipped to the box: the lines that fit are drawn, the rest are cut off, nothing is scaled.
    roomy = decode(engine.render(text, style(width=120, height=400, overflow="clip")))
    assert roomy.size == (120, 400) and len(_line_boxes(rows_with_ink(roomy))) == 6
    clipped = decode(engine.render(text, style(width=120, height=60, overflow="clip")))
    assert clipped.size == (120, 60)
    [(top, bottom)] = _line_boxes(rows_with_ink(clipped))  # only the first line shows
    assert bottom - top == wrapped[0][1] - wrapped[0][0]


def test_wrap_respects_max_width(engine: RenderEngine) -> None:
    text = "东华门街道景山街道交道口街道安定门街道北新桥街道东四街道朝阳门街道建国门街道"
    out = engine.render(text, style(max_width=300))
    assert out.width <= 300
    assert len(_line_boxes(rows_with_ink(decode(out)))) >= 5


def test_line_and_letter_spacing(engine: RenderEngine) -> None:
    two = "上\n下"
    # The gap between the two lines' ink grows; the glyphs stay as they are.
    normal = _line_boxes(rows_with_ink(decode(engine.render(two, style()))))
    loose = _line_boxes(rows_with_ink(decode(engine.render(two, style(line_spacing=2.0)))))
    assert len(normal) == len(loose) == 2
    gap = [lines[1][0] - lines[0][1] for lines in (normal, loose)]
    assert gap[1] - gap[0] > 40, gap
    assert [b - a for a, b in normal] == [b - a for a, b in loose]
    # Seven letters, six gaps of 10 px more: the ink is 60 px wider.
    tight = alpha_bbox(decode(engine.render("spacing", style())))
    wide = alpha_bbox(decode(engine.render("spacing", style(letter_spacing=10))))
    assert tight is not None and wide is not None
    assert (wide[2] - wide[0]) - (tight[2] - tight[0]) == pytest.approx(60, abs=3)


def test_auto_fit_shrinks_and_grows(engine: RenderEngine) -> None:
    text = "自动缩放的很长的标题文字 Auto Fit Title"
    shrunk = engine.render(text, style(auto_fit=True, width=300, height=80, size=60))
    assert (shrunk.width, shrunk.height) == (300, 80)
    ink = alpha_bbox(decode(shrunk))
    assert ink is not None and ink[2] <= 300 and ink[3] <= 80
    small = decode(engine.render("Hi", style(auto_fit=True, auto_fit_grow=True, max_width=400, size=20)))
    assert small.width > 300  # grew from 20 px until the line fills the box
    with pytest.raises(RenderError, match="does not fit"):
        engine.render(text * 20, style(auto_fit=True, width=100, height=40, min_size=30))


def test_vertical_text(engine: RenderEngine) -> None:
    out = decode(engine.render("竖排文字，测试。", style(orientation="vertical")))
    assert out.height > 3 * out.width
    cols = decode(engine.render("竖排文字测试竖排文字测试", style(orientation="vertical", max_height=300)))
    assert cols.height <= 300 and cols.width > 2 * 48


def test_vertical_uses_vertical_punctuation(engine: RenderEngine) -> None:
    """The 'vert' feature swaps 「 for its rotated form: the two renderings differ."""
    horizontal = decode(engine.render("「", style(size=64)))
    vertical = decode(engine.render("「", style(size=64, orientation="vertical")))
    hb, vb = alpha_bbox(horizontal), alpha_bbox(vertical)
    assert hb is not None and vb is not None
    assert (hb[2] - hb[0] < hb[3] - hb[1]) and (vb[2] - vb[0] > vb[3] - vb[1])


def test_emoji_colour_scaled_to_size(engine: RenderEngine) -> None:
    out = decode(engine.render("A😀", style(size=48)))
    coloured = [px for px in pixels(out) if px[3] > 200 and abs(px[0] - px[2]) > 80]
    assert coloured  # yellow face pixels, not a grey mask
    assert out.height < 48 * 2


def test_vertical_space_keeps_its_cell(engine: RenderEngine) -> None:
    solid = decode(engine.render("竖排文字", style(orientation="vertical")))
    spaced = decode(engine.render("竖排 文字", style(orientation="vertical")))
    solid_ink, spaced_ink = alpha_bbox(solid), alpha_bbox(spaced)
    assert solid_ink is not None and spaced_ink is not None
    assert (spaced_ink[3] - spaced_ink[1]) - (solid_ink[3] - solid_ink[1]) == 48
    # The space is an empty cell between the second and third characters: the two halves are
    # the same glyphs, the lower one 48 px further down.
    half, width = solid.height // 2, solid.width
    assert spaced.crop((0, 0, width, half)).tobytes() == solid.crop((0, 0, width, half)).tobytes()
    assert (
        spaced.crop((0, half + 48, spaced.width, spaced.height)).tobytes()
        == solid.crop((0, half, solid.width, solid.height)).tobytes()
    )


def test_warm_up(engine: RenderEngine) -> None:
    engine.warm_up(("sans", "serif"))
    warm = decode(engine.render("warm", style(font="serif")))
    cold = decode(RenderEngine(engine.catalogue).render("warm", style(font="serif")))
    assert ink_sum(warm) > 0 and warm.tobytes() == cold.tobytes()  # warming changes nothing drawn
