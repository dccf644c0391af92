"""Rendering one task's items and writing its files, run in the replica's render thread.

Each item is rendered on its own: an item that fails (bad text, over a limit, an engine bug)
fails alone with its reason, and the rest of the batch goes on.

A directory store's files are written here too, straight after the batch is encoded: a small
file costs a few syscalls, while writing it from the event loop through aiofiles costs four
thread hops per file, and those hops contend for the GIL with this thread (measured: the
replica then delivered ~0.5 of the in-process rate; see bench/bench_pipeline.py).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import msgspec

from shared.contract.errors import BadRequest, ImagegenError
from shared.contract.messages import RenderItem, RenderTask
from shared.contract.style import Style
from shared.logging import get_logger
from shared.render import RenderedImage, RenderEngine
from shared.render.styles import merge_style

log = get_logger(__name__)


class StyleOverrides:
    """Per-item style overrides merged onto the task's style, each distinct one validated once.

    A CSV colour column typically holds a handful of distinct values over millions of rows, so
    merged styles (or the reason an override is invalid) are cached by (base style, overrides):
    the hot path is a dict lookup, not a validation. The cache is bounded (LRU) because a column
    can also hold a distinct value per row.
    """

    def __init__(self, engine: RenderEngine, *, size: int = 4096) -> None:
        self.engine = engine
        self.size = size
        self._cache: OrderedDict[tuple[bytes, tuple[tuple[str, str], ...]], Style | str] = OrderedDict()

    def style_for(self, base: Style, base_key: bytes, item: RenderItem) -> Style:
        """The item's style; raises BadRequest naming the row, the field and the value."""
        if not item.style:
            return base
        key = (base_key, tuple(sorted(item.style.items())))
        found = self._cache.get(key)
        if found is None:
            try:
                found = merge_style(base, item.style, catalogue=self.engine.catalogue)
            except BadRequest as exc:
                name = (exc.field or "style").removeprefix("style.")
                value = item.style.get(name.split(".")[0])
                shown = f" {value!r}" if value is not None else ""
                found = f"bad {name}{shown} in the row: {exc.message}"
            self._cache[key] = found
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        if isinstance(found, str):
            raise BadRequest(f"row {item.index + 1}: {found}", field=f"style.{next(iter(item.style))}")
        return found


_overrides: dict[int, StyleOverrides] = {}


def _overrides_for(engine: RenderEngine) -> StyleOverrides:
    # One cache per engine (a replica has one), kept beside it without changing its API.
    cache = _overrides.get(id(engine))
    if cache is None or cache.engine is not engine:
        cache = _overrides[id(engine)] = StyleOverrides(engine)
    return cache


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    item: RenderItem
    filename: str | None
    image: RenderedImage | None
    error: str | None


def render_batch(engine: RenderEngine, task: RenderTask) -> list[ItemOutcome]:
    outcomes = []
    overrides = _overrides_for(engine)
    base_key = msgspec.msgpack.encode(task.style) if any(item.style for item in task.items) else b""
    for item in task.items:
        if item.error is not None:
            outcomes.append(ItemOutcome(item, None, None, item.error))
            continue
        try:
            style = overrides.style_for(task.style, base_key, item)
        except BadRequest as exc:
            outcomes.append(ItemOutcome(item, None, None, exc.message))
            continue
        try:
            image = engine.render(item.text, style)
        except ImagegenError as exc:
            outcomes.append(ItemOutcome(item, None, None, str(exc)))
            continue
        except Exception as exc:  # an engine bug must cost one item, not the batch
            log.exception("render.crashed", job_id=task.job_id, index=item.index)
            outcomes.append(ItemOutcome(item, None, None, f"internal render error: {exc!r}"))
            continue
        outcomes.append(ItemOutcome(item, f"{item.name}.{image.format}", image, None))
    return outcomes
