"""The Unicode Bidirectional Algorithm (UAX #9), by GNU FriBiDi through ctypes.

raqm runs the bidi algorithm inside one `getmask2` call, i.e. one font. With font fallback a
line is several pieces in several fonts, so the engine needs the levels itself: FriBiDi (the
same library raqm uses, already a system dependency of Pillow's wheel) resolves the paragraph
(P2–P3, X1–X10, W1–W7, N0–N2, I1–I2) and, per line, applies L1 (trailing whitespace to the
paragraph level) and L2 (the visual order). Every case of Unicode's `BidiCharacterTest.txt`
is checked in tests/shared/render/test_unicode_conformance.py.

Text without right-to-left characters, Arabic digits or explicit embeddings resolves to level 0
everywhere (no strong R/AL, so W7 turns every European digit into L): no FriBiDi call then.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex

# Anything that can lift a level above 0: R, AL, AN and the explicit embeddings/isolates.
_NEEDS_BIDI = regex.compile(r"[\p{Bidi_Class=R}\p{Bidi_Class=AL}\p{Bidi_Class=AN}\u202a-\u202e\u2066-\u2069]")

# FriBidiParType values (fribidi-types.h / fribidi-bidi-types.h).
_PAR_LTR = 0x00000110
_PAR_RTL = 0x00000111
_PAR_ON = 0x00000040  # auto: P2/P3, left-to-right when no strong character

_U32 = ctypes.c_uint32
_LEVEL = ctypes.c_int8


class FribidiUnavailable(RuntimeError):
    """libfribidi could not be loaded (Debian package libfribidi0)."""


class _Api:
    def __init__(self) -> None:
        name = ctypes.util.find_library("fribidi")
        if name is None:
            raise FribidiUnavailable("libfribidi not found; install Debian's libfribidi0")
        lib = ctypes.CDLL(name)
        p32 = ctypes.POINTER(_U32)
        plevel = ctypes.POINTER(_LEVEL)
        self.bidi_types = self._bind(lib.fribidi_get_bidi_types, None, p32, ctypes.c_int, p32)
        self.bracket_types = self._bind(lib.fribidi_get_bracket_types, None, p32, ctypes.c_int, p32, p32)
        self.par_levels = self._bind(
            lib.fribidi_get_par_embedding_levels_ex, _LEVEL, p32, p32, ctypes.c_int, p32, plevel
        )
        self.reorder_line = self._bind(
            lib.fribidi_reorder_line,
            _LEVEL,
            _U32,
            p32,
            ctypes.c_int,
            ctypes.c_int,
            _U32,
            plevel,
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_int),
        )

    @staticmethod
    def _bind(function: Any, restype: Any, *argtypes: Any) -> Any:
        function.restype = restype
        function.argtypes = list(argtypes)
        return function


@lru_cache(maxsize=1)
def _api() -> _Api:
    return _Api()


def needs_bidi(text: str) -> bool:
    """False when every level of `text` in a left-to-right paragraph is 0."""
    return _NEEDS_BIDI.search(text) is not None


@dataclass(slots=True)
class Paragraph:
    """A resolved paragraph: its level and one embedding level per code point (before L1)."""

    text: str
    base: int
    levels: list[int]
    _types: Any = None  # FriBiDi's bidi types, kept for the per-line L1/L2 step
    _par: int = _PAR_LTR

    @property
    def plain(self) -> bool:
        """Left-to-right throughout: no reordering to do."""
        return self._types is None


def resolve(text: str, direction: str = "auto") -> Paragraph:
    """Resolve one paragraph (no newlines); `direction` is "ltr", "rtl" or "auto" (P2/P3)."""
    if direction != "rtl" and not needs_bidi(text):
        return Paragraph(text, 0, [0] * len(text))
    api = _api()
    n = len(text)
    chars = (_U32 * n)(*map(ord, text))
    types = (_U32 * n)()
    brackets = (_U32 * n)()
    levels = (_LEVEL * n)()
    api.bidi_types(chars, n, types)
    api.bracket_types(chars, n, types, brackets)
    par = _U32({"ltr": _PAR_LTR, "rtl": _PAR_RTL}.get(direction, _PAR_ON))
    if n and not api.par_levels(types, brackets, n, ctypes.byref(par), levels):
        raise MemoryError("fribidi_get_par_embedding_levels_ex failed")
    base = 1 if par.value & 1 else 0
    return Paragraph(text, base, list(levels), types, _PAR_RTL if base else _PAR_LTR)


def line(paragraph: Paragraph, start: int, end: int) -> tuple[list[int], list[int]]:
    """Levels after L1 and the visual order (L2) of the line `text[start:end]`.

    The order lists logical indices (relative to `start`) from left to right.
    """
    count = end - start
    if paragraph.plain or count <= 0:
        return [paragraph.base] * max(count, 0), list(range(max(count, 0)))
    api = _api()
    levels = (_LEVEL * len(paragraph.levels))(*paragraph.levels)
    order = (ctypes.c_int * len(paragraph.levels))(*range(len(paragraph.levels)))
    # Flags 0: no mirroring/NSM reordering (shaping handles those); L1 is always applied.
    api.reorder_line(0, paragraph._types, count, start, paragraph._par, levels, None, order)
    return list(levels[start:end]), [i - start for i in order[start:end]]
