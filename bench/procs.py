"""What the stack's processes spend, read from /proc: CPU seconds and peak resident memory.

Every descendant of the benchmark that belongs to the stack is named after its component
(nats-server, postgres, ingest, renderer, ...); a service's own multiprocessing child (the
renderer's render child) is `<service>-child` (and multiprocessing's resource tracker
`<service>-tracker`), so the parent's messaging work and the child's rendering are told apart.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str
    cpu: float  # user + system seconds
    peak_kib: int  # VmHWM: the most resident memory since start or since `reset_peaks`


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _component(pid: int) -> str | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    line = b" ".join(argv).decode(errors="replace")
    if "nats-server" in line:
        return "nats-server"
    if line.startswith("postgres") or "/postgres " in line or "bin/postgres" in line:
        return "postgres"
    if "services." in line:
        module = next(a for a in argv if a.startswith(b"services.")).decode()
        return module.removeprefix("services.").replace("_", "-")
    return None


def _is_tracker(pid: int) -> bool:
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _peak_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def snapshot() -> dict[int, Proc]:
    """Every stack process under this one, by pid."""
    children = _children_map()
    todo: list[tuple[int, str | None]] = [(pid, None) for pid in children.get(os.getpid(), [])]
    out: dict[int, Proc] = {}
    while todo:
        pid, parent = todo.pop()
        own = _component(pid)
        if own is not None:
            name: str | None = own
        elif parent is not None and parent != "postgres" and not parent.endswith("-child"):
            # A service's multiprocessing child (or the resource tracker multiprocessing starts).
            name = f"{parent}-tracker" if _is_tracker(pid) else f"{parent}-child"
        else:
            name = parent
        todo.extend((child, own or parent) for child in children.get(pid, []))
        if name is None:
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = Proc(pid, name, (int(fields[11]) + int(fields[12])) / _TICK, _peak_kib(pid))
    return out


def cpu_delta(before: dict[int, Proc], after: dict[int, Proc], into: dict[str, float]) -> None:
    """Add each component's CPU seconds between the snapshots to `into`."""
    for pid, proc in after.items():
        start = before[pid].cpu if pid in before else 0.0
        into[proc.name] = into.get(proc.name, 0.0) + proc.cpu - start


def reset_peaks(procs: dict[int, Proc]) -> None:
    """Reset the kernel's peak-RSS mark of each process (clear_refs 5), where permitted."""
    for pid in procs:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def beside_child(spent: dict[str, float]) -> str:
    """Every process but the render child, against the render child in the same time window:
    unlike the ratio to the loop (timed before or after), machine speed drifts out of it."""
    child = spent.get("renderer-child", 0.0)
    if not child:
        return "no render child measured"
    rest = sum(spent.values()) - child
    return f"the rest of the service set is {rest / child:.1%} of the render child's CPU in the same jobs"


def parts_per_row(spent: dict[str, float], rows: int) -> str:
    """Each component's CPU per row, largest first: ms for the render child, microseconds (one
    decimal) for the rest, whose changes are a few microseconds."""

    def part(name: str, secs: float) -> str:
        if name == "renderer-child":
            return f"{name} {1000 * secs / rows:.3f} ms"
        return f"{name} {1e6 * secs / rows:.1f} us"

    ranked = sorted(spent.items(), key=lambda kv: -kv[1])
    return "  ".join(part(name, secs) for name, secs in ranked if secs > 0)
