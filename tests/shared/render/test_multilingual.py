"""Real text in every script of the CLDR base locales renders completely, checked in pixels.

`tests/data/cldr-names.tsv` holds, per script, base locales' own language name, main territory
and month names as CLDR spells them (Unicode License v3, `tests/data/cldr-LICENSE`; made by
`tests/data/make_cldr_names.py`). Each line must render from the default font with no missing
glyph and no `.notdef` box, through the face that the catalogue reports for its script, with
ink that grows with the text, right-to-left scripts starting at the right, and wrapping between
words.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.render import RenderEngine, default_catalogue

from .helpers import alpha_bbox, decode, ink_sum, style
from .test_tofu import assert_no_tofu

DATA = Path(__file__).resolve().parents[2] / "data" / "cldr-names.tsv"
RTL_SCRIPTS = {"Arabic", "Hebrew", "Syriac", "Thaana", "Nko", "Hanifi Rohingya"}


def _rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            script, locale, text = line.split("\t")
            rows.append((script, locale, text))
    return rows


ROWS = _rows()


def test_data_covers_every_script_with_a_face() -> None:
    scripts = {script for script, _, _ in ROWS}
    assert len(scripts) >= 40
    report = default_catalogue().script_coverage("sans")
    assert {s for s in scripts if report.get(s) is None} == set()


@pytest.mark.parametrize(("script", "locale", "text"), ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
def test_real_text_renders_completely(engine: RenderEngine, script: str, locale: str, text: str) -> None:
    s = style(size=32)
    result = engine.render(text, s)
    assert result.missing_glyphs == ()
    assert_no_tofu(engine, text)
    image = decode(result)
    box = alpha_bbox(image, threshold=128)
    assert box is not None and box[2] - box[0] > 16 and box[3] - box[1] > 8
    placements = engine.placements(text, s)
    face = default_catalogue().script_coverage("sans")[script]
    assert face in {p.font for p in placements}, f"{script} should be drawn in {face}"
    # More text, more ink and a wider image: nothing was dropped after the first word.
    first = text.split()[0]
    alone = decode(engine.render(first, s))
    assert image.width > alone.width and ink_sum(image) > ink_sum(alone) * 1.3
    # Placements come left to right; the logically first word starts the line on its side.
    xs = [p.x for p in placements if p.text.strip()]
    starts = [p.x for p in placements if p.text.strip() and text.startswith(p.text.strip())]
    if script in RTL_SCRIPTS:
        assert max(starts) == max(xs), [(p.text, p.x) for p in placements]
    else:
        assert min(starts) == min(xs), [(p.text, p.x) for p in placements]
    # Wrapped at half the width: several lines, each within the limit, nothing lost.
    limit = max(image.width // 2, alone.width + 8)
    wrapped = engine.render(text, style(size=32, max_width=limit))
    assert wrapped.missing_glyphs == ()
    baselines = {p.y for p in engine.placements(text, style(size=32, max_width=limit))}
    assert len(baselines) >= 2
    assert decode(wrapped).width <= limit + 32  # ink may overhang the box by a fraction of an em
