"""The directory image store: `<output_dir>/<job_id>/<name>.<ext>` on a disk renderers share.

Files are written with plain `os` calls, a batch at a time: the renderer writes from its render
process, where a small file costs a few syscalls, while aiofiles costs four thread hops per file
that contend with rendering for the GIL (measured: the replica then delivered ~0.5 of the
in-process rate, see bench/bench_pipeline.py). Async callers use `put_many`, one hop per batch.

Names come sanitised from the template, and the store checks again that each resolved path is
inside the job's folder: a name that would escape it is an error, never a file outside. Readers
get regular files only, never a link.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Literal

from shared.contract.errors import NotFound, StorageError
from shared.contract.subjects import validate_job_id
from shared.storage.base import CHUNK, IMAGE_TYPES, MANIFEST_NAME, ImageFile, check_image_name, natural_key


class DirectoryStore:
    """Images as files under one root folder, one sub-folder per job."""

    kind: Literal["directory"] = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def job_dir(self, job_id: str) -> Path:
        return self.root / validate_job_id(job_id)

    def location(self, job_id: str) -> str:
        return str(self.job_dir(job_id))

    def path_for(self, job_id: str, filename: str) -> Path:
        job_dir = self.job_dir(job_id)
        path = (job_dir / filename).resolve()
        if path.parent != job_dir:
            raise StorageError(f"output name {filename!r} escapes the job folder")
        return path

    # --- writing ------------------------------------------------------------------------------

    def check_writable(self) -> None:
        """`StorageError` unless this process can create (and remove) a file in the root folder,
        creating the folder if need be: a renderer's health check (a volume owned by another uid
        would fail every item)."""
        probe = self.root / f".writable.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StorageError(
                f"the output folder {self.root} is not writable by uid {os.getuid()}: {exc.strerror}"
            ) from exc

    def write_many(self, job_id: str, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """Write one batch's images into the job's folder synchronously; returns their names.

        No name may leave the job's folder, and each file is written to its own temporary name
        and renamed into place, so a reader never sees half an image and a re-render replaces it
        atomically. Plain `os` calls: this runs once per image.
        """
        if not files:
            return []
        job_dir = self.job_dir(job_id)
        if job_dir.resolve() != job_dir:
            raise StorageError(f"the folder of job {job_id} is a link out of the output folder")
        folder = str(job_dir)
        suffix = f"{os.getpid()}.{secrets.token_hex(4)}.tmp"
        paths = []
        for name, _ in files:
            if name in ("", ".", "..") or "/" in name or "\0" in name:
                # Not a plain file name: the store decides (it raises StorageError for an escape).
                paths.append(str(self.path_for(job_id, name)))
            else:
                # A plain name in the resolved job folder cannot leave it; a symlink already there
                # is replaced by the rename, never written through. Saves a realpath per image.
                paths.append(f"{folder}/{name}")
        # Every name is checked before anything is created or written.
        Path(folder).mkdir(parents=True, exist_ok=True)
        for path, (_, data) in zip(paths, files, strict=True):
            tmp = f"{folder}/.{path.rpartition('/')[2]}.{suffix}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
                os.replace(tmp, path)  # noqa: PTH105 (hot path: no Path objects per image)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)  # noqa: PTH108
                raise
        return [name for name, _ in files]

    async def put_many(self, job_id: str, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """`write_many` from async code: one thread hop for the whole batch."""
        return await asyncio.to_thread(self.write_many, job_id, files)

    async def put_manifest(self, job_id: str, path: Path) -> str:
        def move() -> str:
            job_dir = self.job_dir(job_id)
            job_dir.mkdir(parents=True, exist_ok=True)
            target = job_dir / MANIFEST_NAME
            # Copied under a temporary name and renamed: a reader never sees half a manifest,
            # and a second writer (a redelivered completion) replaces it whole.
            tmp = job_dir / f".{MANIFEST_NAME}.{secrets.token_hex(4)}.tmp"
            try:
                shutil.copyfile(path, tmp)
                tmp.replace(target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return str(target)

        return await asyncio.to_thread(move)

    # --- reading ------------------------------------------------------------------------------

    def _scan(self, job_id: str) -> list[ImageFile]:
        files: list[ImageFile] = []
        try:
            entries = os.scandir(self.job_dir(job_id))
        except FileNotFoundError:
            return files
        with entries:
            for entry in entries:
                if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in IMAGE_TYPES:
                    continue  # temp files of an in-progress write, the manifest
                if not entry.is_file(follow_symlinks=False):
                    continue
                files.append(ImageFile(entry.name, entry.stat(follow_symlinks=False).st_size))
        files.sort(key=lambda f: natural_key(f.name))
        return files

    async def list(self, job_id: str) -> list[ImageFile]:
        return await asyncio.to_thread(self._scan, job_id)

    def _open(self, job_id: str, name: str) -> int:
        """A descriptor on the regular file `name` of the job (never through a link)."""
        if name != MANIFEST_NAME:
            check_image_name(name)
        path = self.job_dir(job_id) / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"job {job_id} has no file {name!r}", field="name") from None
        except OSError as exc:  # ELOOP: a link
            raise NotFound(f"job {job_id} has no file {name!r}", field="name") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotFound(f"job {job_id} has no file {name!r}", field="name")
        return fd

    async def read(self, job_id: str, name: str) -> AsyncIterator[bytes]:
        fd = await asyncio.to_thread(self._open, job_id, name)
        try:
            while piece := await asyncio.to_thread(os.read, fd, CHUNK):
                yield piece
        finally:
            os.close(fd)
