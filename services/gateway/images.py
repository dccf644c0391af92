"""Reading a job's rendered images for HTTP: list them, open one, stream them as a zip.

Images live where the renderers stored them: the shared output folder (`<output_dir>/<job_id>/`)
or, for renderers with no shared disk, the `imagegen-images` bucket (`<job_id>/<name>`). A job's
ledger `output` tells which. Names come from URLs, so every one is checked here before it gets
near the file system: one safe path component (the same rule the stores write with), an image
extension, no hidden or temporary files, and a resolved path that is still inside the job folder
and is a regular file, not a link.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError as ObjectNotFound

from shared.contract.errors import BadRequest, NotFound
from shared.contract.subjects import BUCKET_IMAGES, validate_job_id
from shared.storage.naming import sanitize_name

IMAGE_TYPES = {".png": "image/png", ".webp": "image/webp"}
OBJECT_SCHEME = "nats-object://"
CHUNK = 256 * 1024
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class ImageFile:
    name: str
    bytes: int


def check_name(name: str) -> str:
    """`name` if it is a safe image file name of a job, else `BadRequest` naming `name`."""
    if (
        not name
        or sanitize_name(name) != name
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or Path(name).suffix.lower() not in IMAGE_TYPES
    ):
        raise BadRequest("not an image file name of this job", field="name")
    return name


def media_type(name: str) -> str:
    return IMAGE_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def _natural(name: str) -> list[int | str]:
    # "2.png" before "10.png": output names are usually indexes.
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(name)]


class JobImages:
    """The images of one job, in the folder or bucket its `output` names."""

    def __init__(
        self,
        job_id: str,
        output: str | None,
        output_dir: Path,
        js: JetStreamContext,
        *,
        in_bucket: bool = False,
    ) -> None:
        self.job_id = validate_job_id(job_id)
        # The deployment's store setting decides (ingest records a folder either way); a ledger
        # output that names the bucket is honoured too.
        self.in_bucket = in_bucket or bool(output and output.startswith(OBJECT_SCHEME))
        # The gateway's own output root decides the folder, not the ledger's path: a gateway may
        # mount the shared volume elsewhere, and a URL must never choose a directory.
        self.root = output_dir.resolve()
        self.folder = self.root / self.job_id
        self.js = js

    # --- listing ------------------------------------------------------------------------------

    def _scan(self) -> list[ImageFile]:
        files: list[ImageFile] = []
        try:
            entries = os.scandir(self.folder)
        except FileNotFoundError:
            return files
        with entries:
            for entry in entries:
                if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in IMAGE_TYPES:
                    continue  # temp files of an in-progress write, anything not an image
                if not entry.is_file(follow_symlinks=False):
                    continue
                files.append(ImageFile(entry.name, entry.stat(follow_symlinks=False).st_size))
        return files

    async def listing(self) -> list[ImageFile]:
        if self.in_bucket:
            store = await self.js.object_store(BUCKET_IMAGES)
            prefix = f"{self.job_id}/"
            try:
                infos = await store.list(ignore_deletes=True)
            except ObjectNotFound:
                infos = []
            files = [
                ImageFile(info.name[len(prefix) :], info.size or 0)
                for info in infos
                if info.name.startswith(prefix) and Path(info.name).suffix.lower() in IMAGE_TYPES
            ]
        else:
            files = await asyncio.to_thread(self._scan)
        files.sort(key=lambda f: _natural(f.name))
        return files

    # --- one file -----------------------------------------------------------------------------

    def path_of(self, name: str) -> Path:
        """The checked path of image `name`; `NotFound` unless it is a regular file in the folder."""
        check_name(name)
        path = (self.folder / name).resolve()
        if path.parent != self.folder:
            raise BadRequest("not an image file name of this job", field="name")
        try:
            info = (self.folder / name).lstat()
        except FileNotFoundError:
            raise NotFound(f"job {self.job_id} has no image {name!r}", field="name") from None
        if not stat.S_ISREG(info.st_mode):
            raise NotFound(f"job {self.job_id} has no image {name!r}", field="name")
        return path

    async def read_object(self, name: str) -> bytes:
        check_name(name)
        store = await self.js.object_store(BUCKET_IMAGES)
        try:
            result = await store.get(f"{self.job_id}/{name}")
        except ObjectNotFound:
            raise NotFound(f"job {self.job_id} has no image {name!r}", field="name") from None
        return result.data or b""

    # --- zip ----------------------------------------------------------------------------------

    async def zip_stream(self, files: list[ImageFile]) -> AsyncIterator[bytes]:
        """The images as a zip archive, produced piece by piece (never whole in memory).

        PNG and WebP are already compressed, so entries are STORED: the zip costs no CPU and the
        archive streams as fast as the files are read.
        """
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for image in files:
                info = zipfile.ZipInfo(image.name, date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED
                info.file_size = image.bytes  # lets zipfile pick zip64 for a huge entry up front
                with archive.open(info, "w") as entry:
                    async for piece in self._pieces(image.name):
                        entry.write(piece)
                        if sink.size() >= CHUNK:
                            yield sink.take()
                if sink.size():
                    yield sink.take()
        yield sink.take()  # the central directory

    async def _pieces(self, name: str) -> AsyncIterator[bytes]:
        if self.in_bucket:
            yield await self.read_object(name)
            return
        try:
            path = self.path_of(name)
        except NotFound:
            return  # removed since the listing: the archive simply goes without it
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            while piece := await asyncio.to_thread(handle.read, CHUNK):
                yield piece
        finally:
            handle.close()


class _Sink:
    """A write-only, non-seekable file for zipfile: what it writes is collected and taken out.

    zipfile sees no `tell`/`seek` and so writes data descriptors after each entry, the form a
    streamed zip needs.
    """

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
