"""The bundled fonts as web fonts for the console: one CSS family, cut into Unicode slices.

The console's table and captions show whatever the CSV holds; a browser without a CJK font
draws boxes. The bundled faces fix that, but the CJK one alone is 19 MB and a collection, which
browsers do not load. So each face is cut into slices of 256 code points, made on first request
with fontTools' subsetter (WOFF, zlib-compressed; about 30-120 KB for a block of ideographs) and
kept in a disk cache (made in a worker process, so the gateway's event loop never waits on
it), and the CSS declares each slice with its `unicode-range`: a browser fetches
only the slices its text uses. Faces are listed in order of preference; a code point belongs to
the first face that maps it, so the slices of the family never overlap.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

from shared.contract.errors import NotFound
from shared.render.fontpack import pack_script_faces
from shared.render.fonts import FontCatalogue
from shared.runtime.logging import get_logger

log = get_logger(__name__)

FAMILY = "imagegen"
# Catalogue names, most preferred first: Latin (and Greek, Cyrillic) from Noto Sans, then Chinese
# (the CJK face also covers kana and Hangul), then the other bundled scripts, then the font pack's
# scripts where it is installed (Thai, Khmer, the Indic scripts...).
FACES = ("sans", "sans-sc", "arabic", "hebrew", "devanagari", *pack_script_faces(), "symbols")
BLOCK = 256
# Layout tables are left out: the console shows plain text, and they are most of a slice's cost.
_DROP = ("GSUB", "GPOS", "GDEF", "BASE", "VORG", "vhea", "vmtx", "DSIG")


@dataclass(frozen=True, slots=True)
class Slice:
    face: str
    block: int  # its code points are in block * BLOCK ... block * BLOCK + BLOCK - 1


def unicode_range(codepoints: list[int]) -> str:
    """`unicode-range` of sorted code points, runs folded: `U+41-5A, U+61-7A`."""
    runs: list[list[int]] = []
    for cp in codepoints:
        if runs and cp == runs[-1][1] + 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    return ", ".join(f"U+{a:X}" if a == b else f"U+{a:X}-{b:X}" for a, b in runs)


def _subset(path: Path, index: int, codepoints: list[int]) -> bytes:
    face = TTFont(str(path), fontNumber=index, lazy=True, recalcBBoxes=False)
    options = subset.Options(layout_features=[], hinting=False, notdef_outline=True, recalc_bounds=False)
    options.drop_tables += list(_DROP)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=codepoints)
    subsetter.subset(face)
    face.flavor = "woff"
    out = io.BytesIO()
    face.save(out)
    face.close()
    return out.getvalue()


class WebFonts:
    """The family's slices, their CSS and their WOFF bytes (made once, then read from `cache_dir`)."""

    def __init__(self, cache_dir: Path, catalogue: FontCatalogue | None = None) -> None:
        self.cache_dir = cache_dir
        self._catalogue = catalogue
        self._locks: dict[Slice, asyncio.Lock] = {}
        self._pool: ProcessPoolExecutor | None = None  # one worker: leave the cores to renderers

    @cached_property
    def catalogue(self) -> FontCatalogue:
        return self._catalogue or FontCatalogue.load()

    @cached_property
    def slices(self) -> dict[Slice, list[int]]:
        """Every slice with the code points its face maps there, in the order of `FACES`."""
        taken: set[int] = set()
        slices: dict[Slice, list[int]] = {}
        for face in FACES:
            if face not in self.catalogue:
                continue
            mine = self.catalogue.coverage(face) - taken
            for cp in sorted(mine):
                slices.setdefault(Slice(face, cp // BLOCK), []).append(cp)
            taken |= mine
        return slices

    def _version(self, face: str) -> str:
        """Changes when the face's file does, so a cached slice of an old file is never served."""
        path = self.catalogue.path(face)
        stat = path.stat()
        key = f"{path.name}:{self.catalogue.index(face)}:{stat.st_size}:{stat.st_mtime_ns}"
        return hashlib.sha256(key.encode()).hexdigest()[:12]

    def url(self, piece: Slice) -> str:
        return f"/webfonts/{piece.face}/{piece.block:x}.woff?v={self._version(piece.face)}"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    @cached_property
    def _css_gzip(self) -> bytes:
        return gzip.compress(self.css().encode(), 9)

    async def stylesheet(self) -> bytes:
        """The CSS gzipped (about 85 KB as text, a tenth of that compressed), made off the event
        loop: the first call reads every face's coverage."""
        return await asyncio.to_thread(lambda: self._css_gzip)

    def css(self) -> str:
        rules = [
            f'@font-face{{font-family:{FAMILY};font-display:swap;src:url("{self.url(piece)}") format("woff");'
            f"unicode-range:{unicode_range(codepoints)}}}"
            for piece, codepoints in self.slices.items()
        ]
        return "\n".join(rules) + "\n"

    def find(self, face: str, block: str) -> Slice:
        try:
            piece = Slice(face, int(block, 16))
        except ValueError:
            raise NotFound(f"no web font slice {face}/{block}", field="block") from None
        if piece not in self.slices:
            raise NotFound(f"no web font slice {face}/{block}", field="block")
        return piece

    async def woff(self, piece: Slice) -> bytes:
        cached = self.cache_dir / f"{piece.face}-{piece.block:x}-{self._version(piece.face)}.woff"
        if cached.is_file():
            return cached.read_bytes()
        lock = self._locks.setdefault(piece, asyncio.Lock())
        async with lock:  # one request makes a slice; the others wait for it
            if cached.is_file():
                return cached.read_bytes()
            if self._pool is None:
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            path, index = self.catalogue.path(piece.face), self.catalogue.index(piece.face)
            data = await asyncio.get_running_loop().run_in_executor(
                self._pool, _subset, path, index, self.slices[piece]
            )
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                partial = cached.with_suffix(f".{os.getpid()}.part")
                partial.write_bytes(data)
                partial.replace(cached)
            except OSError as exc:  # a read-only disk: serve it anyway, and make it again next time
                log.warning("gateway.webfont_cache_failed", path=str(cached), error=repr(exc))
            return data
