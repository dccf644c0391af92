"""The optional font pack: fonts for every script beyond the bundled core, and how to install it.

The bundled `fonts/` folder stays lean (Latin, Greek, Cyrillic, CJK, Arabic, Hebrew, Devanagari,
symbols, emoji). The pack adds one Noto face per further script, copied unmodified from Debian's
`fonts-noto-core` (SIL OFL 1.1) into a folder of its own (`fonts/pack/`, not in git), with the
licence texts beside them. `make fonts-pack` installs it; the catalogue loads whatever part of it
is present, under the stable names below, and every fallback chain reaches those names.

`make fonts-pack` runs `main()` ([--source DIR] [--dest DIR]) after installing the Debian package.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

PACK_DIR_ENV = "IMAGEGEN_FONT_PACK_DIR"
DEBIAN_PACKAGE = "fonts-noto-core"
DEBIAN_FONTS = Path("/usr/share/fonts/truetype/noto")
DEBIAN_COPYRIGHT = Path("/usr/share/doc/fonts-noto-core/copyright")

# Catalogue name -> file in fonts-noto-core. Every script of the CLDR base locales that the
# core does not cover comes first (tests/shared/render/test_scripts.py checks CLDR's names in
# every base locale), then further living scripts with Noto faces. Script faces join every
# fallback chain in this order, after the core's script faces; PACK_SYMBOLS join after the
# core's symbol face (so symbols the core draws keep their look); PACK_STYLE_ONLY faces are
# chosen by name only.
PACK_FONTS: tuple[tuple[str, str], ...] = (
    ("thai", "NotoSansThai-Regular.ttf"),
    ("lao", "NotoSansLao-Regular.ttf"),
    ("khmer", "NotoSansKhmer-Regular.ttf"),
    ("myanmar", "NotoSansMyanmar-Regular.ttf"),
    ("bengali", "NotoSansBengali-Regular.ttf"),
    ("gujarati", "NotoSansGujarati-Regular.ttf"),
    ("gurmukhi", "NotoSansGurmukhi-Regular.ttf"),
    ("oriya", "NotoSansOriya-Regular.ttf"),
    ("tamil", "NotoSansTamil-Regular.ttf"),
    ("telugu", "NotoSansTelugu-Regular.ttf"),
    ("kannada", "NotoSansKannada-Regular.ttf"),
    ("malayalam", "NotoSansMalayalam-Regular.ttf"),
    ("sinhala", "NotoSansSinhala-Regular.ttf"),
    # Debian's Noto has no sans Tibetan; the serif face is the one Tibetan Noto design.
    ("tibetan", "NotoSerifTibetan-Regular.ttf"),
    ("ethiopic", "NotoSansEthiopic-Regular.ttf"),
    ("armenian", "NotoSansArmenian-Regular.ttf"),
    ("georgian", "NotoSansGeorgian-Regular.ttf"),
    ("syriac", "NotoSansSyriac-Regular.ttf"),
    ("thaana", "NotoSansThaana-Regular.ttf"),
    ("mongolian", "NotoSansMongolian-Regular.ttf"),
    ("cherokee", "NotoSansCherokee-Regular.ttf"),
    ("canadian-syllabics", "NotoSansCanadianAboriginal-Regular.ttf"),
    ("tifinagh", "NotoSansTifinagh-Regular.ttf"),
    ("yi", "NotoSansYi-Regular.ttf"),
    ("vai", "NotoSansVai-Regular.ttf"),
    ("nko", "NotoSansNKo-Regular.ttf"),
    ("ol-chiki", "NotoSansOlChiki-Regular.ttf"),
    ("chakma", "NotoSansChakma-Regular.ttf"),
    ("osage", "NotoSansOsage-Regular.ttf"),
    ("coptic", "NotoSansCoptic-Regular.ttf"),
    ("tai-viet", "NotoSansTaiViet-Regular.ttf"),
    ("hanifi-rohingya", "NotoSansHanifiRohingya-Regular.ttf"),
    ("nyiakeng-puachue-hmong", "NotoSerifNyiakengPuachueHmong-Regular.ttf"),
    ("adlam", "NotoSansAdlam-Regular.ttf"),
    ("javanese", "NotoSansJavanese-Regular.ttf"),
    ("balinese", "NotoSansBalinese-Regular.ttf"),
    ("sundanese", "NotoSansSundanese-Regular.ttf"),
    ("meetei-mayek", "NotoSansMeeteiMayek-Regular.ttf"),
    ("lisu", "NotoSansLisu-Regular.ttf"),
    ("tai-le", "NotoSansTaiLe-Regular.ttf"),
    ("new-tai-lue", "NotoSansNewTaiLue-Regular.ttf"),
    ("tai-tham", "NotoSansTaiTham-Regular.ttf"),
    ("cham", "NotoSansCham-Regular.ttf"),
    ("kayah-li", "NotoSansKayahLi-Regular.ttf"),
    ("bamum", "NotoSansBamum-Regular.ttf"),
    ("wancho", "NotoSansWancho-Regular.ttf"),
    ("pahawh-hmong", "NotoSansPahawhHmong-Regular.ttf"),
    ("syloti-nagri", "NotoSansSylotiNagri-Regular.ttf"),
    ("buginese", "NotoSansBuginese-Regular.ttf"),
    ("batak", "NotoSansBatak-Regular.ttf"),
    ("saurashtra", "NotoSansSaurashtra-Regular.ttf"),
    ("lepcha", "NotoSansLepcha-Regular.ttf"),
    ("limbu", "NotoSansLimbu-Regular.ttf"),
    ("newa", "NotoSansNewa-Regular.ttf"),
    ("miao", "NotoSansMiao-Regular.ttf"),
    ("mende-kikakui", "NotoSansMendeKikakui-Regular.ttf"),
    ("bassa-vah", "NotoSansBassaVah-Regular.ttf"),
    ("symbols-1", "NotoSansSymbols-Regular.ttf"),
    ("math", "NotoSansMath-Regular.ttf"),
    # Urdu in its customary Nastaliq style, by name only: as a fallback it would take Arabic
    # text that the Naskh-style `arabic` face already draws.
    ("urdu-nastaliq", "NotoNastaliqUrdu-Regular.ttf"),
)
PACK_SYMBOLS = ("symbols-1", "math")
PACK_STYLE_ONLY = frozenset({"urdu-nastaliq"})
# Licence texts copied beside the fonts: the OFL itself and Debian's copyright file.
LICENCE_FILES = ("OFL.txt", "copyright-fonts-noto-core.txt")


def pack_script_faces() -> tuple[str, ...]:
    """Pack faces for scripts that take part in fallback, in chain order."""
    return tuple(name for name, _ in PACK_FONTS if name not in PACK_STYLE_ONLY and name not in PACK_SYMBOLS)


def pack_dir(bundled: Path) -> Path:
    """Where the pack lives: `$IMAGEGEN_FONT_PACK_DIR`, else `pack/` inside the bundled folder
    (so an image that copies `fonts/` after `make fonts-pack` carries the pack too)."""
    override = os.environ.get(PACK_DIR_ENV)
    return Path(override) if override else bundled / "pack"


def install(dest: Path, source: Path = DEBIAN_FONTS, ofl: Path | None = None) -> list[str]:
    """Copy the pack's fonts and licences from `source` into `dest`; the files copied.

    Fails (FileNotFoundError) naming every missing font, so a partial pack is never silent.
    """
    missing = [file for _, file in PACK_FONTS if not (source / file).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} pack fonts are not in {source} (apt-get install {DEBIAN_PACKAGE}): "
            + ", ".join(missing)
        )
    dest.mkdir(parents=True, exist_ok=True)
    copied: list[str] = []
    for _, file in PACK_FONTS:
        shutil.copyfile(source / file, dest / file)
        copied.append(file)
    if ofl is not None:
        shutil.copyfile(ofl, dest / LICENCE_FILES[0])
        copied.append(LICENCE_FILES[0])
    if DEBIAN_COPYRIGHT.is_file():
        shutil.copyfile(DEBIAN_COPYRIGHT, dest / LICENCE_FILES[1])
        copied.append(LICENCE_FILES[1])
    return copied


def main(argv: list[str] | None = None) -> int:
    from shared.render.fonts import bundled_fonts_dir

    bundled = bundled_fonts_dir()
    parser = argparse.ArgumentParser(description="Copy the optional font pack from Debian's Noto fonts.")
    parser.add_argument("--source", type=Path, default=DEBIAN_FONTS)
    parser.add_argument("--dest", type=Path, default=pack_dir(bundled))
    args = parser.parse_args(argv)
    try:
        copied = install(args.dest, args.source, ofl=bundled / "OFL.txt")
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    fonts = sum(1 for f in copied if f not in LICENCE_FILES)
    size = sum((args.dest / f).stat().st_size for f in copied) / 1e6
    print(f"font pack: {fonts} fonts and their licences in {args.dest} ({size:.1f} MB)")
    return 0
