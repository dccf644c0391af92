"""The directory image store: atomic writes under `<root>/<job_id>/`, never outside it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from shared.contract.errors import BadRequest, StorageError
from shared.storage.directory import DirectoryStore


async def test_put_many_writes_under_the_job_folder(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    files = [("0.png", b"\x89PNG zero"), ("1.png", b"\x89PNG one"), ("苹果.png", b"apple")]
    locations = await store.put_many("job-1", files)
    job_dir = (tmp_path / "job-1").resolve()
    assert locations == [name for name, _ in files]
    for name, data in files:
        assert (job_dir / name).read_bytes() == data
    assert sorted(p.name for p in job_dir.iterdir()) == sorted(name for name, _ in files)
    assert store.location("job-1") == str(job_dir)


async def test_no_temporary_files_are_left(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    await store.put_many("job", [(f"{i}.png", bytes([i]) * 100) for i in range(50)])
    names = [p.name for p in (tmp_path / "job").iterdir()]
    assert len(names) == 50
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]


async def test_rerender_overwrites_identically(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    await store.put_many("job", [("a.png", b"first version, longer"), ("b.png", b"b")])
    await store.put_many("job", [("a.png", b"second")])
    assert (tmp_path / "job" / "a.png").read_bytes() == b"second"  # not b"second version..."
    assert (tmp_path / "job" / "b.png").read_bytes() == b"b"
    await store.put_many("job", [("a.png", b"second")])
    assert (tmp_path / "job" / "a.png").read_bytes() == b"second"
    assert sorted(p.name for p in (tmp_path / "job").iterdir()) == ["a.png", "b.png"]


async def test_concurrent_writes_of_the_same_name(tmp_path: Path) -> None:
    # A redelivered batch can be written while the first delivery's write is still running.
    store = DirectoryStore(tmp_path)
    payload = os.urandom(256 * 1024)
    results = await asyncio.gather(
        *(store.put_many("job", [("same.png", payload)]) for _ in range(8)), return_exceptions=True
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (tmp_path / "job" / "same.png").read_bytes() == payload
    assert [p.name for p in (tmp_path / "job").iterdir()] == ["same.png"]


async def test_empty_batch(tmp_path: Path) -> None:
    assert await DirectoryStore(tmp_path).put_many("job", []) == []


async def test_jobs_are_separate(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    await store.put_many("job-a", [("0.png", b"a")])
    await store.put_many("job-b", [("0.png", b"b")])
    assert (tmp_path / "job-a" / "0.png").read_bytes() == b"a"
    assert (tmp_path / "job-b" / "0.png").read_bytes() == b"b"


@pytest.mark.parametrize(
    "name",
    ["../escape.png", "../../escape.png", "/tmp/abs.png", "sub/dir.png", "..", ".", "", "a/../../x.png"],
)
async def test_names_escaping_the_job_folder_are_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "out"
    store = DirectoryStore(root)
    with pytest.raises(StorageError):
        await store.put_many("job", [("ok.png", b"ok"), (name, b"evil")])
    # Nothing at all was written, inside or outside the root.
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) in ([], ["out"])


async def test_a_symlink_in_the_job_folder_is_replaced_never_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = DirectoryStore(tmp_path / "out")
    job_dir = tmp_path / "out" / "job"
    job_dir.mkdir(parents=True)
    (job_dir / "link.png").symlink_to(outside / "target.png")
    await store.put_many("job", [("link.png", b"image")])
    assert not (outside / "target.png").exists()
    assert not (job_dir / "link.png").is_symlink()
    assert (job_dir / "link.png").read_bytes() == b"image"


async def test_a_job_folder_that_links_out_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "job").symlink_to(outside, target_is_directory=True)
    store = DirectoryStore(tmp_path / "out")
    with pytest.raises(StorageError):
        await store.put_many("job", [("0.png", b"evil")])
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("job_id", ["..", "../x", "a/b", "a.b", "a b", "", "*", ">", "x" * 65, "a\nb"])
async def test_bad_job_ids_are_refused(tmp_path: Path, job_id: str) -> None:
    store = DirectoryStore(tmp_path / "out")
    with pytest.raises(BadRequest) as err:
        await store.put_many(job_id, [("0.png", b"x")])
    assert err.value.field == "job_id"
    assert not (tmp_path / "out").exists()
