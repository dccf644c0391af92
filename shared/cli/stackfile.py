"""Where `imagegen up` records the running local stack, so every later command finds it.

The record is `.imagegen/up/stack.json` under the folder `imagegen up` ran in: the stack's
process, its URLs and the settings of its client identity (user and password; the file is 0600).
Commands read it when no `--nats-url` is given; a record whose process is gone is ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

DEFAULT_STATE = Path(".imagegen")


class StackInfo(msgspec.Struct, kw_only=True):
    pid: int
    nats_url: str
    database_url: str = ""
    console_url: str | None = None
    # nats-server's monitoring endpoint (/varz, /jsz), when the stack started its own server.
    monitor_url: str | None = None
    output_dir: str = ""
    logs: str = ""
    # Settings a client needs beyond the URL (IMAGEGEN_NATS_USER/PASSWORD), as env names.
    client_env: dict[str, str] = msgspec.field(default_factory=dict)


def state_dir(given: Path | None, command: str = "up") -> Path:
    return (given or DEFAULT_STATE / command).resolve()


def info_file(state: Path) -> Path:
    return state / "stack.json"


def alive(pid: int) -> bool:
    """True when a process with this pid exists (zombies included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read(state: Path) -> StackInfo | None:
    """The running stack recorded in `state`, or None (no record, or its process is gone)."""
    try:
        info = msgspec.json.decode(info_file(state).read_bytes(), type=StackInfo)
    except (OSError, msgspec.DecodeError):
        return None
    return info if alive(info.pid) else None


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner may read (0600), whatever the umask: it holds secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        handle.write(data)


def write(state: Path, info: StackInfo) -> None:
    """Record `info` (0600: `client_env` holds the client identity's password)."""
    state.mkdir(parents=True, exist_ok=True)
    tmp = info_file(state).with_suffix(".tmp")
    write_private(tmp, msgspec.json.encode(info))
    tmp.replace(info_file(state))
