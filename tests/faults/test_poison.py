"""No message can wedge a job or stop a service: a result the ledger cannot hold, a task whose
renderer dies on every delivery, a job that stops making progress. Each ends the job with the
reason and exact counts, the services stay up, and the next job completes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
import pytest

from shared.client import Client
from shared.contract.codec import encode_json
from shared.contract.messages import BatchResult, IngestRequest, ItemResult, JobInfo
from shared.contract.subjects import new_job_id, requests_subject, results_subject
from shared.runtime.bus.discovery import wait_for_services
from shared.runtime.bus.permissions import ADMIN, RENDERER
from shared.runtime.ledger import Ledger
from shared.sources.csv import SubmitCsv
from tests.faults.conftest import FaultStack
from tests.faults.test_faults import DEADLINE, assert_exact
from tests.services.ingest.csv.helpers import read_manifest
from tests.waiting import eventually, log_entries

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2 * DEADLINE)]


async def wait_status(client: Client, job_id: str, status: str) -> JobInfo:
    async def reached() -> JobInfo | None:
        job = await client.get_job(job_id)
        return job if job.status == status else None

    return await eventually(reached, f"{job_id} is {status}")


async def a_normal_job_completes(client: Client, rows: int = 30) -> None:
    csv_text = "name\n" + "".join(f"之后 {i}\n" for i in range(rows))
    accepted = await client.submit(SubmitCsv(csv=csv_text, column="name"))
    await assert_exact(client, await client.wait(accepted.job_id, timeout=DEADLINE), rows)


def assert_all_running(fault_stack: FaultStack, *, but: str = "") -> None:
    for proc in fault_stack.stack.processes:
        if proc.name != but:
            assert proc.process.poll() is None, f"{proc.name} exited"


@contextlib.asynccontextmanager
async def renderers_restarted(fault_stack: FaultStack) -> AsyncIterator[list[int]]:
    """Keep one renderer running, starting a new one whenever the last has died (what
    Kubernetes does for a killed pod); yields the exit codes of those that died."""
    stack, died = fault_stack.stack, []

    async def keep() -> None:
        while True:
            live = [p for p in stack.processes if p.name == "renderer" and p.process.poll() is None]
            if not live:
                died.append(
                    next(p for p in reversed(stack.processes) if p.name == "renderer").process.returncode
                )
                stack.spawn("renderer")
            await asyncio.sleep(0.3)

    task = asyncio.create_task(keep())
    try:
        yield died
    finally:
        task.cancel()


@pytest.mark.renderers(0)
async def test_a_result_postgres_cannot_hold_fails_its_batch_and_nothing_else(
    fault_stack: FaultStack,
) -> None:
    """A result with a NUL in a text the ledger stores (`invalid byte sequence for encoding
    "UTF8": 0x00` on every delivery) is retried, then its items are recorded as failed with the
    reason; the job completes with errors and result-notifier keeps running."""
    stack = fault_stack.stack
    rows, size = 20, 5
    async with await stack.client() as client, await stack.connect_as(RENDERER) as renderer:
        csv_text = "name\n" + "".join(f"行 {i}\n" for i in range(rows))
        accepted = await client.submit(SubmitCsv(csv=csv_text, column="name", batch_size=size))
        job_id = accepted.job_id
        await wait_status(client, job_id, "rendering")  # tasks queued, totals known, no renderer
        # The results a renderer would publish; in batch 2 one item's text holds a NUL that no
        # font covers (so it is incomplete, and its text and missing characters are stored).
        for batch in range(rows // size):
            items = [
                ItemResult(index=i, ok=True, row=i + 2, file=f"{i + 2}.png", width=8, height=8, bytes=99)
                for i in range(batch * size, (batch + 1) * size)
            ]
            if batch == 2:
                items[1] = msgspec.structs.replace(items[1], text="坏\x00行", missing_glyphs=["\x00"])
            result = BatchResult(job_id=job_id, attempt=1, batch=batch, items=items, renderer="forged")
            await renderer.publish(
                results_subject(job_id),
                msgspec.json.encode(result),
                headers={"Nats-Msg-Id": f"{job_id}:1:{batch}"},
            )
        await renderer.flush()
        final = await client.wait(job_id, timeout=DEADLINE)
        assert (final.status, final.total, final.done, final.failed) == ("completed_with_errors", 20, 15, 5)
        job = await client.get_job(job_id)
        assert sorted(f.index for f in job.failures) == list(range(10, 15))
        for failure in job.failures:
            assert failure.reason.startswith("the result could not be recorded: gave up after 5 attempts")
            assert 'invalid byte sequence for encoding "UTF8": 0x00' in failure.reason
        # The manifest says what the ledger counted: that batch's rows failed, the rest ok.
        manifest = read_manifest(final)
        assert sorted(manifest) == list(range(2, rows + 2))
        assert [r for r, line in manifest.items() if line["status"] == "failed"] == list(range(12, 17))
        assert "0x00" in manifest[13]["error"] and manifest[13]["text"] == "坏行"  # the NUL left out
        stack.spawn("renderer")  # the job's own tasks are skipped: it has ended
        await a_normal_job_completes(client)
    assert_all_running(fault_stack)
    gave_up = log_entries(stack, "result-notifier", "message.gave_up")
    assert [(entry["kind"], entry["delivery"]) for entry in gave_up] == [("result", 5)]


@pytest.mark.renderers(1)
@pytest.mark.stack_env({"IMAGEGEN_FAULT_INJECTION": "1", "IMAGEGEN_MAX_DELIVER": "3"})
async def test_a_task_whose_renderer_dies_on_every_delivery_fails_via_the_advisory(
    fault_stack: FaultStack,
) -> None:
    """The replica holding a task is killed on each of its `max_deliver` deliveries (as the OOM
    killer would): the server's MAX_DELIVERIES advisory makes result-notifier record the task's
    items as failed, and the task leaves the work queue."""
    from services.renderer.worker import FAULT_KILL_REPLICA

    stack = fault_stack.stack
    rows = [f"正常 {i}" for i in range(10)]
    rows[4] = FAULT_KILL_REPLICA
    async with await stack.client() as client, renderers_restarted(fault_stack) as died:
        csv_text = "name\n" + "\n".join(rows) + "\n"
        accepted = await client.submit(SubmitCsv(csv=csv_text, column="name", batch_size=10))
        final = await client.wait(accepted.job_id, timeout=DEADLINE)
        assert (final.status, final.total, final.done, final.failed) == ("completed_with_errors", 10, 0, 10)
        job = await client.get_job(accepted.job_id)
        assert sorted(f.index for f in job.failures) == list(range(10))
        for failure in job.failures:
            assert "delivered 3 times" in failure.reason and "MAX_DELIVERIES" in failure.reason
        assert died == [-9, -9, -9]  # one replica per delivery
        async with await stack.client(ADMIN) as admin:
            tasks = await admin.js.stream_info("IMAGEGEN_TASKS")
            advisories = await admin.js.stream_info("IMAGEGEN_ADVISORIES")
        assert (tasks.state.messages, advisories.state.messages) == (0, 0)  # deleted, consumed
        await a_normal_job_completes(client)
    assert_all_running(fault_stack, but="renderer")


STALL = 10


@pytest.mark.renderers(0)
@pytest.mark.stack_env({"IMAGEGEN_JOB_STALL_SECONDS": str(STALL)})
async def test_a_job_without_progress_is_failed_by_the_watchdog(fault_stack: FaultStack) -> None:
    """No renderer runs, so nothing moves the job: after the stall bound the watchdog fails it
    with the reason; resumed once a renderer is up, it completes with every item once."""
    stack = fault_stack.stack
    rows = 40
    async with await stack.client() as client:
        csv_text = "name\n" + "".join(f"停滞 {i}\n" for i in range(rows))
        accepted = await client.submit(SubmitCsv(csv=csv_text, column="name", batch_size=8))
        # The watchdog looks every STALL/4 s: the job is failed within STALL * 1.25 of its last
        # change (a generous bound here: this is liveness, the machine may be slow).
        final = await client.wait(accepted.job_id, timeout=STALL * 6)
        assert (final.kind, final.status, final.done, final.failed) == ("failed", "failed", 0, 0)
        assert final.message == f"no progress for {STALL} s while rendering (IMAGEGEN_JOB_STALL_SECONDS)"
        job = await client.get_job(accepted.job_id)
        assert job.started_at and job.finished_at
        assert (job.finished_at - job.started_at).total_seconds() >= STALL  # never before the bound
        stack.spawn("renderer")
        await wait_for_services(client.nc, {"renderer": 1}, timeout=60)
        resumed = await client.retry_job(accepted.job_id)  # a failed job resumes
        assert resumed.attempt == 2
        await assert_exact(client, await client.wait(accepted.job_id, timeout=DEADLINE, attempt=2), rows)
        await a_normal_job_completes(client)
    assert_all_running(fault_stack)


@pytest.mark.stack_env({"IMAGEGEN_MAX_DELIVER": "2"})
async def test_a_request_no_ingest_survives_fails_its_job_via_the_advisory(fault_stack: FaultStack) -> None:
    """An accepted job's request is taken twice by an ingest that dies holding it (here: a
    consumer that never acks, then vanishes): the advisory fails the job with the reason and the
    request leaves the queue; a restarted ingest serves the next job."""
    stack = fault_stack.stack
    ingest = next(p for p in stack.processes if p.name == "ingest")
    assert ingest.stop() == 0
    ledger = await Ledger.open(stack.database_url)
    try:
        job_id = new_job_id()
        await ledger.create_job(job_id, "csv", encode_json(SubmitCsv(csv="name\nx\n", column="name")), None)
    finally:
        await ledger.close()
    async with await stack.client() as client, await stack.client(ADMIN) as admin:
        await admin.js.publish(
            requests_subject("csv"), encode_json(IngestRequest(job_id=job_id, attempt=1, source="csv"))
        )
        dying = await admin.js.pull_subscribe_bind(durable="ingest-csv", stream="IMAGEGEN_REQUESTS")
        for delivery in (1, 2):
            [msg] = await dying.fetch(1, timeout=30)  # redelivered once ack_wait has passed
            assert msg.metadata.num_delivered == delivery
        await dying.unsubscribe()
        # The server announces MAX_DELIVERIES when it would deliver the message again, so when
        # someone pulls: the restarted ingest (as Kubernetes restarts a crashed pod).
        stack.spawn("ingest")
        final = await client.wait(job_id, timeout=DEADLINE)
        assert (final.kind, final.status) == ("failed", "failed")
        assert final.message and "ingest request was delivered 2 times" in final.message
        # The request is deleted once its failure is recorded (just after the `failed` event).

        async def requests_empty() -> bool:
            return (await admin.js.stream_info("IMAGEGEN_REQUESTS")).state.messages == 0

        await eventually(requests_empty, "the dead request deleted from IMAGEGEN_REQUESTS")
        await wait_for_services(client.nc, {"ingest": 1}, timeout=60)
        await a_normal_job_completes(client)
    assert_all_running(fault_stack, but="ingest")


@pytest.mark.renderers(1)
@pytest.mark.stack_env({"IMAGEGEN_OUTPUT_STORE": "object", "IMAGEGEN_MAX_DELIVER": "2"})
async def test_a_task_that_raises_on_every_delivery_ends_as_failed_items(fault_stack: FaultStack) -> None:
    """The image bucket is gone (an operator deleted it): storing a batch raises on each
    delivery, so after its attempts the task's items are recorded as failed with the reason and
    the replica stays up; with the bucket back, the next job completes."""
    stack = fault_stack.stack
    async with await stack.client() as client, await stack.client(ADMIN) as admin:
        await admin.js.delete_object_store("imagegen-images")
        csv_text = "name\n" + "".join(f"无桶 {i}\n" for i in range(10))
        accepted = await client.submit(SubmitCsv(csv=csv_text, column="name", batch_size=10))
        final = await client.wait(accepted.job_id, timeout=DEADLINE)
        assert (final.status, final.total, final.done, final.failed) == ("completed_with_errors", 10, 0, 10)
        job = await client.get_job(accepted.job_id)
        assert sorted(f.index for f in job.failures) == list(range(10))
        for failure in job.failures:
            assert failure.reason.startswith("gave up after 2 attempts: "), failure.reason
        tasks = await admin.js.consumer_info("IMAGEGEN_TASKS", "renderer")
        assert (tasks.num_pending, tasks.num_ack_pending) == (0, 0)
        await asyncio.to_thread(stack.declare_topology)  # `imagegen nats setup` brings it back
        rows = 30
        csv_text = "name\n" + "".join(f"之后 {i}\n" for i in range(rows))
        after = await client.submit(SubmitCsv(csv=csv_text, column="name"))
        final = await client.wait(after.job_id, timeout=DEADLINE)
        assert (final.status, final.done, final.failed) == ("completed", rows, 0)
    assert_all_running(fault_stack)
