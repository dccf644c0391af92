"""Where a file source's bytes come from: an upload, a server path, or the request itself.

Submit-time checks read only the head of a file (`head`): an upload is read chunk by chunk from
the object store (`shared.storage.chunks`) and reading stops once enough bytes are in, so a 1 GB
upload costs its first chunks at submit, not a download. Ingest reads the whole file through
`local_file`: the allowed path itself, or the upload streamed into a temporary file (memory stays
flat whatever its size; its size and digest are checked), and line by line through
`bounded_lines`, which never holds more of one line than the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, AnyStr, TypeVar, overload

from nats.js.api import ObjectInfo
from nats.js.errors import NotFoundError, ObjectNotFoundError

from shared.contract.errors import BadRequest, SourceError, StorageError
from shared.contract.subjects import BUCKET_INPUTS
from shared.contract.submit import FileSubmit
from shared.sources.base import SourceContext
from shared.storage.chunks import object_chunks

# A file's line may take this many row limits (IMAGEGEN_MAX_ROW_BYTES): JSON escapes and CSV
# quoting make a line longer than its cells, and a line carries columns no item uses.
LINE_LIMIT_ROWS = 8
_LINE_ENDS = ("\n", "\r", b"\n")
_Mark = TypeVar("_Mark")  # a text file opened with newline="" also ends lines at \r


@dataclass(frozen=True, slots=True)
class Overlong:
    """A line longer than the limit, skipped unread: `size` is its length (bytes or characters)."""

    size: int

    def reason(self, limit: int, unit: str = "bytes") -> str:
        return (
            f"the line is {self.size} {unit}, over the {limit} a line may take "
            f"({LINE_LIMIT_ROWS} x IMAGEGEN_MAX_ROW_BYTES); it was not read"
        )


def line_limit(max_row_bytes: int) -> int:
    return LINE_LIMIT_ROWS * max_row_bytes


@overload
def bounded_lines(handle: IO[AnyStr], limit: int) -> Iterator[AnyStr | Overlong]: ...
@overload
def bounded_lines(
    handle: IO[AnyStr], limit: int, mark: Callable[[int], _Mark]
) -> Iterator[AnyStr | _Mark]: ...
def bounded_lines(
    handle: IO[AnyStr], limit: int, mark: Callable[[int], object] = Overlong
) -> Iterator[AnyStr | object]:
    """The lines of `handle` (binary or text), each as read, except that a line longer than
    `limit` is skipped and reported as `mark(its size)` (an `Overlong` unless a reader wants its
    own mark in the stream): at most `limit` of it is ever in memory."""
    while line := handle.readline(limit + 1):
        if len(line) <= limit or line[-1:] in _LINE_ENDS:
            yield line
            continue
        size = len(line)
        while line and line[-1:] not in _LINE_ENDS:
            line = handle.readline(limit)
            size += len(line)
        yield mark(size)


def allowed_path(ctx: SourceContext, name: str) -> Path:
    """`name` under the configured allowed folder; anything that escapes it is refused."""
    root = ctx.settings.csv_allowed_dir
    if root is None:
        raise BadRequest("server paths are not enabled on this server", field="path")
    if "\0" in name:
        raise BadRequest("must not contain NUL", field="path")
    root = root.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path == root:
        raise BadRequest("must name a file inside the allowed folder", field="path")
    if not path.is_file():
        raise BadRequest("no such file in the allowed folder", field="path")
    return path


def the_one_input(request: FileSubmit, inline: str | None) -> str:
    """Which of the request's inputs is set; exactly one must be."""
    names = ["object", "path", *([inline] if inline else [])]
    given = [name for name in names if getattr(request, name, None) is not None]
    if len(given) != 1:
        raise BadRequest(f"give exactly one of {', '.join(names)}", field=names[-1] if inline else "object")
    return given[0]


async def _object_info(ctx: SourceContext, name: str) -> ObjectInfo:
    store = await ctx.js.object_store(BUCKET_INPUTS)
    try:
        return await store.get_info(name)
    except (ObjectNotFoundError, NotFoundError) as exc:
        raise BadRequest(f"no object {name!r} in bucket {BUCKET_INPUTS}", field="object") from exc


async def object_head(ctx: SourceContext, name: str, limit: int) -> bytes:
    """The first `limit` bytes (or all, if shorter) of upload `name`, read chunk by chunk."""
    info = await _object_info(ctx, name)
    parts = [chunk async for chunk in object_chunks(ctx.js, BUCKET_INPUTS, info, limit=limit)]
    return b"".join(parts)[:limit]


async def head(ctx: SourceContext, request: FileSubmit, inline: str | None, limit: int) -> bytes:
    """The first `limit` bytes of the request's file, wherever it is."""
    which = the_one_input(request, inline)
    if which == "object":
        assert request.object is not None
        return await object_head(ctx, request.object, limit)
    if which == "path":
        assert request.path is not None
        path = allowed_path(ctx, request.path)
        with path.open("rb") as handle:
            return handle.read(limit)
    text = getattr(request, which)
    assert isinstance(text, str)
    return text.encode("utf-8")[:limit]


@contextlib.asynccontextmanager
async def local_file(ctx: SourceContext, request: FileSubmit, inline: str | None) -> AsyncIterator[Path]:
    """The request's whole file on the local disk, for as long as the block runs."""
    which = the_one_input(request, inline)
    if which == "path":
        assert request.path is not None
        yield allowed_path(ctx, request.path)
        return
    fd, name = tempfile.mkstemp(prefix="imagegen-input-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if which == "object":
                assert request.object is not None
                info = await _object_info(ctx, request.object)  # a clear 400 for a missing object
                try:
                    async for chunk in object_chunks(ctx.js, BUCKET_INPUTS, info):
                        handle.write(chunk)
                except StorageError as exc:
                    raise SourceError(f"the upload cannot be read: {exc}") from exc
            else:
                text = getattr(request, which)
                assert isinstance(text, str)
                handle.write(text.encode("utf-8"))
        yield path
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
