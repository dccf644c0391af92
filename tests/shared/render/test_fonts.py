"""The bundled fonts folder and the catalogue built from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import pytest

from shared.render import FontCatalogue, FontInfo, RenderEngine, default_catalogue, parse_style
from shared.render.fonts import bundled_fonts_dir

from .helpers import decode, style

FONTS = Path(__file__).resolve().parents[3] / "fonts"


def test_fonts_folder_under_60_mb_with_licences() -> None:
    files = [p for p in FONTS.iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 60 * 1024 * 1024
    names = {p.name for p in files}
    assert {"OFL.txt", "LICENSE-DejaVu.txt", "README.md"} <= names
    readme = (FONTS / "README.md").read_text(encoding="utf-8")
    for font in (p for p in files if p.suffix in (".ttf", ".ttc", ".otf")):
        assert font.name in readme, f"{font.name} is not listed in fonts/README.md"


def test_bundled_dir_is_the_repo_folder() -> None:
    assert bundled_fonts_dir().resolve() == FONTS.resolve()


def test_describe_lists_name_family_style_file_scripts() -> None:
    infos = {info.name: info for info in default_catalogue().describe()}
    required = {"sans", "serif", "sans-sc", "sans-tc", "sans-jp", "sans-kr", "arabic", "hebrew"}
    assert required | {"devanagari", "emoji"} <= set(infos)
    assert {"Latin", "Greek", "Cyrillic"} <= set(infos["sans"].scripts)
    assert {"Latin", "Greek", "Cyrillic"} <= set(infos["serif"].scripts)
    for name in ("sans-sc", "sans-tc", "sans-jp", "sans-kr"):
        assert {"Han", "Hiragana", "Katakana", "Hangul"} <= set(infos[name].scripts)
    assert "Arabic" in infos["arabic"].scripts and "Hebrew" in infos["hebrew"].scripts
    assert "Devanagari" in infos["devanagari"].scripts
    assert infos["emoji"].color and infos["emoji"].fixed_size == 109
    assert infos["sans"].family == "Noto Sans" and infos["sans"].style == "Regular"
    assert infos["sans-sc"].file == "NotoSansCJK-Regular.ttc"
    assert "sans-sc" in infos["sans"].fallback
    # Serialisable for the imagegen.fonts reply, and never exposing a server path.
    payload = msgspec.json.decode(msgspec.json.encode(list(infos.values())), type=list[FontInfo])
    assert all("/" not in info.file for info in payload)


def test_extra_dirs_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "server-fonts"
    extra.mkdir()
    shutil.copy(FONTS / "DejaVuSans.ttf", extra / "Custom.ttf")
    shutil.copy(FONTS / "OFL.txt", extra / "not-a-font.ttf")  # unreadable: skipped, not fatal
    catalogue = FontCatalogue.load([extra])
    info = catalogue.info("dejavu-sans-book")
    assert not info.bundled and info.file == "Custom.ttf"
    assert "sans" in catalogue and "dejavu-sans" in catalogue  # bundled names never shadowed
    server_style = parse_style({"font": "dejavu-sans-book"}, catalogue=catalogue)
    out = RenderEngine(catalogue).render("Server font 中", server_style)
    assert out.missing_glyphs == () and decode(out).getbbox() is not None

    alt = tmp_path / "alt-bundled"
    alt.mkdir()
    shutil.copy(FONTS / "NotoSans-Regular.ttf", alt)
    monkeypatch.setenv("IMAGEGEN_FONTS_DIR", str(alt))
    assert FontCatalogue.load().names() == ["sans"]


def test_engine_reuses_faces(engine: RenderEngine) -> None:
    engine.render("缓存 cache", style())
    faces = dict(engine.faces._faces)
    engine.render("缓存 cache again", style())
    assert engine.faces._faces == faces  # no font re-read per item


def _variable_font(path: Path) -> None:
    """A one-glyph variable font: 'I' is a bar whose width follows the wght axis."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib.tables.TupleVariation import TupleVariation

    def bar(width: int) -> object:
        pen = TTGlyphPen(None)
        pen.moveTo((100, 0))
        pen.lineTo((100, 700))
        pen.lineTo((100 + width, 700))
        pen.lineTo((100 + width, 0))
        pen.closePath()
        return pen.glyph()

    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder([".notdef", "space", "I"])
    fb.setupCharacterMap({32: "space", 73: "I"})
    fb.setupGlyf({".notdef": bar(400), "space": TTGlyphPen(None).glyph(), "I": bar(100)})
    fb.setupHorizontalMetrics({".notdef": (600, 100), "space": (300, 0), "I": (800, 100)})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "Test Var", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=800, usWinAscent=800, usWinDescent=200)
    fb.setupPost()
    fb.setupFvar([("wght", 100, 400, 900, "Weight")], [])
    wide = [(0, 0), (0, 0), (400, 0), (400, 0), (0, 0), (0, 0), (0, 0), (0, 0)]
    fb.setupGvar({"I": [TupleVariation({"wght": (0.0, 1.0, 1.0)}, wide)]})
    fb.save(str(path))


def test_variable_font_weight(tmp_path: Path) -> None:
    from shared.contract.errors import BadRequest

    _variable_font(tmp_path / "TestVar.ttf")
    catalogue = FontCatalogue.load([tmp_path])
    info = catalogue.info("test-var-regular")
    assert info.axes == {"wght": [100.0, 400.0, 900.0]}
    engine = RenderEngine(catalogue)

    def bar_width(**fields: object) -> int:
        s = parse_style({"font": "test-var-regular", "size": 100, **fields}, catalogue=catalogue)
        box = decode(engine.render("I", s)).getchannel("A").getbbox()
        assert box is not None
        return box[2] - box[0]

    regular, heavy = bar_width(), bar_width(weight=900)
    assert regular == pytest.approx(10, abs=1)
    assert heavy == pytest.approx(50, abs=1)
    assert bar_width(axes={"wght": 900}) == heavy
    with pytest.raises(BadRequest) as error:
        parse_style({"font": "test-var-regular", "weight": 950}, catalogue=catalogue)
    assert error.value.field == "style.weight"
    with pytest.raises(BadRequest) as error:
        parse_style({"font": "test-var-regular", "axes": {"wdth": 80}}, catalogue=catalogue)
    assert error.value.field == "style.axes.wdth"
