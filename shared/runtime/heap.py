"""Garbage-collector settings for processes that handle a stream of rows.

Every row a process handles allocates container objects (a decoded item, its lists and
strings' holders), and CPython's cyclic collector runs a young-generation pass every 700 net
allocations and, every so often, a pass over every object the process holds. On the development
VM the collector took about half the CPU of decoding a 512-item result (bench/README.md).
Start-up builds most of a process's long-lived objects (modules, fonts, glyph caches): they are
frozen out of the collector's passes, and young passes run every 20,000 allocations. Reference
counting still frees almost everything at once; only garbage in reference cycles waits longer.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000


def settle_after_start() -> None:
    """Call once start-up has built the process's long-lived objects (may be called again after
    a later warm-up: what exists then is frozen too)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
