"""The NATS Object Store image store: for renderers on many hosts with no shared disk.

Images go to the `imagegen-images` bucket as `<job_id>/<name>.<ext>`; results carry that object
name, and clients fetch a job's images with `Client.fetch_images` / `imagegen jobs fetch`.
A re-render (at-least-once delivery) simply replaces the object with identical bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.js.client import JetStreamContext
from nats.js.object_store import ObjectStore

from shared.contract.errors import StorageError
from shared.contract.subjects import BUCKET_IMAGES, validate_job_id
from shared.storage.naming import sanitize_name

URL_SCHEME = "nats-object"


class ObjectImageStore:
    """Images as objects in one bucket, named by job."""

    def __init__(self, js: JetStreamContext, bucket: str = BUCKET_IMAGES) -> None:
        self.js = js
        self.bucket = bucket
        self._store: ObjectStore | None = None

    async def _bucket(self) -> ObjectStore:
        if self._store is None:
            self._store = await self.js.object_store(self.bucket)
        return self._store

    def object_name(self, job_id: str, filename: str) -> str:
        # The same rule as the directory store: a name is one safe component inside the job.
        if sanitize_name(filename) != filename:
            raise StorageError(f"output name {filename!r} is not a safe file name")
        return f"{validate_job_id(job_id)}/{filename}"

    async def put_many(self, job_id: str, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """Store several images of one job; returns each one's object name."""
        store = await self._bucket()
        names = [self.object_name(job_id, name) for name, _ in files]
        await asyncio.gather(*(store.put(name, data) for name, (_, data) in zip(names, files, strict=True)))
        return names

    def location(self, job_id: str) -> str:
        return f"{URL_SCHEME}://{self.bucket}/{validate_job_id(job_id)}/"
