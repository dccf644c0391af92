"""Both image stores honour the same `ImageStore` contract (a folder, and a real NATS Object
Store bucket): put, list in natural order, read in chunks, a manifest beside the images, and
names that cannot escape a job."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js.api import ObjectStoreConfig

from devstack.natsauth import NatsCredentials
from shared.contract.errors import BadRequest, NotFound, StorageError
from shared.runtime.bus.permissions import ADMIN
from shared.storage import MANIFEST_NAME, DirectoryStore, ImageStore, ObjectImageStore
from tests.conftest import nats_options

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture(params=["directory", "object"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, nats_url: str, nats_credentials: NatsCredentials | None
) -> AsyncIterator[ImageStore]:
    if request.param == "directory":
        yield DirectoryStore(tmp_path / "out")
        return
    nc = await nats.connect(nats_url, **nats_options(nats_credentials, ADMIN))  # creates a bucket
    js = nc.jetstream()
    bucket = f"test-images-{secrets.token_hex(4)}"
    await js.create_object_store(bucket, config=ObjectStoreConfig(bucket=bucket))
    try:
        yield ObjectImageStore(js, bucket)
    finally:
        await js.delete_object_store(bucket)
        await nc.close()


async def read_all(store: ImageStore, job_id: str, name: str) -> bytes:
    return b"".join([piece async for piece in store.read(job_id, name)])


async def test_put_list_and_read(store: ImageStore) -> None:
    names = await store.put_many("job-1", [("10.png", PNG), ("2.png", PNG[:100]), ("苹果.webp", b"RIFF")])
    assert names == ["10.png", "2.png", "苹果.webp"]
    await store.put_many("job-2", [("1.png", b"other job")])
    listed = await store.list("job-1")
    assert [(f.name, f.bytes) for f in listed] == [("2.png", 100), ("10.png", len(PNG)), ("苹果.webp", 4)]
    assert await read_all(store, "job-1", "10.png") == PNG
    assert [f.name for f in await store.list("job-2")] == ["1.png"]
    assert await store.list("no-such-job") == []


async def test_a_re_render_replaces_the_file(store: ImageStore) -> None:
    await store.put_many("job", [("1.png", b"first")])
    await store.put_many("job", [("1.png", b"second")])
    assert await read_all(store, "job", "1.png") == b"second"
    assert len(await store.list("job")) == 1


async def test_the_manifest_sits_beside_the_images_and_is_not_an_image(
    store: ImageStore, tmp_path: Path
) -> None:
    await store.put_many("job", [("1.png", PNG)])
    local = tmp_path / "m.csv"
    local.write_bytes("row,text\n2,苹果\n".encode())
    location = await store.put_manifest("job", local)
    assert location.endswith(f"job/{MANIFEST_NAME}")
    assert await read_all(store, "job", MANIFEST_NAME) == local.read_bytes()
    assert [f.name for f in await store.list("job")] == ["1.png"]


async def test_missing_and_unsafe_names(store: ImageStore) -> None:
    with pytest.raises(NotFound):
        await read_all(store, "job", "nope.png")
    for bad in ("../x.png", ".hidden.png", "a/b.png", "x.txt"):
        with pytest.raises(BadRequest):
            await read_all(store, "job", bad)
    with pytest.raises((StorageError, BadRequest)):
        await store.put_many("job", [("../escape.png", PNG)])
    with pytest.raises(BadRequest):
        store.location("../job")


async def test_locations_say_which_store(store: ImageStore, tmp_path: Path) -> None:
    location = store.location("job")
    if store.kind == "object":
        assert location.startswith("nats-object://") and location.endswith("/job/")
    else:
        assert Path(location) == (tmp_path / "out" / "job").resolve()
