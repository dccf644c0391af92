"""Objects read chunk by chunk from a real Object Store bucket: whole and checked, or a head; an
object that lost or changed a chunk is an error naming it, never a shorter or different file."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js.api import ObjectMeta, ObjectMetaOptions, ObjectStoreConfig
from nats.js.client import JetStreamContext
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, ObjectStore

from devstack.natsauth import NatsCredentials
from devstack.stack import LocalStack
from shared.contract.errors import SourceError, StorageError
from shared.contract.subjects import BUCKET_INPUTS, object_stream
from shared.runtime.bus.permissions import ADMIN
from shared.runtime.settings import Settings
from shared.sources.base import SourceContext
from shared.sources.csv.request import SubmitCsv
from shared.sources.files import local_file
from shared.storage.chunks import object_chunks
from tests.benches import run_bench
from tests.conftest import nats_options

CHUNK = 1000
DATA = bytes(range(256)) * 41  # 10,496 bytes: ten whole chunks and a short one


@pytest.fixture
async def js(nats_url: str, nats_credentials: NatsCredentials | None) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_url, **nats_options(nats_credentials, ADMIN))
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


@pytest.fixture
async def bucket(js: JetStreamContext) -> AsyncIterator[str]:
    name = f"test-chunks-{secrets.token_hex(4)}"
    await js.create_object_store(name, config=ObjectStoreConfig(bucket=name))
    try:
        yield name
    finally:
        await js.delete_object_store(name)


async def put(store: ObjectStore, name: str, data: bytes) -> None:
    await store.put(name, data, meta=ObjectMeta(name=name, options=ObjectMetaOptions(max_chunk_size=CHUNK)))


async def read(js: JetStreamContext, bucket: str, name: str, limit: int | None = None) -> list[bytes]:
    info = await (await js.object_store(bucket)).get_info(name)
    return [chunk async for chunk in object_chunks(js, bucket, info, limit=limit)]


async def chunk_sequences(js: JetStreamContext, bucket: str, name: str) -> list[int]:
    """The stream sequences of `name`'s chunks, in order."""
    info = await (await js.object_store(bucket)).get_info(name)
    subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=info.nuid)
    sequences, seq = [], 1
    while len(sequences) < (info.chunks or 0):
        msg = await js.get_msg(object_stream(bucket), seq=seq, subject=subject, next=True)
        assert msg.seq is not None
        sequences.append(msg.seq)
        seq = msg.seq + 1
    return sequences


async def test_an_object_is_read_whole_between_others(js: JetStreamContext, bucket: str) -> None:
    store = await js.object_store(bucket)
    await put(store, "before", b"x" * 2500)
    await put(store, "it", DATA)
    await put(store, "after", b"y" * 2500)
    chunks = await read(js, bucket, "it")
    assert b"".join(chunks) == DATA
    assert [len(chunk) for chunk in chunks] == [CHUNK] * 10 + [496]
    assert b"".join(await read(js, bucket, "after")) == b"y" * 2500


async def test_a_head_reads_only_the_chunks_it_needs(js: JetStreamContext, bucket: str) -> None:
    store = await js.object_store(bucket)
    await put(store, "it", DATA)
    chunks = await read(js, bucket, "it", limit=2500)
    assert b"".join(chunks) == DATA[:3000]  # three chunks: the last one is not cut


async def test_an_object_that_lost_a_chunk_is_an_error(js: JetStreamContext, bucket: str) -> None:
    store = await js.object_store(bucket)
    await put(store, "it", DATA)
    await js.delete_msg(object_stream(bucket), (await chunk_sequences(js, bucket, "it"))[4])
    with pytest.raises(StorageError, match=r"'it' of bucket .* holds 9496 of its 10496 bytes"):
        await read(js, bucket, "it")
    # A head before the hole still reads: it checks nothing.
    assert b"".join(await read(js, bucket, "it", limit=CHUNK)) == DATA[:CHUNK]


async def test_an_object_whose_chunk_changed_is_an_error(js: JetStreamContext, bucket: str) -> None:
    store = await js.object_store(bucket)
    await put(store, "it", DATA)
    info = await store.get_info("it")
    await js.delete_msg(object_stream(bucket), (await chunk_sequences(js, bucket, "it"))[-1])
    # The same number of bytes, other bytes: only the digest can tell.
    await js.publish(OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=info.nuid), b"z" * 496)
    chunks_read = await chunk_sequences(js, bucket, "it")
    assert len(chunks_read) == 11
    with pytest.raises(StorageError, match="does not match its SHA-256 digest"):
        await read(js, bucket, "it")


async def test_ingest_fails_a_damaged_upload_with_the_reason(
    stack: LocalStack, js: JetStreamContext, tmp_path: Path
) -> None:
    """The upload an ingest reads is checked whole: a lost chunk fails the source with the
    reason, where nats-py's reader could have handed on a shorter file."""
    store = await js.object_store(BUCKET_INPUTS)
    name = f"damaged-{secrets.token_hex(4)}.csv"
    data = b"name\n" + b"".join(b"row %05d\n" % n for n in range(2000))
    await put(store, name, data)
    await js.delete_msg(object_stream(BUCKET_INPUTS), (await chunk_sequences(js, BUCKET_INPUTS, name))[3])
    ctx = SourceContext(Settings(), js=js)
    lost = f"holds {len(data) - CHUNK} of its {len(data)} bytes"
    with pytest.raises(SourceError, match=f"the upload cannot be read: .* {lost}"):
        async with local_file(ctx, SubmitCsv(column="name", object=name), "csv"):
            pytest.fail("a damaged upload must not be handed on")


def test_bench_objects_runs() -> None:
    """bench/bench_objects.py runs as bench/README.md shows it (smaller): both readers return
    every byte put (the bench asserts it)."""
    out = run_bench("bench_objects.py", "--megabytes", "2", "--rounds", "1")
    assert "x nats-py's time (median of 1)" in out, out
