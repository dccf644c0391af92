"""The font catalogue: which fonts exist, by name, with their fallback chains and coverage.

Messages name fonts by catalogue name only, never by path, so a request cannot make a renderer
open an arbitrary file. The catalogue holds the bundled `fonts/` folder, the optional font pack
(`fontpack.py`) where installed, plus any server-side folders an operator configured. Coverage
tables (the set of code points a face maps) are read once with fontTools and kept; FreeType
objects are *not* kept here, because they are not thread-safe and each `RenderEngine` keeps
its own.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fontTools.ttLib import TTCollection, TTFont

from shared.contract.messages import FontInfo
from shared.render.fontpack import PACK_FONTS, PACK_SYMBOLS, pack_dir, pack_script_faces
from shared.render.scripts import SCRIPT_SAMPLES, scripts_covered

FONTS_DIR_ENV = "IMAGEGEN_FONTS_DIR"
FONT_SUFFIXES = frozenset({".ttf", ".otf", ".ttc", ".otc"})


@dataclass(frozen=True, slots=True)
class _Entry:
    """Where a face lives and how it falls back; the mutable caches live in the catalogue."""

    name: str
    path: Path
    index: int
    fallback: tuple[str, ...]
    bundled: bool


# The bundled faces: name, file, face index in a collection. Han defaults to Simplified
# Chinese because most of the product's text is mainland Chinese.
_BUNDLED: tuple[tuple[str, str, int], ...] = (
    ("sans", "NotoSans-Regular.ttf", 0),
    ("sans-bold", "NotoSans-Bold.ttf", 0),
    ("serif", "NotoSerif-Regular.ttf", 0),
    ("serif-bold", "NotoSerif-Bold.ttf", 0),
    ("sans-sc", "NotoSansCJK-Regular.ttc", 2),
    ("sans-tc", "NotoSansCJK-Regular.ttc", 3),
    ("sans-hk", "NotoSansCJK-Regular.ttc", 4),
    ("sans-jp", "NotoSansCJK-Regular.ttc", 0),
    ("sans-kr", "NotoSansCJK-Regular.ttc", 1),
    ("arabic", "NotoSansArabic-Regular.ttf", 0),
    ("arabic-naskh", "NotoNaskhArabic-Regular.ttf", 0),
    ("hebrew", "NotoSansHebrew-Regular.ttf", 0),
    ("devanagari", "NotoSansDevanagari-Regular.ttf", 0),
    ("symbols", "NotoSansSymbols2-Regular.ttf", 0),
    ("dejavu-sans", "DejaVuSans.ttf", 0),
    ("mono", "DejaVuSansMono.ttf", 0),
    ("emoji", "NotoColorEmoji.ttf", 0),
)

# Fallback order after a face's own glyphs. Latin-first faces fall back to Chinese first; the
# font pack's scripts (where installed) come after the core scripts and before the symbol
# faces; DejaVu near the end catches the long tail of symbols; emoji last (emoji-presentation
# clusters are sent to colour faces first by the fallback logic itself). `chain()` skips the
# faces a catalogue lacks, e.g. the whole pack where it is not installed.
_TAIL: tuple[str, ...] = (
    "sans",
    "sans-sc",
    "arabic",
    "hebrew",
    "devanagari",
    *pack_script_faces(),
    "symbols",
    *PACK_SYMBOLS,
    "dejavu-sans",
    "emoji",
)
_SERIF_TAIL: tuple[str, ...] = ("serif", "sans", "sans-sc", "arabic-naskh", *_TAIL[2:])


def _is_ideographic(cp: int) -> bool:
    """CJK ideographs, kana, Hangul, CJK punctuation and fullwidth forms."""
    return (
        0x2E80 <= cp <= 0x9FFF
        or 0xAC00 <= cp <= 0xD7AF
        or 0xF900 <= cp <= 0xFAFF
        or 0xFF00 <= cp <= 0xFFEF
        or 0x20000 <= cp <= 0x3FFFF
    )


def bundled_fonts_dir() -> Path:
    """The bundled `fonts/` folder: `$IMAGEGEN_FONTS_DIR`, else the one beside `shared/`."""
    override = os.environ.get(FONTS_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "fonts"


def _fallback_for(name: str) -> tuple[str, ...]:
    tail = _SERIF_TAIL if name.startswith("serif") else _TAIL
    return tuple(n for n in tail if n != name)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _open_face(path: Path, index: int) -> TTFont:
    # lazy=True: only the tables we touch (name, cmap, fvar) are parsed.
    return TTFont(str(path), fontNumber=index, lazy=True)


def _face_count(path: Path) -> int:
    if path.suffix.lower() in (".ttc", ".otc"):
        return len(TTCollection(str(path), lazy=True).fonts)
    return 1


class FontCatalogue:
    """Named fonts with fallback chains; code-point coverage is loaded once per face."""

    def __init__(self, entries: Sequence[_Entry]) -> None:
        self._entries: dict[str, _Entry] = {e.name: e for e in entries}
        self._coverage: dict[str, frozenset[int]] = {}
        self._em_wide: dict[str, frozenset[int]] = {}
        self._infos: dict[str, FontInfo] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, extra_dirs: Sequence[Path] = ()) -> FontCatalogue:
        """The bundled fonts plus every font file found under `extra_dirs` (server-side)."""
        base = bundled_fonts_dir()
        entries: list[_Entry] = []
        for name, file, index in _BUNDLED:
            path = base / file
            if path.is_file():
                entries.append(_Entry(name, path, index, _fallback_for(name), bundled=True))
        pack = pack_dir(base)
        for name, file in PACK_FONTS:
            path = pack / file
            if path.is_file():
                # Pack faces keep stable catalogue names like the bundled ones (bundled=True:
                # imagegen names them, not the operator).
                entries.append(_Entry(name, path, 0, _fallback_for(name), bundled=True))
        taken = {e.name for e in entries}
        for folder in extra_dirs:
            for path in sorted(Path(folder).rglob("*")):
                if path.suffix.lower() not in FONT_SUFFIXES or not path.is_file():
                    continue
                try:
                    count = _face_count(path)
                    for index in range(count):
                        face = _open_face(path, index)
                        name_table = face["name"]
                        family = name_table.getBestFamilyName() or path.stem
                        sub = name_table.getBestSubFamilyName() or "Regular"
                        name = _slug(f"{family}-{sub}")
                        face.close()
                        # Bundled names are a stable contract; a server font never shadows one.
                        if not name or name in taken:
                            continue
                        taken.add(name)
                        entries.append(_Entry(name, path, index, _TAIL, bundled=False))
                except Exception:
                    continue
        return cls(entries)

    # --- lookups ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def path(self, name: str) -> Path:
        return self._entries[name].path

    def index(self, name: str) -> int:
        return self._entries[name].index

    def chain(self, name: str) -> tuple[str, ...]:
        """`name` then its fallbacks, keeping only faces this catalogue actually has."""
        entry = self._entries[name]
        return (name, *(n for n in entry.fallback if n in self._entries and n != name))

    def coverage(self, name: str) -> frozenset[int]:
        """Code points the face maps to a glyph (its cmap), read once."""
        cached = self._coverage.get(name)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._coverage.get(name)
            if cached is None:
                entry = self._entries[name]
                face = _open_face(entry.path, entry.index)
                cmap = face.getBestCmap() or {}
                cached = frozenset(cmap)
                self._em_wide[name] = self._em_wide_of(face, cmap)
                face.close()
                self._coverage[name] = cached
        return cached

    @staticmethod
    def _em_wide_of(face: TTFont, cmap: dict[int, str]) -> frozenset[int]:
        """CJK code points whose glyph advance is exactly one em (ideographs, kana, fullwidth
        punctuation): their advance at n px is n px, so layout can skip a raqm call for them."""
        if "hmtx" not in face or "head" not in face:
            return frozenset()
        upm = face["head"].unitsPerEm
        metrics = face["hmtx"].metrics
        return frozenset(
            cp
            for cp, glyph in cmap.items()
            if _is_ideographic(cp) and glyph in metrics and metrics[glyph][0] == upm
        )

    def em_wide(self, name: str) -> frozenset[int]:
        """See `_em_wide_of`; loaded with the coverage."""
        self.coverage(name)
        return self._em_wide[name]

    def info(self, name: str) -> FontInfo:
        """The catalogue entry of `name` (reads the name/fvar tables once)."""
        cached = self._infos.get(name)
        if cached is not None:
            return cached
        entry = self._entries[name]
        coverage = self.coverage(name)
        with self._lock:
            face = _open_face(entry.path, entry.index)
            names = face["name"]
            axes: dict[str, list[float]] = {}
            if "fvar" in face:
                for axis in face["fvar"].axes:
                    axes[axis.axisTag] = [
                        float(axis.minValue),
                        float(axis.defaultValue),
                        float(axis.maxValue),
                    ]
            color = "CBDT" in face or "sbix" in face
            fixed: int | None = None
            if color and "CBLC" in face:
                strikes = face["CBLC"].strikes
                if strikes:
                    fixed = int(strikes[0].bitmapSizeTable.ppemY)
            scripts = scripts_covered(coverage)
            info = FontInfo(
                name=name,
                family=names.getBestFamilyName() or entry.path.stem,
                style=names.getBestSubFamilyName() or "Regular",
                file=entry.path.name,
                index=entry.index,
                scripts=scripts,
                fallback=list(self.chain(name)[1:]),
                axes=axes,
                color=color,
                fixed_size=fixed,
                bundled=entry.bundled,
            )
            face.close()
            self._infos[name] = info
        return info

    def describe(self) -> list[FontInfo]:
        """Every font, for `imagegen.fonts`."""
        return [self.info(name) for name in self._entries]

    def script_coverage(self, name: str = "sans") -> dict[str, str | None]:
        """Each known script -> the first face of `name`'s chain that covers it, or None: what
        text in that font can draw, with this catalogue (font pack or not)."""
        report: dict[str, str | None] = {}
        for face in self.chain(name):
            for script in self.info(face).scripts:
                report.setdefault(script, face)
        return {script: report.get(script) for script in SCRIPT_SAMPLES}


def _configured_dirs() -> list[Path]:
    """Server-side font folders from the service settings, if the settings can be read."""
    try:
        from shared.runtime.settings import get_settings

        return list(get_settings().font_dirs)
    except Exception:
        return []


@lru_cache(maxsize=1)
def default_catalogue() -> FontCatalogue:
    """The process-wide catalogue: bundled fonts plus `IMAGEGEN_FONT_DIRS`."""
    return FontCatalogue.load(_configured_dirs())
