"""JetStream replicated on a real three-server cluster: nothing lost when a server dies.

Each test runs the whole service set against its own three nats-server processes on loopback
(devstack's `NatsCluster`, with the permissions layout) with `IMAGEGEN_STREAM_REPLICAS=3`; every
service and client is given all three URLs. In the middle of a 20,000-row job the leader of the
task stream is killed with SIGKILL, or all three servers are restarted one after another; the
job must end `completed` with exact counts, every image present and every item reported once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack import NatsCluster, PostgresServer
from devstack.natsauth import NatsCredentials
from devstack.stack import LocalStack
from shared.client import Client, ServiceUnavailable
from shared.contract import subjects
from shared.contract.messages import JobEvent
from shared.runtime.bus.discovery import wait_for_services
from shared.runtime.bus.permissions import ADMIN
from shared.runtime.retry import retrying
from shared.sources.csv import SubmitCsv
from tests.faults.conftest import ACK_WAIT
from tests.faults.test_faults import DEADLINE, assert_exact, wait_progress, write_csv
from tests.stacks import stream_leader, wait_for_peers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2 * DEADLINE)]

ROWS = 20_000
# Clients, like the services, keep reconnecting (to any member) for as long as it takes.
RECONNECT = {"max_reconnect_attempts": -1, "reconnect_time_wait": 0.5}
STREAMS = [
    subjects.STREAM_REQUESTS,
    subjects.STREAM_TASKS,
    subjects.STREAM_RESULTS,
    subjects.STREAM_EVENTS,
    subjects.STREAM_RESULT_QUEUE,
    subjects.kv_stream(subjects.BUCKET_ACTIVE),
]


@dataclass
class ClusterStack:
    cluster: NatsCluster
    stack: LocalStack


@pytest.fixture
def cluster_stack() -> Iterator[ClusterStack]:
    root = Path(tempfile.mkdtemp(prefix="imagegen-cluster-"))
    credentials = NatsCredentials.generate()
    cluster = NatsCluster.start(root / "nats", config_text=credentials.server_config())
    postgres = PostgresServer.start(root / "pg")
    try:
        stack = LocalStack(
            root / "stack",
            renderers=2,
            nats_url=cluster.url,
            nats_credentials=credentials,
            database_url=postgres.create_database("imagegen"),
            extra_env={
                "IMAGEGEN_STREAM_REPLICAS": "3",
                "IMAGEGEN_ACK_WAIT_SECONDS": ACK_WAIT,
                "IMAGEGEN_LOG_FORMAT": "json",
                "IMAGEGEN_CSV_ALLOWED_DIR": str(root),
                "IMAGEGEN_PROGRESS_INTERVAL_SECONDS": "0.2",
            },
        )
        stack.start()
        try:
            yield ClusterStack(cluster, stack)
        finally:
            stack.stop()
    finally:
        cluster.stop(kill=True)
        postgres.stop(mode="immediate")
        if not os.environ.get("IMAGEGEN_KEEP_FAULT_STACK"):
            shutil.rmtree(root, ignore_errors=True)


async def submit_rows(client: Client, cs: ClusterStack, name: str) -> str:
    """Submit a ROWS-row CSV by server path (16 items per task); returns the job id."""
    write_csv(cs.stack.state_dir.parent, name, ROWS)
    accepted = await client.submit(SubmitCsv(path=name, column="name", batch_size=16))
    return accepted.job_id


async def items_done(client: Client, job_id: str) -> int:
    """How far the job is, asked through a retry: right after a server goes, a request may go
    unanswered for a few seconds."""
    job = await retrying(
        lambda: client.get_job(job_id), on=(ServiceUnavailable,), what="get_job", retry_for=60
    )
    return job.done


async def all_caught_up(cs: ClusterStack, admin: Client) -> None:
    """Every member healthy, and every stream held by all three, current."""
    await asyncio.to_thread(cs.cluster.wait_healthy)
    for stream in STREAMS:
        await wait_for_peers(admin.js, stream, 3)


async def finish_exactly(cs: ClusterStack, client: Client, waiting: asyncio.Task[JobEvent]) -> None:
    """The job a client has followed through the faults ends completed with exact counts;
    every service is still up and answering."""
    final = await waiting
    await assert_exact(client, final, ROWS)
    await wait_for_services(client.nc, {"ingest": 1, "renderer": 2, "result-notifier": 1}, timeout=30)
    for proc in cs.stack.processes:
        assert proc.process.poll() is None, f"{proc.name} exited"


async def test_kill_9_of_the_task_stream_leader_mid_job(cluster_stack: ClusterStack) -> None:
    cluster = cluster_stack.cluster
    async with (
        await cluster_stack.stack.client(**RECONNECT) as client,
        await cluster_stack.stack.client(ADMIN, **RECONNECT) as admin,
    ):
        job_id = await submit_rows(client, cluster_stack, "leader.csv")
        # The client follows the job from before the fault to its end, across servers.
        waiting = asyncio.create_task(client.wait(job_id, timeout=DEADLINE))
        await wait_progress(admin, job_id, 2000)
        leader_name = await stream_leader(admin.js, subjects.STREAM_TASKS)
        done = await items_done(admin, job_id)
        victim = cluster.member(leader_name)
        victim.stop(kill=True)
        print(f"killed {leader_name} (SIGKILL), the task stream's leader, at {done:,} items done")
        # The job finishes on the two survivors.
        await finish_exactly(cluster_stack, client, waiting)
        assert await stream_leader(admin.js, subjects.STREAM_TASKS) != leader_name
        # Back on its own store, the killed server catches up on every stream.
        await asyncio.to_thread(victim.start_again)
        await all_caught_up(cluster_stack, admin)


async def test_rolling_restart_of_all_three_servers_mid_job(cluster_stack: ClusterStack) -> None:
    async with (
        await cluster_stack.stack.client(**RECONNECT) as client,
        await cluster_stack.stack.client(ADMIN, **RECONNECT) as admin,
    ):
        job_id = await submit_rows(client, cluster_stack, "rolling.csv")
        waiting = asyncio.create_task(client.wait(job_id, timeout=DEADLINE))
        await wait_progress(admin, job_id, 2000)
        for server in cluster_stack.cluster.servers:
            # As an operator does it: one server at a time (SIGTERM, start on the same store),
            # the next once every member is healthy and every stream is on all three again.
            done = await items_done(admin, job_id)
            await asyncio.to_thread(server.restart)
            await all_caught_up(cluster_stack, admin)
            print(f"restarted {server.store_dir.name} at {done:,} items done")
        await finish_exactly(cluster_stack, client, waiting)
