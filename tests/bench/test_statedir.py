"""bench/statedir.py: where the benchmarks write, and the file system they report."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("statedir", ROOT / "bench" / "statedir.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_state_goes_to_the_ram_file_system_when_it_has_room(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    statedir = load()
    monkeypatch.setattr(statedir, "RAM_FS", tmp_path)
    monkeypatch.setattr(statedir, "BYTES_OF_STATE", 0)
    assert statedir.bench_root(1000) == tmp_path
    # More rows than the folder has room for: the temporary folder instead.
    free = statedir.shutil.disk_usage(tmp_path).free
    assert statedir.bench_root(free // statedir.BYTES_PER_ROW + 1) == Path(tempfile.gettempdir())


def test_without_a_ram_file_system_state_goes_to_the_temporary_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    statedir = load()
    monkeypatch.setattr(statedir, "RAM_FS", tmp_path / "absent")
    assert statedir.bench_root(1) == Path(tempfile.gettempdir())


def test_the_file_system_is_named_from_the_mount_table() -> None:
    statedir = load()
    assert statedir.describe(Path("/proc/self")) == "proc"
    assert statedir.describe(Path("/sys/kernel")) == "sysfs"
