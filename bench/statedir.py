"""Where the benchmarks write their files: a RAM file system (tmpfs) when one has room.

Both sides of every ratio (the in-process loop and the service set) write the same image files,
so the file system is not what a benchmark compares. But one file system distorts the figures:
ext4 without a journal (this project's sandbox runs its root file system that way). There, a
file created within minutes of many deletions scans the group's recently deleted inodes
(the kernel's `recently_deleted`, checked only when there is no journal). The benchmarks delete
each job's images, and nats-server replaces its consumer state files several times a second.
perf put over half of the loop's CPU in that scan: the loop ran at 0.55-0.83 ms per row against
0.16-0.20 on a fresh file system, and the render child at 0.22-0.28 against 0.16 on tmpfs,
varying from run to run. On tmpfs the same runs were steady, and the child matched the loop.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

RAM_FS = Path("/dev/shm")
# Room a run needs there: a tmpfs file takes at least a page, plus NATS's and Postgres's files.
BYTES_PER_ROW = 8 * 1024
BYTES_OF_STATE = 2 * 1024**3


def bench_root(rows: int) -> Path:
    """The folder to make a benchmark's state in, for a run that writes `rows` images at most at
    once: the RAM file system if it has room for them, else the system's temporary folder."""
    need = rows * BYTES_PER_ROW + BYTES_OF_STATE
    if RAM_FS.is_dir() and os.access(RAM_FS, os.W_OK) and shutil.disk_usage(RAM_FS).free > need:
        return RAM_FS
    return Path(tempfile.gettempdir())


def _mount_of(path: Path) -> tuple[str, str]:
    """(device, file system type) of the mount holding `path`, from /proc/mounts."""
    best = ("", "", "")
    resolved = str(path.resolve())
    with Path("/proc/mounts").open(encoding="utf-8") as mounts:
        for line in mounts:
            device, point, kind, *_ = line.split()
            inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best[1]):
                best = (device, point, kind)
    return best[0], best[2]


def describe(path: Path) -> str:
    """`path`'s file system, with a warning when it is ext4 without a journal."""
    try:
        device, kind = _mount_of(path)
    except OSError:
        return "file system unknown"
    if kind != "ext4":
        return kind
    journal = Path("/sys/fs/ext4") / Path(device).name / "journal_task"
    try:
        without = journal.read_text(encoding="utf-8").strip() == "<none>"
    except OSError:
        return kind
    if not without:
        return kind
    return (
        "ext4 WITHOUT a journal: files created soon after deletions scan the deleted inodes, which"
        " inflates and scatters the figures (bench/statedir.py); pass --state-dir on a tmpfs"
    )
