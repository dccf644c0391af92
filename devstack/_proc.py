"""Process plumbing shared by the throwaway servers: ports, log tails, lifetime ties, waits.

Everything here is synchronous on purpose: starting a server is a blocking, one-off step of a
CLI command or a test fixture, and keeping it sync lets both call it without an event loop.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shared.cli import stackfile
from shared.contract.errors import ImagegenError

# The machine's shared servers live here; a throwaway server must never bind or signal them.
RESERVED_PORTS: frozenset[int] = frozenset({4222, 5432})

LOG_TAIL_BYTES = 4000

_PR_SET_PDEATHSIG = 1


class LocalStackError(ImagegenError):
    """A throwaway local server could not be found, started, reached or stopped."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    The OS picks it from the ephemeral range, so it is never one of the shared servers' ports.
    There is an unavoidable race between closing the probe socket and the server binding the
    port; the callers retry with a fresh port when the bind fails.
    """
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port
    raise LocalStackError("could not find a free TCP port on 127.0.0.1")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def check_port_allowed(port: int, what: str) -> None:
    """Refuse an explicit port that is reserved or already served by someone else."""
    if port in RESERVED_PORTS:
        raise LocalStackError(
            f"{what}: port {port} belongs to the machine's shared server; "
            "throwaway servers must use another port (pass port=0 to pick a free one)"
        )
    if port and port_in_use(port):
        raise LocalStackError(
            f"{what}: port {port} is already in use on 127.0.0.1; refusing to start a second "
            "server there (stop the other one, or pass port=0 to pick a free one)"
        )


def log_tail(path: Path, offset: int = 0, limit: int = LOG_TAIL_BYTES) -> str:
    """The last `limit` bytes a server wrote to its log since `offset`, for error messages."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(offset, size - limit))
            data = fh.read()
    except OSError as exc:
        return f"(log {path} unreadable: {exc})"
    text = data.decode("utf-8", errors="replace").strip()
    return text or f"(log {path} is empty)"


def read_log_since(path: Path, offset: int) -> str:
    """Everything a server wrote to its log since `offset` ('' when there is nothing yet)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def file_size(path: Path) -> int:
    """Size of `path`, 0 when missing: where this run's part of an appended log begins."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def die_with_parent_hook(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to send the child `sig` when this process dies.

    atexit cannot run when the caller is SIGKILLed (a test runner timing out, a CI job
    cancelled), so without this the servers would outlive it and hold ports and data dirs.
    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so it is only armed
    from the main thread; elsewhere atexit and stop() remain the only clean-up. Linux only.
    It must run after the child has switched user: a credential change clears the setting,
    and subprocess calls preexec_fn after setuid/setgid, which is the order needed here.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # loaded here: no dlopen after fork
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody will signal us.
        if os.getppid() != parent:
            os._exit(1)

    return hook


pid_alive = stackfile.alive  # one definition of "this pid is a live process"


def pid_cmdline(pid: int) -> list[str]:
    """The argv of a live process ([] when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", errors="replace") for part in raw.split(b"\0") if part]


def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send `sig` to the child's process group (it leads its own session), else to the child."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)


def terminate(process: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Signal the child's group, wait up to `timeout`, then SIGKILL the group and reap it."""
    signal_group(process, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        signal_group(process, signal.SIGKILL)
        process.wait(timeout=10)


def wait_until(
    ready: Callable[[], bool],
    *,
    process: subprocess.Popen[bytes],
    timeout: float,
    what: str,
    log: Path,
    log_offset: int,
) -> None:
    """Poll `ready` until it holds; raise with the log tail if the child dies or time runs out."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if ready():
            return
        code = process.poll()
        if code is not None:
            raise LocalStackError(
                f"{what} exited with code {code} before it was ready; log tail ({log}):\n"
                f"{log_tail(log, log_offset)}"
            )
        if time.monotonic() > deadline:
            terminate(process, signal.SIGKILL, timeout=5)
            raise LocalStackError(
                f"{what} was not ready within {timeout:.0f} s and was killed; log tail ({log}):\n"
                f"{log_tail(log, log_offset)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


class _Reaper:
    """Stops every server still running when the interpreter exits normally."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stops: dict[int, Callable[[], None]] = {}
        atexit.register(self.run)

    def add(self, key: int, stop: Callable[[], None]) -> None:
        with self._lock:
            self._stops[key] = stop

    def discard(self, key: int) -> None:
        with self._lock:
            self._stops.pop(key, None)

    def run(self) -> None:
        with self._lock:
            stops = list(self._stops.values())
            self._stops.clear()
        for stop in stops:
            # Best effort at exit: one server failing to stop must not keep the others running.
            with contextlib.suppress(Exception):
                stop()


reaper = _Reaper()


def is_addr_in_use(text: str) -> bool:
    """True when a server log says its port was taken (the free_port race)."""
    lowered = text.lower()
    return "address already in use" in lowered or os.strerror(errno.EADDRINUSE).lower() in lowered
