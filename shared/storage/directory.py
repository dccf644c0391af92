"""The directory image store: `<output_dir>/<job_id>/<name>.<ext>`.

Files are written with plain `os` calls, a batch at a time: the renderer writes from its render
process, where a small file costs a few syscalls, while aiofiles costs four thread hops per file
that contend with rendering for the GIL (measured: the replica then delivered ~0.5 of the
in-process rate, see bench/bench_pipeline.py). Async callers use `put_many`, one hop per batch.

Names come sanitised from the template, and the store checks again that each resolved path is
inside the job's folder: a name that would escape it is an error, never a file outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from shared.contract.errors import StorageError
from shared.contract.subjects import validate_job_id


class DirectoryStore:
    """Images as files under one root folder, one sub-folder per job."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def job_dir(self, job_id: str) -> Path:
        return self.root / validate_job_id(job_id)

    def path_for(self, job_id: str, filename: str) -> Path:
        job_dir = self.job_dir(job_id)
        path = (job_dir / filename).resolve()
        if path.parent != job_dir:
            raise StorageError(f"output name {filename!r} escapes the job folder")
        return path

    def write_many(self, job_id: str, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """Write one batch's images into the job's folder synchronously; returns their locations.

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
        locations = []
        for name, _ in files:
            if name in ("", ".", "..") or "/" in name or "\0" in name:
                # Not a plain file name: the store decides (it raises StorageError for an escape).
                locations.append(str(self.path_for(job_id, name)))
            else:
                # A plain name in the resolved job folder cannot leave it; a symlink already there
                # is replaced by the rename, never written through. Saves a realpath per image.
                locations.append(f"{folder}/{name}")
        # Every name is checked before anything is created or written.
        Path(folder).mkdir(parents=True, exist_ok=True)
        for path, (_, data) in zip(locations, files, strict=True):
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
        return locations

    async def put_many(self, job_id: str, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """`write_many` from async code: one thread hop for the whole batch."""
        return await asyncio.to_thread(self.write_many, job_id, files)

    def location(self, job_id: str) -> str:
        return str(self.job_dir(job_id))
