"""What a service receives is checked even when a peer allowed to send it sends it: results that
do not fit their job are refused and logged, tasks of jobs that are not active at that attempt
are not rendered, and job control on an unknown job changes nothing.

Forged messages are sent as the identity allowed to send them (a renderer's results, ingest's
tasks): the NATS permissions would stop anyone else (tests/security/test_nats_permissions.py).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.js.errors import KeyNotFoundError

from devstack.stack import LocalStack
from shared.client import Client
from shared.contract import subjects
from shared.contract.codec import encode_json, encode_msgpack
from shared.contract.errors import NotFound
from shared.contract.messages import BatchResult, IngestRequest, ItemResult, RenderItem, RenderTask
from shared.contract.style import Style
from shared.runtime.bus.permissions import ADMIN, INGEST, RENDERER
from shared.runtime.ledger import Ledger
from shared.sources.csv import SubmitCsv
from shared.workflow.active import ActiveJobs
from tests.waiting import consumer_settled, eventually, log_entries, logged


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(database_url, retry_for=10)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def as_renderer(stack: LocalStack) -> AsyncIterator[Client]:
    async with await stack.client(RENDERER) as renderer:
        yield renderer


@pytest.fixture
async def as_admin(stack: LocalStack) -> AsyncIterator[Client]:
    async with await stack.client(ADMIN) as admin:
        yield admin


async def arranged_job(ledger: Ledger, *, items: int | None, batches: int | None) -> str:
    """A job as ingest leaves it: started, with its totals once known (None: still streaming)."""
    job_id = f"forged-{secrets.token_hex(4)}"
    await ledger.create_job(job_id, "csv", b'{"column": "name"}', None)
    await ledger.start_ingest(job_id, 1)
    if items is not None and batches is not None:
        await ledger.finish_ingest(job_id, 1, total_items=items, total_batches=batches)
    return job_id


def result(job_id: str, batch: int, indices: list[int], attempt: int = 1) -> BatchResult:
    items = [ItemResult(index=i, ok=True, file=f"{i}.png") for i in indices]
    return BatchResult(job_id=job_id, attempt=attempt, batch=batch, items=items, renderer="forger")


# --- results -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("totals", "forged", "reason"),
    [
        ((4, 2), {"batch": 2, "indices": [0]}, "batch 2 was never issued"),
        ((4, 2), {"batch": 0, "indices": [0], "attempt": 2}, "attempt 2 is not the job's current attempt 1"),
        ((4, 2), {"batch": 1, "indices": [3, 4]}, "outside the job's 4 items"),
        ((2, 2), {"batch": 1, "indices": [0, 1, 1]}, "twice"),
        ((None, None), {"batch": -1, "indices": [0]}, "batch -1 was never issued"),
    ],
)
async def test_a_result_that_does_not_fit_its_job_is_refused_and_logged(
    stack: LocalStack,
    ledger: Ledger,
    as_renderer: Client,
    totals: tuple[int | None, int | None],
    forged: dict[str, Any],
    reason: str,
) -> None:
    job_id = await arranged_job(ledger, items=totals[0], batches=totals[1])
    await as_renderer.js.publish(subjects.results_subject(job_id), encode_json(result(job_id, **forged)))
    entry = await logged(stack, "result-notifier", "result.refused", job_id)
    assert reason in entry["reason"] and entry["renderer"] == "forger"
    job = await ledger.get_job(job_id)
    assert (job.done, job.failed) == (0, 0)


async def test_counts_beyond_the_total_are_refused(
    stack: LocalStack, ledger: Ledger, as_renderer: Client
) -> None:
    job_id = await arranged_job(ledger, items=3, batches=3)
    subject = subjects.results_subject(job_id)
    await as_renderer.js.publish(subject, encode_json(result(job_id, 0, [0, 1])))
    await as_renderer.js.publish(subject, encode_json(result(job_id, 1, [1, 2])))  # 4 of 3
    entry = await logged(stack, "result-notifier", "result.refused", job_id)
    assert "4 counted, beyond the job's 3" in entry["reason"]
    job = await ledger.get_job(job_id)
    assert (job.status, job.done) == ("rendering", 2)


async def test_a_result_for_an_unknown_job_or_on_another_jobs_subject_is_refused(
    stack: LocalStack, ledger: Ledger, as_renderer: Client
) -> None:
    ghost = f"ghost-{secrets.token_hex(4)}"
    await as_renderer.js.publish(subjects.results_subject(ghost), encode_json(result(ghost, 0, [0])))
    assert (await logged(stack, "result-notifier", "result.refused", ghost))["reason"] == "no such job"

    victim = await arranged_job(ledger, items=1, batches=1)
    elsewhere = subjects.results_subject(f"other-{secrets.token_hex(4)}")
    await as_renderer.js.publish(elsewhere, encode_json(result(victim, 0, [0])))
    entry = await logged(stack, "result-notifier", "result.refused", victim)
    assert entry["reason"] == f"published on {elsewhere}, not its job's subject"
    assert (await ledger.get_job(victim)).status == "rendering"  # not completed by the forgery


async def test_refused_results_are_terminated_not_redelivered(
    stack: LocalStack, ledger: Ledger, as_renderer: Client, as_admin: Client
) -> None:
    job_id = await arranged_job(ledger, items=1, batches=1)
    await as_renderer.js.publish(subjects.results_subject(job_id), encode_json(result(job_id, 5, [0])))
    await logged(stack, "result-notifier", "result.refused", job_id)
    # Settled: the refused result is acknowledged or terminated, not waiting for a redelivery.
    await consumer_settled(as_admin.js, subjects.STREAM_RESULT_QUEUE, subjects.CONSUMER_NOTIFIER)
    assert (
        len([e for e in log_entries(stack, "result-notifier", "result.refused") if e["job_id"] == job_id])
        == 1
    )


# --- tasks -------------------------------------------------------------------------------------


def task(job_id: str, attempt: int, name: str) -> bytes:
    items = [RenderItem(0, "伪造 forged", name)]
    return encode_msgpack(RenderTask(job_id=job_id, attempt=attempt, batch=7, items=items, style=Style()))


async def results_on(admin: Client, job_id: str) -> int:
    subject = subjects.results_subject(job_id)
    info = await admin.js.stream_info(subjects.STREAM_RESULTS, subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)


async def test_a_task_of_an_unknown_or_finished_job_is_not_rendered(
    stack: LocalStack, client: Client, as_admin: Client
) -> None:
    finished = await client.submit(SubmitCsv(csv="name\ndone\n", column="name"))
    await client.wait(finished.job_id, timeout=60)
    before = await results_on(as_admin, finished.job_id)
    ghost = f"ghost-{secrets.token_hex(4)}"
    async with await stack.client(INGEST) as ingest:
        await ingest.js.publish(subjects.tasks_subject(ghost), task(ghost, 1, "ghost"))
        await ingest.js.publish(subjects.tasks_subject(finished.job_id), task(finished.job_id, 1, "forged"))
    for job_id in (ghost, finished.job_id):
        entry = await logged(stack, "renderer", "task.skipped", job_id)
        assert entry["reason"] == "the job is not active at this attempt"
    assert await results_on(as_admin, ghost) == 0
    assert await results_on(as_admin, finished.job_id) == before
    assert not (stack.output_dir / ghost).exists()
    assert not (stack.output_dir / finished.job_id / "forged.png").exists()


async def test_a_task_of_another_attempt_is_not_rendered_and_one_of_the_current_is(
    stack: LocalStack, as_admin: Client
) -> None:
    job_id = f"attempts-{secrets.token_hex(4)}"
    await ActiveJobs(as_admin.js).start(job_id, 2)  # as a retry leaves it
    async with await stack.client(INGEST) as ingest:
        await ingest.js.publish(subjects.tasks_subject(job_id), task(job_id, 1, "stale"))
        entry = await logged(stack, "renderer", "task.skipped", job_id)
        assert entry["attempt"] == 1
        assert await results_on(as_admin, job_id) == 0
        # The control: the same task at the current attempt is rendered.
        await ingest.js.publish(subjects.tasks_subject(job_id), task(job_id, 2, "current"))

    async def rendered() -> int:
        return await results_on(as_admin, job_id)

    await eventually(rendered, "the current attempt's task rendered")
    assert (Path(stack.output_dir) / job_id / "current.png").is_file()
    assert not (Path(stack.output_dir) / job_id / "stale.png").exists()
    await ActiveJobs(as_admin.js).end(job_id)


# --- job control and requests ------------------------------------------------------------------


async def test_cancelling_an_unknown_job_is_404_and_writes_nothing(client: Client, as_admin: Client) -> None:
    ghost = f"ghost-{secrets.token_hex(4)}"
    with pytest.raises(NotFound) as info:
        await client.cancel_job(ghost)
    assert info.value.code == 404 and info.value.field == "job_id"
    for bucket in (subjects.BUCKET_CANCELLED, subjects.BUCKET_ACTIVE):
        kv = await as_admin.js.key_value(bucket)
        with pytest.raises(KeyNotFoundError):
            await kv.get(ghost)


async def test_a_request_for_a_job_the_ledger_does_not_hold_runs_nothing(
    stack: LocalStack, as_admin: Client
) -> None:
    ghost = f"ghost-{secrets.token_hex(4)}"
    async with await stack.client(INGEST) as ingest:
        request = IngestRequest(job_id=ghost, attempt=1, source="csv")
        await ingest.js.publish(subjects.requests_subject("csv"), encode_json(request))
    await logged(stack, "ingest", "ingest.skipped", ghost)
    tasks = subjects.tasks_subject(ghost)
    info = await as_admin.js.stream_info(subjects.STREAM_TASKS, subjects_filter=tasks)
    assert (info.state.subjects or {}).get(tasks, 0) == 0
