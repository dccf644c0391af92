"""A throwaway PostgreSQL server in a caller-chosen data directory, on 127.0.0.1 only.

It uses the machine's PostgreSQL binaries (`pg_config --bindir`, else the newest
/usr/lib/postgresql/*/bin; `apt-get install postgresql` provides them). Postgres refuses to run
as root, so as root the server runs as a dedicated system user (created on first use); as
anyone else it runs as that user.

The postmaster is started directly as a child process rather than through `pg_ctl start`:
pg_ctl daemonises it, which would detach it from the caller so that a killed test run or
`imagegen up` would leave it running. As a direct child it leads its own process group
(stop() signals the group, backends included), gets a parent-death signal, and is stopped by
an atexit hook. Data directories are reusable: a stale postmaster.pid from a killed run is
cleared, and an orphaned postmaster still serving the directory is shut down first.

Callers choose where the data lives. The server user must be able to traverse every parent of
the data directory: a directory under the system temp dir (e.g. pytest's 0700
/tmp/pytest-of-root) is opened with o+x (search only, no listing); anywhere else (e.g. /root)
that would need it raises a clear error instead of loosening permissions silently (the binaries,
the server user and these permissions: `devstack/pghost.py`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from devstack._proc import (
    LocalStackError,
    check_port_allowed,
    die_with_parent_hook,
    file_size,
    free_port,
    is_addr_in_use,
    log_tail,
    pid_alive,
    read_log_since,
    reaper,
    terminate,
    wait_until,
)
from devstack.pghost import RunAs, chown_tree, ensure_user, find_pg_bindir, open_path_for

READY_TIMEOUT = 60.0  # crash recovery after a SIGKILL can take a while on a slow disk
STOP_TIMEOUT = 30.0
_READY = "database system is ready to accept connections"
# Postgres's shutdown modes are chosen by the signal sent to the postmaster.
_STOP_SIGNALS = {
    "smart": signal.SIGTERM,
    "fast": signal.SIGINT,
    "immediate": signal.SIGQUIT,
}
_UNIX_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL
_PORT_ATTEMPTS = 3


def _pg_env() -> dict[str, str]:
    """The environment the Postgres tools run with: ours minus anything that redirects them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"  # the cluster is initialised with the C locale; avoid locale warnings
    return env


def _postgres_processes_in(data_dir: Path) -> list[int]:
    """Pids of postgres processes working in data_dir (postmaster and backends chdir there).

    Backends make themselves session leaders, so signalling the postmaster's process group
    does not reach them; after a SIGKILLed postmaster they linger briefly and hold the
    cluster's shared memory, and a new postmaster refuses to start until they are gone.
    """
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "exe").readlink().name != "postgres":
                continue
            if (proc / "cwd").readlink() != data_dir:
                continue
        except OSError:
            continue
        found.append(int(proc.name))
    return found


def _parent_of(pid: int) -> int | None:
    """The parent pid of a live process, from /proc (None when it is gone)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may contain spaces; fields resume after the last ')'.
    return int(stat_line.rsplit(")", 1)[1].split()[1])


def _reap_orphans(data_dir: Path, *, grace: float) -> None:
    """Wait `grace` seconds for postgres processes left in data_dir to exit, then SIGKILL them."""
    deadline = time.monotonic() + grace
    while (pids := _postgres_processes_in(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _postgres_processes_in(data_dir) and time.monotonic() < deadline:
        time.sleep(0.05)


def _clear_stale(data_dir: Path) -> None:
    """Make a data directory a killed run left behind startable again.

    An orphaned postmaster still serving it (the caller died where no parent-death signal
    could fire) gets a fast shutdown; orphaned backends are reaped. A postmaster.pid whose pid
    is dead is left to Postgres, which removes it itself after checking the old shared memory
    is unused. One whose pid was recycled by an unrelated live process (common in containers)
    would make Postgres refuse to start, so it is removed once no postgres process remains.
    """
    pid_file = data_dir / "postmaster.pid"
    try:
        pid: int | None = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        pid = None
    running = _postgres_processes_in(data_dir)
    if pid is not None and pid in running and _parent_of(pid) == os.getpid():
        raise LocalStackError(
            f"a postgres this process started (pid {pid}) is still running on {data_dir}; "
            "stop() it before starting another server on the same data directory"
        )
    if pid is not None and pid in running:
        os.kill(pid, signal.SIGINT)  # fast shutdown: disconnect clients, checkpoint
        _reap_orphans(data_dir, grace=STOP_TIMEOUT)
    elif running:
        _reap_orphans(data_dir, grace=5)
    if pid is not None and pid_alive(pid) and pid not in _postgres_processes_in(data_dir):
        pid_file.unlink(missing_ok=True)


def _socket_dir(data_dir: Path, who: RunAs) -> Path:
    """The Unix socket directory: data_dir itself unless that path would be too long."""
    if len(str(data_dir / ".s.PGSQL.65535")) <= _UNIX_PATH_MAX:
        return data_dir
    # Deep pytest/tmp paths overflow sun_path; a short private dir keeps the socket usable.
    short = Path(tempfile.mkdtemp(prefix="pgsock-"))
    if who.uid is not None and who.gid is not None:
        os.chown(short, who.uid, who.gid)
    return short


@dataclass
class PostgresServer:
    """One running (or stopped) PostgreSQL server, trust auth for user `postgres` over TCP."""

    url: str
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    user: str = "imagegen-pg"
    bindir: Path | None = field(default=None, repr=False)
    _log_offset: int = field(default=0, init=False, repr=False)
    _sock_dir: Path | None = field(default=None, init=False, repr=False)

    @property
    def log_file(self) -> Path:
        """Where the server writes its log (inside the data directory, appended across runs)."""
        return self.data_dir / "server.log"

    @classmethod
    def start(cls, data_dir: Path, *, port: int = 0, user: str = "imagegen-pg") -> PostgresServer:
        """Start Postgres on 127.0.0.1:`port` (0 = a free one) with its data in `data_dir`.

        The cluster is initialised on first use (no PG_VERSION yet; the directory must then be
        missing or empty). Returns once the server accepts connections; raises LocalStackError
        with the log tail otherwise. `user` is the system user the server runs as when the
        caller is root (created if missing); otherwise the server runs as the caller.
        """
        data_dir = Path(data_dir).resolve()
        if port:
            check_port_allowed(port, "postgres")
        bindir = find_pg_bindir()
        who = ensure_user(user)

        data_dir.mkdir(parents=True, exist_ok=True)
        open_path_for(data_dir, who)
        chown_tree(data_dir, who)
        data_dir.chmod(0o700)  # Postgres refuses a data directory others can read
        if not (data_dir / "PG_VERSION").exists():
            _initdb(bindir, data_dir, who)
        _clear_stale(data_dir)

        attempts = 1 if port else _PORT_ATTEMPTS
        for attempt in range(attempts):
            chosen = port or free_port()
            server = cls(
                url=f"postgresql://postgres@127.0.0.1:{chosen}/postgres",
                data_dir=data_dir,
                port=chosen,
                user=user,
                bindir=bindir,
            )
            try:
                server._launch(who)
                return server
            except LocalStackError:
                # free_port() can lose a race with another process; only then try another port.
                lost_race = is_addr_in_use(read_log_since(server.log_file, server._log_offset))
                if port or not lost_race or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _launch(self, who: RunAs) -> None:
        assert self.bindir is not None
        sock_dir = self._sock_dir = _socket_dir(self.data_dir, who)
        args = [
            str(self.bindir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-k", str(sock_dir),
            "-c", "listen_addresses=127.0.0.1",
            # Throwaway data: durability costs time and buys nothing here.
            "-c", "fsync=off",
        ]  # fmt: skip
        log = self.log_file
        self._log_offset = file_size(log)
        with log.open("ab") as out:
            if who.switch:
                os.fchown(out.fileno(), who.uid or 0, who.gid or 0)
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=_pg_env(),
                user=who.uid,
                group=who.gid,
                extra_groups=[] if who.switch else None,
                start_new_session=True,
                # SIGINT = fast shutdown: a dead caller's clients are gone anyway.
                preexec_fn=die_with_parent_hook(signal.SIGINT),
            )
        reaper.add(id(self), self._stop_quietly)
        offset = self._log_offset

        def ready() -> bool:
            return _READY in read_log_since(log, offset)

        try:
            wait_until(
                ready,
                process=self.process,
                timeout=READY_TIMEOUT,
                what=f"postgres (data {self.data_dir}, port {self.port})",
                log=log,
                log_offset=offset,
            )
        except LocalStackError:
            self.stop(mode="immediate")  # reap leftovers, drop the socket dir and atexit hook
            raise

    def stop(self, *, mode: str = "fast") -> None:
        """Shut the server down and wait: "smart" (wait for clients), "fast" (disconnect them,
        checkpoint; the default) or "immediate" (no checkpoint: crash recovery on next start).
        Idempotent."""
        if mode not in _STOP_SIGNALS:
            raise ValueError(f"mode must be one of {sorted(_STOP_SIGNALS)}, not {mode!r}")
        process, self.process = self.process, None
        reaper.discard(id(self))
        if process is None:
            return
        terminate(process, _STOP_SIGNALS[mode], timeout=STOP_TIMEOUT)
        # After a clean shutdown none remain; after a SIGKILL fallback, backends may.
        _reap_orphans(self.data_dir, grace=5)
        if self._sock_dir is not None and self._sock_dir != self.data_dir:
            shutil.rmtree(self._sock_dir, ignore_errors=True)  # the short-path fallback dir
        self._sock_dir = None

    def restart(self) -> None:
        """Stop (fast), then start again on the same port and data directory."""
        self.stop()
        fresh = type(self).start(self.data_dir, port=self.port, user=self.user)
        reaper.discard(id(fresh))
        self.url, self.process, self.bindir = fresh.url, fresh.process, fresh.bindir
        self._log_offset = fresh._log_offset
        reaper.add(id(self), self._stop_quietly)

    @property
    def running(self) -> bool:
        """True while the postmaster process is alive."""
        return self.process is not None and self.process.poll() is None

    def database_url(self, name: str) -> str:
        """The URL of database `name` on this server (it need not exist)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{quote(name, safe='')}"

    def create_database(self, name: str) -> str:
        """Create database `name` unless it exists; return its URL."""
        if not name or "\0" in name:
            raise ValueError(f"invalid database name {name!r}")
        literal = "'" + name.replace("'", "''") + "'"
        ident = '"' + name.replace('"', '""') + '"'
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = {literal}")
        if exists.strip() != "1":
            try:
                self._psql(f"CREATE DATABASE {ident}")
            except LocalStackError as exc:
                # Two callers racing to create the same database: the loser is fine too.
                if "already exists" not in str(exc):
                    raise
        return self.database_url(name)

    def _psql(self, sql: str) -> str:
        if not self.running:
            raise LocalStackError(f"postgres on port {self.port} is not running")
        assert self.bindir is not None
        args = [
            str(self.bindir / "psql"),
            "-X", "-q", "-A", "-t",  # no psqlrc, bare unaligned tuples
            "-v", "ON_ERROR_STOP=1",
            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
            "-c", sql,
        ]  # fmt: skip
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            env={**_pg_env(), "PGCONNECT_TIMEOUT": "10"},
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise LocalStackError(
                f"psql failed on port {self.port} running {sql!r}: {proc.stderr.strip()}; "
                f"server log tail:\n{log_tail(self.log_file, limit=1500)}"
            )
        return proc.stdout

    def _stop_quietly(self) -> None:
        self.stop(mode="fast")


def _initdb(bindir: Path, data_dir: Path, who: RunAs) -> None:
    """Initialise a cluster: superuser `postgres`, trust auth, UTF-8, C locale, no fsync."""
    if any(data_dir.iterdir()):
        raise LocalStackError(
            f"{data_dir} is not empty but holds no Postgres cluster (no PG_VERSION); "
            "use an empty or missing directory"
        )
    args = [
        str(bindir / "initdb"),
        "-D", str(data_dir),
        "-U", "postgres",
        "--auth=trust",
        "-E", "UTF8",
        "--locale=C",
        "--no-sync",
    ]  # fmt: skip
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        cwd=data_dir,
        env=_pg_env(),
        user=who.uid,
        group=who.gid,
        extra_groups=[] if who.switch else None,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-3000:]
        raise LocalStackError(f"initdb failed for {data_dir} (exit {proc.returncode}):\n{tail}")
