"""Throwaway nats-server and Postgres: start, use, restart on the same port and data, and never
outlive the caller or touch the machine's shared servers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.js.api import StreamConfig

from devstack import LocalStackError, NatsServer, PostgresServer, free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    # Under /tmp directly, not pytest's 0700 /tmp/pytest-of-root: the Postgres user must reach it.
    path = Path(tempfile.mkdtemp(prefix="imagegen-ls-pg-"))
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def test_free_port_is_bindable_and_not_shared() -> None:
    port = free_port()
    assert port not in (4222, 5432)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_shared_ports_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalStackError, match="4222"):
        NatsServer.start(tmp_path / "nats", port=4222)
    with pytest.raises(LocalStackError, match="5432"):
        PostgresServer.start(tmp_path / "pg", port=5432)
    assert not (tmp_path / "pg").exists()


async def _publish_and_read(url: str, *, create: bool) -> list[bytes]:
    nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2)
    try:
        js = nc.jetstream()
        if create:
            await js.add_stream(StreamConfig(name="LOCALSTACK", subjects=["ls.>"]))
            ack = await js.publish("ls.one", b"survives restarts")
            assert ack.seq == 1
        info = await js.stream_info("LOCALSTACK")
        return [
            (await js.get_msg("LOCALSTACK", seq)).data or b"" for seq in range(1, info.state.messages + 1)
        ]
    finally:
        await nc.close()


async def test_nats_jetstream_survives_restart_and_kill(tmp_path: Path) -> None:
    server = NatsServer.start(tmp_path / "nats")
    try:
        assert server.url == f"nats://127.0.0.1:{server.port}"
        assert server.port not in (0, 4222) and server.monitor_port
        assert await _publish_and_read(server.url, create=True) == [b"survives restarts"]

        port = server.port
        server.restart()  # SIGTERM, then the same port and store
        assert server.port == port
        assert await _publish_and_read(server.url, create=False) == [b"survives restarts"]

        server.stop(kill=True)  # crash: JetStream must recover its store
        assert not server.running
        again = NatsServer.start(tmp_path / "nats", port=port)
        try:
            assert again.url == server.url
            assert await _publish_and_read(again.url, create=False) == [b"survives restarts"]
            with pytest.raises(LocalStackError, match="already in use"):
                NatsServer.start(tmp_path / "other", port=port)
        finally:
            again.stop()
    finally:
        server.stop()


async def test_nats_config_text_enables_auth(tmp_path: Path) -> None:
    config = 'authorization { user: "svc", password: "s3cret" }\n'
    server = NatsServer.start(tmp_path / "nats", config_text=config, log_file=tmp_path / "n.log")
    try:
        assert (tmp_path / "n.log").read_text().count("Server is ready") == 1
        with pytest.raises(Exception):  # noqa: B017 - nats-py raises several kinds here
            await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=1)
        nc = await nats.connect(server.url, user="svc", password="s3cret", connect_timeout=2)
        await nc.close()
    finally:
        server.stop()


@pytest.mark.slow
async def test_postgres_database_persists_across_restarts(pg_dir: Path) -> None:
    server = PostgresServer.start(pg_dir)
    try:
        assert server.url == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        url = server.create_database("imagegen_ls")
        assert server.create_database("imagegen_ls") == url  # idempotent
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')")
        finally:
            await conn.close()

        port = server.port
        server.stop()
        assert not server.running
        again = PostgresServer.start(pg_dir, port=port)  # the same port after stop()
        try:
            conn = await asyncpg.connect(url)
            try:
                assert await conn.fetchval("SELECT v FROM t") == "kept"
            finally:
                await conn.close()
            again.restart()
            assert again.port == port
            conn = await asyncpg.connect(url)
            try:
                assert await conn.fetchval("SELECT count(*) FROM t") == 1
            finally:
                await conn.close()
        finally:
            again.stop()
    finally:
        server.stop()


@pytest.mark.slow
async def test_postgres_starts_again_after_its_postmaster_is_killed(pg_dir: Path) -> None:
    server = PostgresServer.start(pg_dir)
    url = server.create_database("crashy")
    conn = await asyncpg.connect(url)
    await conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (7)")
    assert server.process is not None
    server.process.kill()  # a crash: postmaster.pid and backends are left behind
    server.process.wait()
    await conn.close(timeout=1)
    assert (pg_dir / "postmaster.pid").exists()
    again = PostgresServer.start(pg_dir, port=server.port)
    try:
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT v FROM t") == 7
        finally:
            await conn.close()
    finally:
        again.stop()
        server.stop()


def test_postgres_refuses_a_non_empty_non_cluster_dir(pg_dir: Path) -> None:
    pg_dir.mkdir(parents=True)
    (pg_dir / "stray.txt").write_text("not a cluster")
    with pytest.raises(LocalStackError, match="PG_VERSION"):
        PostgresServer.start(pg_dir)


@pytest.mark.slow
def test_servers_die_with_a_killed_caller(tmp_path: Path, pg_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from devstack import NatsServer, PostgresServer
        n = NatsServer.start(Path({str(tmp_path / "nats")!r}))
        p = PostgresServer.start(Path({str(pg_dir)!r}))
        print(n.process.pid, p.process.pid, flush=True)
        time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    caller = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert caller.stdout is not None
        pids = [int(p) for p in caller.stdout.readline().split()]
        assert len(pids) == 2, "the caller did not start both servers"
        caller.send_signal(signal.SIGKILL)  # no atexit, no finally: only the kernel can help
        caller.wait()
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        assert not alive, f"servers outlived their killed caller: {alive}"
    finally:
        caller.kill()
        caller.wait()
