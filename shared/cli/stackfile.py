"""Where `imagegen up` records the running local stack, so every later command finds it.

The record is `.imagegen/up/stack.json` under the folder `imagegen up` ran in: the stack's
process, its URLs and the credentials file of its client identity. Commands read it when no
`--nats-url` is given; a record whose process is gone is ignored.
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
    output_dir: str = ""
    logs: str = ""
    # Settings a client needs beyond the URL (e.g. IMAGEGEN_NATS_CREDS_FILE), as env names.
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


def write(state: Path, info: StackInfo) -> None:
    state.mkdir(parents=True, exist_ok=True)
    tmp = info_file(state).with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(info))
    tmp.replace(info_file(state))
