"""The palette PNG fast path decodes to exactly the pixels of an RGBA render."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from shared.contract.colors import parse_color
from shared.render import RenderEngine
from shared.render.faces import FaceKey

from .helpers import decode, style

TEXTS = [
    "上海市浦东新区 Organic Green Tea 500g",
    "AVAWAY Typography fj",
    "Hello שלום مرحبا नमस्ते",
    "「东华门街道」，景山街道。",
]
STYLES = [
    {},
    {"color": "#3366cc"},
    {"color": "rgba(200, 30, 60, 0.5)"},
    {"color": "#0a0a0a03"},
    {"stroke_width": 2, "color": "green"},
    {"font": "serif", "color": "red", "padding": [3, 5]},
    {"letter_spacing": -8},
    {"max_width": 300, "align": "center"},
    {"background": "#fffbe6", "padding": 6},
    {"background": "rgba(0, 0, 80, 0.5)", "color": "#ffcc00", "stroke_width": 1},
    {"background": "#00ff0000", "color": "red"},
]


def pillow_reference(engine: RenderEngine, text: str, fields: dict[str, object]) -> Image.Image:
    """The same layout drawn by Pillow itself: ImageDraw.text per piece on an RGBA canvas."""
    s = style(**fields)
    rendered = engine.render(text, s)
    canvas = Image.new("RGBA", (rendered.width, rendered.height))
    draw = ImageDraw.Draw(canvas)
    for p in engine.placements(text, s):
        face = engine.faces.face(FaceKey(p.font, p.size))
        draw.text(
            (p.x, p.y),
            p.text,
            font=face,
            anchor="ls",
            fill=parse_color(s.color),
            direction=p.direction,
            stroke_width=s.stroke_width,
        )
    return canvas


@pytest.mark.parametrize("fields", STYLES, ids=[str(s) for s in STYLES])
@pytest.mark.parametrize("text", TEXTS)
def test_palette_png_equals_rgba(engine: RenderEngine, text: str, fields: dict[str, object]) -> None:
    s = style(**fields)
    fast = engine.render(text, s)
    with Image.open(io.BytesIO(fast.data)) as raw:
        assert raw.mode == "P"
        # tRNS carries the alpha ramp; an opaque background needs none.
        assert ("transparency" in raw.info) == (fields.get("background") != "#fffbe6")
    fast_rgba = decode(fast)
    # Against our own RGBA compositor...
    assert fast_rgba.tobytes() == decode(engine.render_rgba(text, s)).tobytes()
    # ...and, on a transparent canvas, against Pillow drawing the same layout.
    if "background" not in fields:
        assert fast_rgba.tobytes() == pillow_reference(engine, text, fields).tobytes()


def test_single_word_matches_plain_pillow(engine: RenderEngine) -> None:
    """One piece in one font: the engine is ImageDraw.text, kerning included."""
    text = "AVAWAY To"
    s = style(font="sans", color="#112233")
    out = decode(engine.render(text, s))
    (p0,) = [p for p in engine.placements(text, s) if p.text.startswith("AVAWAY")][:1]
    face = engine.faces.face(FaceKey("sans", 48))
    ref = Image.new("RGBA", out.size)
    ImageDraw.Draw(ref).text((p0.x, p0.y), text, font=face, anchor="ls", fill="#112233")
    assert out.tobytes() == ref.tobytes()


def test_fast_png_smaller_than_pillow_default(engine: RenderEngine) -> None:
    for text in TEXTS:
        s = style(font="sans-sc")
        fast = engine.render(text, s)
        rgba = decode(fast)
        buf = io.BytesIO()
        rgba.save(buf, "PNG")  # what a user gets from Pillow's defaults
        assert len(fast.data) <= len(buf.getvalue())


@pytest.mark.parametrize(
    ("fields", "mode"),
    [
        ({"stroke_width": 2, "stroke_color": "red"}, "RGBA"),
        ({"background": "white", "stroke_width": 1, "stroke_color": "blue"}, "RGBA"),
        # Text and shadow both black: the colours differ in alpha only, so alpha is the index.
        ({"shadow": {"blur": 1}}, "P"),
        ({"shadow": {"blur": 2, "color": "#0000ff80"}, "color": "#00f"}, "P"),
    ],
)
def test_multi_colour_styles_decode_to_the_composite(
    engine: RenderEngine, fields: dict[str, object], mode: str
) -> None:
    s = style(**fields)
    out = engine.render("Mixed 颜色", s)
    with Image.open(io.BytesIO(out.data)) as raw:
        assert raw.mode == mode
    composite = engine.rasterise("Mixed 颜色", s, force_rgba=True)
    assert composite.mode == "RGBA"
    assert decode(out).tobytes() == composite.tobytes()


def test_basic_layout_shortcut_draws_what_raqm_draws(engine: RenderEngine) -> None:
    """Lone one-em CJK characters skip raqm; that must not change a single pixel or advance."""
    wide = sorted(engine.catalogue.em_wide("sans-sc"))
    assert len(wide) > 20_000
    for size in (20, 48):
        key = FaceKey("sans-sc", size)
        raqm, basic = engine.faces.face(key), engine.faces.face(key, basic=True)
        for cp in wide[::397]:
            ch = chr(cp)
            assert raqm.getlength(ch) == size == engine.faces.em_advance(key, ch)
            for stroke in (0, 2):
                a, oa = raqm.getmask2(ch, "L", None, None, None, stroke, "ls", stroke_filled=True)
                b, ob = basic.getmask2(ch, "L", None, None, None, stroke, "ls", stroke_filled=True)
                assert oa == ob and a.size == b.size
                assert Image.Image()._new(a).tobytes() == Image.Image()._new(b).tobytes()
