"""The machine side of a throwaway Postgres: where the server binaries are, the unprivileged user
the server runs as (Postgres refuses root), and the file permissions that user needs to reach
its data directory. `devstack.postgres` runs the server itself."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devstack._proc import LocalStackError


def find_pg_bindir() -> Path:
    """The directory holding initdb and postgres: `pg_config --bindir`, else the newest
    /usr/lib/postgresql/<version>/bin.

    pg_config can come from libpq-dev alone, pointing at a bindir without the server, so each
    candidate must actually contain `postgres` and `initdb`.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    raise LocalStackError(
        "PostgreSQL server binaries not found (no initdb/postgres via `pg_config --bindir` or "
        "in /usr/lib/postgresql/*/bin); install them with `apt-get install postgresql` "
        "(`make` does this)"
    )


@dataclass(frozen=True)
class RunAs:
    """Who the server runs as: a dedicated user when we are root, else ourselves (None)."""

    uid: int | None
    gid: int | None
    name: str

    @property
    def switch(self) -> bool:
        return self.uid is not None


def ensure_user(name: str) -> RunAs:
    """Resolve (and as root, create) the user the server runs as."""
    if os.geteuid() != 0:
        return RunAs(None, None, pwd.getpwuid(os.geteuid()).pw_name)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        proc = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        # Exit 9 means another process created it meanwhile: fine.
        if proc.returncode not in (0, 9):
            raise LocalStackError(
                f"could not create system user {name!r} for Postgres (which refuses to run as "
                f"root): {proc.stderr.strip() or proc.stdout.strip()}"
            ) from None
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise LocalStackError(f"user {name!r} is root; Postgres needs an unprivileged user")
    return RunAs(entry.pw_uid, entry.pw_gid, name)


def can_traverse(st: os.stat_result, who: RunAs) -> bool:
    if who.uid is None or who.uid == st.st_uid:
        return who.uid is None or bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == who.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def open_path_for(data_dir: Path, who: RunAs) -> None:
    """Make sure the server user can reach data_dir through all its parents."""
    if not who.switch:
        return
    tmp_root = Path(tempfile.gettempdir()).resolve()
    for parent in reversed(data_dir.parents):
        st = parent.stat()
        if can_traverse(st, who):
            continue
        if parent != tmp_root and tmp_root in parent.parents:
            # A private temp dir (pytest's /tmp/pytest-of-root is 0700): allow search only.
            parent.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
            continue
        raise LocalStackError(
            f"Postgres runs as {who.name!r}, which cannot traverse {parent} (mode "
            f"{stat.filemode(st.st_mode)}) to reach {data_dir}; put the data directory "
            f"somewhere that user can reach (e.g. under {tmp_root} or /var/tmp), or run "
            f"`chmod o+x {parent}`"
        )


def chown_tree(path: Path, who: RunAs) -> None:
    """Give the data directory to the server user (all of it, when reused from another owner)."""
    if who.uid is None or who.gid is None:
        return
    st = path.stat()
    if st.st_uid != who.uid or st.st_gid != who.gid:
        for root, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                os.lchown(Path(root) / name, who.uid, who.gid)
        os.chown(path, who.uid, who.gid)
