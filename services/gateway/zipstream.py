"""A job's images and manifest as one zip, produced piece by piece (never whole in memory).

PNG and WebP are already compressed, so entries are STORED: the zip costs no CPU and the archive
streams as fast as the store reads. zipfile writes to a non-seekable sink here, so it writes data
descriptors after each entry, the form a streamed zip needs.
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator

from shared.contract.errors import NotFound
from shared.storage import MANIFEST_NAME, ImageFile, ImageStore
from shared.storage.base import CHUNK


class _Sink:
    """A write-only, non-seekable file for zipfile: what it writes is collected and taken out."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._size += len(data)
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def size(self) -> int:
        return self._size

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        return data


async def zip_stream(store: ImageStore, job_id: str, files: list[ImageFile]) -> AsyncIterator[bytes]:
    """The `files` of `job_id`, then its manifest (when there is one), as a zip archive."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name in [*(image.name for image in files), MANIFEST_NAME]:
            pieces = store.read(job_id, name)
            try:
                first = await anext(pieces, b"")
            except NotFound:
                continue  # removed since the listing (or no manifest yet): the archive goes without it
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            # Zip64 from the start: the size of a streamed entry is not known when it begins.
            with archive.open(info, "w", force_zip64=True) as entry:
                entry.write(first)
                async for piece in pieces:
                    entry.write(piece)
                    if sink.size() >= CHUNK:
                        yield sink.take()
            if sink.size():
                yield sink.take()
    yield sink.take()  # the central directory
