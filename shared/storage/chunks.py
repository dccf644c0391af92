"""Reading an object of an Object Store bucket chunk by chunk, every chunk one bounded request.

nats-py's `ObjectStore.get` reads an object through an ordered push consumer: nothing bounds
its wait when a delivery stalls, and when its subscription ends early (the connection closing) it
returns what it had without checking the digest, a shorter file, silently. It is also slow: it
takes about 7 times as long for a 30 MB upload (bench/bench_objects.py). Here every chunk is a
direct get of the next message on the object's chunk subject, a request with the JetStream
context's timeout, and a whole read is checked against the object's size and SHA-256 digest: an
object that ends early or changed is a `StorageError` naming it, never a shorter file.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator

from nats.js.api import ObjectInfo
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_DIGEST_TYPE

from shared.contract.errors import StorageError
from shared.contract.subjects import object_stream


def _digest(info: ObjectInfo) -> bytes | None:
    """The object's SHA-256 as stored in its entry (None: the entry has no digest)."""
    stated = info.digest or ""
    if not stated.upper().startswith(OBJ_DIGEST_TYPE.upper()):
        return None
    return base64.urlsafe_b64decode(stated[len(OBJ_DIGEST_TYPE) :])


async def object_chunks(
    js: JetStreamContext, bucket: str, info: ObjectInfo, *, limit: int | None = None
) -> AsyncIterator[bytes]:
    """The chunks of the object `info` describes, in order.

    With `limit`, reading stops once at least `limit` bytes were yielded (the last chunk is
    not cut) and nothing is checked; without it, the whole object is read and checked.
    """
    size = info.size or 0
    stream = object_stream(bucket)
    subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=info.nuid)
    digest = hashlib.sha256()
    got, seq = 0, 1
    while got < size and (limit is None or got < limit):
        try:
            msg = await js.get_msg(stream, seq=seq, subject=subject, next=True, direct=True)
        except NotFoundError:
            break
        data = msg.data or b""
        got += len(data)
        seq = (msg.seq or seq) + 1
        if limit is None:
            digest.update(data)
        yield data
    if limit is not None:
        return
    if got != size:
        raise StorageError(f"object {info.name!r} of bucket {bucket} holds {got} of its {size} bytes")
    stated = _digest(info)
    if stated is not None and digest.digest() != stated:
        raise StorageError(f"object {info.name!r} of bucket {bucket} does not match its SHA-256 digest")
