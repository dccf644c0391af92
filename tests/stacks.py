"""Test helpers for stacks of their own: a private nats-server and fresh database per test, for
tests that flood or break the servers (the session's servers are never touched)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats.errors
from nats.js.api import ClusterInfo, StreamInfo
from nats.js.client import JetStreamContext
from nats.js.errors import APIError

from devstack import NatsServer
from devstack.natsauth import NatsCredentials
from devstack.stack import LocalStack
from shared.client import Client
from shared.contract.messages import JobInfo
from tests.conftest import create_database
from tests.waiting import eventually

# How long a million-row ingest may take on a loaded machine: a liveness bound, set well inside
# those tests' own cap (their timeout marker) so that this deadline, naming what did not happen,
# fires first. Speed is measured in bench/.
INGEST_DEADLINE = 600
# What a JetStream API request raises while a stream has no leader (on a cluster, mid-election).
_NO_LEADER = (APIError, nats.errors.TimeoutError, nats.errors.NoRespondersError)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def secured_nats(
    store: Path, log_file: Path | None = None, extra_config: str = ""
) -> tuple[NatsServer, NatsCredentials]:
    """A throwaway nats-server running the permissions layout (plus `extra_config` lines, e.g.
    a lower `max_payload`), and its passwords."""
    credentials = NatsCredentials.generate()
    config = credentials.server_config() + ("\n" + extra_config if extra_config else "")
    server = NatsServer.start(store, log_file=log_file, config_text=config)
    return server, credentials


async def own_stack(
    tmp: Path, postgres_admin_url: str, *, renderers: int, **env: str
) -> tuple[NatsServer, LocalStack]:
    nats_server, credentials = secured_nats(tmp / "nats", tmp / "nats-server.log")
    database_url = await create_database(postgres_admin_url, prefix="imagegen_large")
    stack = LocalStack(
        tmp / "stack",
        renderers=renderers,
        nats_url=nats_server.url,
        nats_credentials=credentials,
        database_url=database_url,
        # No fairness cap: these tests measure ingest alone, with no renderer draining the queue.
        extra_env={"IMAGEGEN_LOG_FORMAT": "json", "IMAGEGEN_MAX_QUEUED_BATCHES_PER_JOB": "0", **env},
    )
    try:
        # LocalStack.start runs its own event loop (asyncio.run): give it a thread.
        await asyncio.to_thread(stack.start)
    except BaseException:
        nats_server.stop()
        raise
    return nats_server, stack


async def wait_ingested(client: Client, job_id: str, timeout: float) -> JobInfo:
    """Poll until ingest has written the job's totals (or it failed)."""
    deadline = time.monotonic() + timeout
    while True:
        job = await client.get_job(job_id)
        if job.total is not None or job.status == "failed":
            return job
        assert time.monotonic() < deadline, f"ingest not finished after {timeout}s: {job}"
        await asyncio.sleep(0.5)


async def _stream_info(js: JetStreamContext, stream: str) -> StreamInfo | None:
    """The stream's info, or None while it has no leader to answer (mid-election)."""
    try:
        return await js.stream_info(stream)
    except _NO_LEADER:
        return None


async def stream_leader(js: JetStreamContext, stream: str) -> str:
    """The name of the server leading `stream` on a cluster ($JS.API.STREAM.INFO's
    cluster.leader), waiting through an election."""

    async def leader() -> str | None:
        info = await _stream_info(js, stream)
        return info.cluster.leader if info and info.cluster else None

    return await eventually(leader, f"a leader of {stream}")


async def wait_for_peers(js: JetStreamContext, stream: str, count: int) -> None:
    """Wait until `count` servers (the leader and its current followers) hold `stream`."""

    async def held() -> ClusterInfo | None:
        info = await _stream_info(js, stream)
        cluster = info.cluster if info else None
        current = 1 + sum(bool(peer.current) for peer in cluster.replicas or []) if cluster else 0
        return cluster if cluster and cluster.leader and current == count else None

    await eventually(held, f"{stream} current on {count} servers")
