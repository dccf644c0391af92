"""Rendering one task's items and storing their files, inside the render child.

Each item is rendered on its own: an item that fails (bad text, over a limit, a bad per-row
style, an engine bug) fails alone with its reason, and the rest of the batch goes on. With a
directory store the files are written here too, straight after the batch is encoded: a small
file costs a few syscalls in this process, while handing bytes back to the parent costs a copy
through the pipe (see shared/storage/directory.py for the measurements).

The outcome is the batch's `ItemResult`s, encoded as the result message carries them so the
parent publishes them as they are, plus the image bytes the parent stores itself when the store
is an object store.
"""

from __future__ import annotations

from collections import OrderedDict

import msgspec

from shared.contract.codec import decode_json, encode_json
from shared.contract.errors import BadRequest, ImagegenError, StorageError
from shared.contract.messages import ItemResult, RenderItem, RenderTask, failed_item
from shared.contract.style import Style, style_from_text
from shared.render import RenderedImage, RenderEngine, merge_style
from shared.runtime.logging import get_logger
from shared.storage import DirectoryStore

log = get_logger(__name__)


class BatchOutcome(msgspec.Struct, array_like=True):
    """What the child sends back for one task.

    `items` is the JSON array of the task's `ItemResult`s (`count` of them), encoded here as the
    result message carries them: the parent publishes them without decoding them, as it passes
    the task's bytes in without decoding those (`decoded()` reads them where a parent must look).
    `images` holds the bytes of the ok items, in order, with their file names in `files`, only
    when the parent stores them (an object store); `error` set means the task itself could not
    be read (it is terminated, not retried).
    """

    items: bytes = b"[]"
    count: int = 0
    files: list[str] = []
    images: list[bytes] = []
    render_seconds: list[float] = []
    encode_seconds: list[float] = []
    error: str | None = None

    @classmethod
    def of(
        cls,
        items: list[ItemResult],
        *,
        files: list[str] | None = None,
        images: list[bytes] | None = None,
        render_seconds: list[float] | None = None,
        encode_seconds: list[float] | None = None,
    ) -> BatchOutcome:
        return cls(
            encode_json(items),
            len(items),
            files or [],
            images or [],
            render_seconds or [],
            encode_seconds or [],
        )

    def decoded(self) -> list[ItemResult]:
        """The items as `ItemResult`s (a preview, an isolated render, an oversized result)."""
        return decode_json(self.items, list[ItemResult])


class StyleOverrides:
    """Per-item style overrides merged onto the task's style, each distinct one validated once.

    A colour column typically holds a handful of distinct values over millions of rows, so merged
    styles (or the reason an override is invalid) are cached by (base style, overrides): the hot
    path is a dict lookup, not a validation. The cache is bounded (LRU) because a column can also
    hold a distinct value per row.
    """

    def __init__(self, engine: RenderEngine, *, size: int = 4096) -> None:
        self.engine = engine
        self.size = size
        self._cache: OrderedDict[tuple[bytes, tuple[tuple[str, str], ...]], Style | str] = OrderedDict()

    def style_for(self, base: Style, base_key: bytes, item: RenderItem) -> Style:
        """The item's style; raises BadRequest naming the field and the value."""
        if not item.style:
            return base
        key = (base_key, tuple(sorted(item.style.items())))
        found = self._cache.get(key)
        if found is None:
            try:
                found = merge_style(base, style_from_text(item.style), catalogue=self.engine.catalogue)
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
            raise BadRequest(found, field=f"style.{next(iter(item.style))}")
        return found


# Items of a child's first task rendered ahead as warm-up samples (`RenderEngine.warm`).
WARM_SAMPLES = 16


class BatchRenderer:
    """Renders tasks with one engine; writes files when the store is a local directory."""

    def __init__(self, engine: RenderEngine, store: DirectoryStore | None) -> None:
        self.engine = engine
        self.store = store
        self.overrides = StyleOverrides(engine)

    def warm(self, task: RenderTask) -> int:
        """Fill the engine's caches for `task`'s style from its first items (and, for Chinese
        text, the common hanzi): a fresh render child then starts where a long-running one would
        be. Returns the glyph masks cached; never fails (its items report their own errors)."""
        samples = [item.text for item in task.items[:WARM_SAMPLES] if item.error is None]
        return self.engine.warm(task.style, samples)

    def render(self, task: RenderTask) -> BatchOutcome:
        results: list[ItemResult | None] = [None] * len(task.items)
        done: list[tuple[int, str, RenderedImage]] = []
        base_key = msgspec.msgpack.encode(task.style) if any(item.style for item in task.items) else b""
        for position, item in enumerate(task.items):
            if item.error is not None:
                results[position] = failed_item(item, item.error)
                continue
            try:
                style = self.overrides.style_for(task.style, base_key, item)
                image = self.engine.render(item.text, style)
            except ImagegenError as exc:
                results[position] = failed_item(
                    item, exc.message if isinstance(exc, BadRequest) else str(exc)
                )
                continue
            except Exception as exc:  # an engine bug must cost one item, not the batch
                log.exception("render.crashed", job_id=task.job_id, index=item.index)
                results[position] = failed_item(item, f"internal render error: {exc!r}")
                continue
            done.append((position, f"{item.name}.{image.format}", image))
        stored = self._store(task.job_id, done)
        files: list[str] = []
        images: list[bytes] = []
        render_seconds: list[float] = []
        encode_seconds: list[float] = []
        for position, filename, image in done:
            item = task.items[position]
            if filename in stored:
                results[position] = failed_item(item, stored[filename])
                continue
            results[position] = ItemResult(
                index=item.index,
                ok=True,
                row=item.row,
                text=item.text,
                file=filename,
                width=image.width,
                height=image.height,
                bytes=len(image.data),
                missing_glyphs=list(image.missing_glyphs),
            )
            if self.store is None:
                files.append(filename)
                images.append(image.data)
            render_seconds.append(image.render_seconds)
            encode_seconds.append(image.encode_seconds)
        items = [result for result in results if result is not None]
        return BatchOutcome.of(
            items, files=files, images=images, render_seconds=render_seconds, encode_seconds=encode_seconds
        )

    def _store(self, job_id: str, done: list[tuple[int, str, RenderedImage]]) -> dict[str, str]:
        """Write the batch's files (directory store); returns {file name: error} of those that
        could not be written: one unwritable name fails that item only."""
        if self.store is None or not done:
            return {}
        files = [(filename, image.data) for _, filename, image in done]
        try:
            self.store.write_many(job_id, files)
            return {}
        except (OSError, StorageError):
            errors: dict[str, str] = {}
            for name, data in files:
                try:
                    self.store.write_many(job_id, [(name, data)])
                except (OSError, StorageError) as exc:
                    errors[name] = f"could not store {name!r}: {exc}"
            return errors
