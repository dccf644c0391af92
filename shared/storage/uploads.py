"""Putting an upload into the inputs bucket without reading the bucket.

nats-py's `ObjectStore.put` first looks up the name's current entry (to replace it and purge its
chunks) with `$JS.API.STREAM.MSG.GET`, which reads any message of the bucket by sequence: every
upload of every job. Under the permissions layout clients may not send that, so they could not
use `put` at all. An upload always gets a fresh name, so there is nothing to replace: this skips
the look-up and is otherwise nats-py's own `put` (chunks, digest, the entry).
"""

from __future__ import annotations

from typing import BinaryIO

from nats.js.api import ObjectInfo
from nats.js.client import JetStreamContext
from nats.js.errors import ObjectNotFoundError
from nats.js.object_store import OBJ_STREAM_TEMPLATE, ObjectStore

from shared.contract.subjects import BUCKET_INPUTS
from shared.runtime.bus.limits import object_meta


class _FreshNames(ObjectStore):
    """An object store whose names are never taken yet: `put` needs no read of the bucket."""

    async def get_info(self, name: str, show_deleted: bool | None = False) -> ObjectInfo:
        raise ObjectNotFoundError


async def put_upload(js: JetStreamContext, name: str, data: bytes | BinaryIO) -> ObjectInfo:
    """Store `data` as the new object `name` of the inputs bucket (a name nobody used before)."""
    store = _FreshNames(name=BUCKET_INPUTS, stream=OBJ_STREAM_TEMPLATE.format(bucket=BUCKET_INPUTS), js=js)
    return await store.put(name, data, meta=object_meta(js, name))  # type: ignore[arg-type]  # any reader
