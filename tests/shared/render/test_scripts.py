"""Every script of the CLDR base locales has a face (bundled core plus the font pack).

CLDR's data comes from PyPI `babel` (a dev dependency): for each base locale, its own name,
language names, territory names, months and weekdays, i.e. real words in the locale's script.
`make test` installs the font pack first (`make fonts-pack`), so these run against it.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from babel import Locale, localedata
from fontTools import unicodedata as ucd

from shared.render import FontCatalogue, default_catalogue
from shared.render.fontpack import LICENCE_FILES, PACK_FONTS, install, pack_dir
from shared.render.fonts import bundled_fonts_dir
from shared.render.scripts import SCRIPT_SAMPLES

# Characters no font needs to draw: joiners and variation selectors shape or select only.
_INVISIBLE = {0x200C, 0x200D, 0xFE0E, 0xFE0F}


def _base_locales() -> list[str]:
    return sorted(code for code in localedata.locale_identifiers() if "_" not in code)


def _locale_words(code: str) -> list[str]:
    locale = Locale.parse(code)
    words = [locale.get_display_name(locale) or ""]
    words += list(locale.languages.values()) + list(locale.territories.values())
    words += list(locale.months["format"]["wide"].values()) + list(locale.days["format"]["wide"].values())
    return [unicodedata.normalize("NFC", w) for w in words]


def _script_name(code: str) -> str:
    return ucd.script_name(code).replace("_", " ")


def test_pack_is_installed_for_the_suite() -> None:
    """`make test` depends on `make fonts-pack`; a suite without it would test far less."""
    folder = pack_dir(bundled_fonts_dir())
    absent = [file for _, file in PACK_FONTS if not (folder / file).is_file()]
    assert absent == [], f"run `make fonts-pack`: {absent}"
    assert all((folder / name).is_file() for name in LICENCE_FILES)


@pytest.mark.slow
def test_every_cldr_base_locale_is_covered(report: list[str]) -> None:
    catalogue = default_catalogue()
    chain = catalogue.chain("sans")
    tables = [catalogue.coverage(name) for name in chain]
    locales = _base_locales()
    assert len(locales) > 200
    uncovered: dict[str, set[str]] = {}
    scripts: set[str] = set()
    characters = 0
    for code in locales:
        for word in _locale_words(code):
            for ch in word:
                cp = ord(ch)
                if cp in _INVISIBLE or ch.isspace():
                    continue
                characters += 1
                script = ucd.script(ch)
                if script not in ("Zyyy", "Zinh", "Zzzz"):
                    scripts.add(_script_name(script))
                if not any(cp in table for table in tables):
                    uncovered.setdefault(code, set()).add(f"U+{cp:04X}")
    report.append(
        f"CLDR base locales covered by the default font: {len(locales) - len(uncovered)}/{len(locales)} "
        f"({characters} characters of their names, {len(scripts)} scripts)"
    )
    assert uncovered == {}
    # The catalogue's report names every one of those scripts and the face that draws it.
    report = catalogue.script_coverage("sans")
    assert scripts - set(SCRIPT_SAMPLES) == set(), "add a sample for each script CLDR uses"
    assert {script: report[script] for script in scripts if report[script] is None} == {}
    for script in ("Thai", "Khmer", "Myanmar", "Bengali", "Tibetan", "Ethiopic", "Syriac", "Thaana"):
        assert report[script] == script.lower(), (script, report[script])


def test_issue_scripts_render_from_the_default_font() -> None:
    """The scripts that used to fail every row ("no font covers any character")."""
    catalogue = default_catalogue()
    issue_scripts = (
        "Thai|Khmer|Myanmar|Bengali|Gujarati|Gurmukhi|Oriya|Tamil|Telugu|Kannada|Malayalam|Sinhala|"
        "Tibetan|Ethiopic|Armenian|Georgian|Hebrew|Arabic|Syriac|Thaana|Lao|Mongolian|Cherokee|"
        "Canadian Aboriginal"
    )
    for script in issue_scripts.split("|"):
        assert catalogue.script_coverage("sans")[script] is not None, script
        assert catalogue.script_coverage("serif")[script] is not None, script


def test_without_the_pack_the_report_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGEN_FONT_PACK_DIR", str(tmp_path / "nowhere"))
    lean = FontCatalogue.load()
    report = lean.script_coverage("sans")
    assert report["Thai"] is None and report["Ethiopic"] is None
    assert report["Han"] == "sans-sc" and report["Devanagari"] == "devanagari"
    assert "thai" not in lean and "thai" not in lean.chain("sans")
    infos = {info.name: info for info in default_catalogue().describe()}
    assert "Thai" in infos["thai"].scripts and "thai" in infos["sans"].fallback


def test_install_copies_fonts_and_licences_and_names_what_is_missing(tmp_path: Path) -> None:
    source = pack_dir(bundled_fonts_dir())
    dest = tmp_path / "pack"
    copied = install(dest, source, ofl=bundled_fonts_dir() / "OFL.txt")
    assert {file for _, file in PACK_FONTS} <= set(copied)
    assert (dest / "OFL.txt").read_bytes() == (bundled_fonts_dir() / "OFL.txt").read_bytes()
    thai = "NotoSansThai-Regular.ttf"
    assert (dest / thai).read_bytes() == (source / thai).read_bytes()
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "NotoSansThai-Regular.ttf").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"NotoSansKhmer-Regular\.ttf") as info:
        install(tmp_path / "elsewhere", partial)
    assert "NotoSansThai-Regular.ttf" not in str(info.value)
    assert not (tmp_path / "elsewhere").exists()
