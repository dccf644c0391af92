"""The NATS Object Store image store: for renderers on many hosts with no shared disk.

Images go to the `imagegen-images` bucket as `<job_id>/<name>.<ext>`, the manifest as
`<job_id>/manifest.csv`. Results name each image by its file name; clients fetch a job's files
with `Client.fetch_images` / `imagegen jobs fetch`, or over HTTP from the gateway. A re-render
(at-least-once delivery) simply replaces the object with identical bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Literal

from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.object_store import ObjectStore

from shared.contract.errors import NotFound, StorageError
from shared.contract.subjects import BUCKET_IMAGES, validate_job_id
from shared.runtime.bus.limits import object_meta
from shared.storage.base import (
    IMAGE_TYPES,
    MANIFEST_NAME,
    OBJECT_SCHEME,
    ImageFile,
    check_image_name,
    natural_key,
)
from shared.storage.chunks import object_chunks
from shared.storage.naming import is_safe_file_name


class ObjectImageStore:
    """Images as objects in one bucket, named by job."""

    kind: Literal["object"] = "object"

    def __init__(self, js: JetStreamContext, bucket: str = BUCKET_IMAGES) -> None:
        self.js = js
        self.bucket = bucket
        self._store: ObjectStore | None = None

    async def _bucket(self) -> ObjectStore:
        if self._store is None:
            self._store = await self.js.object_store(self.bucket)
        return self._store

    def location(self, job_id: str) -> str:
        return f"{OBJECT_SCHEME}{self.bucket}/{validate_job_id(job_id)}/"

    def object_name(self, job_id: str, filename: str) -> str:
        # The same rule as the directory store: a name is one safe component inside the job.
        if not is_safe_file_name(filename):
            raise StorageError(f"output name {filename!r} is not a safe file name")
        return f"{validate_job_id(job_id)}/{filename}"

    async def put_many(self, job_id: str, files: Sequence[tuple[str, bytes]]) -> list[str]:
        store = await self._bucket()
        names = [self.object_name(job_id, name) for name, _ in files]
        await asyncio.gather(
            *(
                store.put(name, data, meta=object_meta(self.js, name))
                for name, (_, data) in zip(names, files, strict=True)
            )
        )
        return [name for name, _ in files]

    async def put_manifest(self, job_id: str, path: Path) -> str:
        store = await self._bucket()
        name = self.object_name(job_id, MANIFEST_NAME)
        with path.open("rb") as handle:  # streamed in chunks by the object store client
            await store.put(name, handle, meta=object_meta(self.js, name))
        return f"{OBJECT_SCHEME}{self.bucket}/{name}"

    async def list(self, job_id: str) -> list[ImageFile]:
        store = await self._bucket()
        prefix = f"{validate_job_id(job_id)}/"
        try:
            infos = await store.list(ignore_deletes=True)
        except NotFoundError:  # an empty bucket answers "not found"
            infos = []
        files = [
            ImageFile(info.name[len(prefix) :], info.size or 0)
            for info in infos
            if info.name.startswith(prefix) and Path(info.name).suffix.lower() in IMAGE_TYPES
        ]
        files.sort(key=lambda f: natural_key(f.name))
        return files

    async def read(self, job_id: str, name: str) -> AsyncIterator[bytes]:
        if name != MANIFEST_NAME:
            check_image_name(name)
        store = await self._bucket()
        try:
            info = await store.get_info(self.object_name(job_id, name))
        except NotFoundError:
            raise NotFound(f"job {job_id} has no file {name!r}", field="name") from None
        async for chunk in object_chunks(self.js, self.bucket, info):
            yield chunk
