"""ICU's break iterators through ctypes: grapheme clusters and line-break opportunities.

ICU implements UAX #29 (grapheme clusters) and UAX #14 (line breaking) and carries dictionaries
that find the word boundaries of Thai, Lao, Khmer and Myanmar, which write no spaces between
words. The system library is used (Debian's `libicuNN`, which `make system-deps` installs):
its Unicode version matches Debian's `unicode-data` conformance files of the same release
(ICU 72 and Unicode 15.0 on bookworm), which the tests run in full.

ICU's C functions carry the library's major version as a suffix (`ubrk_open_72`); ICU counts
text in UTF-16 units, so positions are converted back to code points. Break iterators are not
thread-safe: each thread gets its own (a `threading.local`), opened once and then re-pointed
at each new text, which costs microseconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

# UBreakIteratorType values (ubrk.h).
CHARACTER = 0
LINE = 2
# UProperty values (uchar.h) and UPropertyNameChoice for the short alias.
LINE_BREAK = 0x1008
GRAPHEME_CLUSTER_BREAK = 0x1012
_U_SHORT_PROPERTY_NAME = 0
_UBRK_DONE = -1


class IcuUnavailable(RuntimeError):
    """The system ICU library could not be loaded (install libicu, e.g. `make system-deps`)."""


@lru_cache(maxsize=1)
def _library() -> tuple[ctypes.CDLL, str]:
    name = ctypes.util.find_library("icuuc")
    if name is None:
        raise IcuUnavailable("ICU (libicuuc) not found; install Debian's libicu-dev or libicuNN")
    lib = ctypes.CDLL(name)
    match = re.search(r"\.so\.(\d+)", name)
    suffix = f"_{match.group(1)}" if match else ""
    if not hasattr(lib, f"u_getVersion{suffix}"):
        suffix = ""  # an ICU built without renamed symbols
    return lib, suffix


def _function(name: str, restype: Any, *argtypes: Any) -> Callable[..., Any]:
    lib, suffix = _library()
    function = getattr(lib, name + suffix)
    function.restype = restype
    function.argtypes = list(argtypes)
    return function  # type: ignore[no-any-return]


_P = ctypes.c_void_p
_STATUS = ctypes.POINTER(ctypes.c_int)


class _Api:
    """The handful of ICU functions used here, bound once."""

    def __init__(self) -> None:
        self.open = _function(
            "ubrk_open", _P, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int32, _STATUS
        )
        self.set_text = _function("ubrk_setText", None, _P, ctypes.c_char_p, ctypes.c_int32, _STATUS)
        self.next = _function("ubrk_next", ctypes.c_int32, _P)
        self.unicode_version = _function("u_getUnicodeVersion", None, ctypes.c_char_p)
        self.version = _function("u_getVersion", None, ctypes.c_char_p)
        self.int_property = _function("u_getIntPropertyValue", ctypes.c_int32, ctypes.c_int32, ctypes.c_int)
        self.value_name = _function(
            "u_getPropertyValueName", ctypes.c_char_p, ctypes.c_int, ctypes.c_int32, ctypes.c_int
        )


@lru_cache(maxsize=1)
def _api() -> _Api:
    return _Api()


def _version_string(getter: Callable[[ctypes.Array[ctypes.c_char]], None]) -> str:
    buffer = ctypes.create_string_buffer(4)
    getter(buffer)
    parts = list(buffer.raw)
    while len(parts) > 2 and parts[-1] == 0:
        parts.pop()
    return ".".join(str(p) for p in parts)


def icu_version() -> str:
    return _version_string(_api().version)


def unicode_version() -> str:
    """The Unicode version of ICU's data (e.g. "15.0")."""
    return _version_string(_api().unicode_version)


@lru_cache(maxsize=8192)
def property_value(ch: str, prop: int) -> str:
    """A character's value of an enumerated property (LINE_BREAK, GRAPHEME_CLUSTER_BREAK) as
    ICU's data has it, by its short alias ("AL", "SA", "Extend"...)."""
    api = _api()
    value = api.int_property(ord(ch), prop)
    name = api.value_name(prop, value, _U_SHORT_PROPERTY_NAME)
    return name.decode("ascii") if name else ""


class _Iterators(threading.local):
    def __init__(self) -> None:
        self.open: dict[tuple[int, str], int] = {}


_ITERATORS = _Iterators()


def _iterator(kind: int, locale: str) -> int:
    handle = _ITERATORS.open.get((kind, locale))
    if handle is None:
        status = ctypes.c_int(0)
        handle = _api().open(kind, locale.encode("ascii"), None, 0, ctypes.byref(status))
        if status.value > 0 or not handle:
            raise IcuUnavailable(f"ubrk_open({kind}, {locale!r}) failed with ICU error {status.value}")
        # Kept for the thread's lifetime: a handful per thread, never freed.
        _ITERATORS.open[(kind, locale)] = handle
    return handle


def boundaries(text: str, kind: int, locale: str = "") -> list[int]:
    """Boundary positions (code point indices) after position 0, ending with len(text).

    `kind` is CHARACTER (extended grapheme clusters) or LINE (line-break opportunities,
    including the mandatory break at the end). `locale` selects ICU's tailorings ("" = root).
    """
    if not text:
        return []
    api = _api()
    data = text.encode("utf-16-le")
    units = len(data) // 2
    handle = _iterator(kind, locale)
    status = ctypes.c_int(0)
    # ICU keeps a pointer to `data` until the next setText: `data` lives until we return.
    api.set_text(handle, data, units, ctypes.byref(status))
    if status.value > 0:
        raise IcuUnavailable(f"ubrk_setText failed with ICU error {status.value}")
    # iter(callable, sentinel) keeps the per-boundary loop in C: one ctypes call per boundary.
    out: list[int] = list(iter(partial(api.next, handle), _UBRK_DONE))
    if units != len(text):
        out = _to_code_points(text, out)
    return out


def _to_code_points(text: str, positions: list[int]) -> list[int]:
    """UTF-16 offsets -> code point indices (only when the text has astral characters)."""
    index_of: dict[int, int] = {}
    unit = 0
    for index, ch in enumerate(text):
        index_of[unit] = index
        unit += 2 if ord(ch) > 0xFFFF else 1
    index_of[unit] = len(text)
    return [index_of[p] for p in positions]
