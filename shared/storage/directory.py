"""The directory image store: `<output_dir>/<job_id>/<name>.<ext>`, written with aiofiles.

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

import aiofiles
import aiofiles.os

from shared.errors import StorageError
from shared.subjects import validate_job_id


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

    async def _write(self, path: Path, data: bytes) -> None:
        # Write then rename, so a reader never sees half an image and a re-render
        # (at-least-once delivery) replaces the file atomically.
        # Fix: the temporary name was only `.<name>.<pid>.tmp`, so two writes of the same name in
        # one process (a redelivered batch rendered while the first delivery is still writing)
        # shared one temp file: interleaved bytes, or a FileNotFoundError on the second rename.
        # A random part makes each write's temp file its own; a failed write removes it.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            async with aiofiles.open(tmp, "wb") as handle:
                await handle.write(data)
            await aiofiles.os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                await aiofiles.os.remove(tmp)
            raise

    async def put_many(self, job_id: str, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """Store several images of one job; returns each one's location (its path)."""
        paths = [self.path_for(job_id, name) for name, _ in files]
        if paths:
            await aiofiles.os.makedirs(paths[0].parent, exist_ok=True)
        await asyncio.gather(*(self._write(p, data) for p, (_, data) in zip(paths, files, strict=True)))
        return [str(p) for p in paths]

    def location(self, job_id: str) -> str:
        return str(self.job_dir(job_id))
