"""The job manifest through the services: one row per item, also after retries and duplicates."""

from __future__ import annotations

import contextlib
from pathlib import Path

import msgspec

from devstack.stack import LocalStack
from shared.client import Client
from shared.contract.messages import BatchResult
from shared.contract.style import Style
from shared.runtime.bus.permissions import ADMIN, RENDERER
from shared.sources.csv import SubmitCsv
from shared.storage import DirectoryStore
from shared.workflow.manifest import write_manifest
from shared.workflow.manifest_lines import safe_cell
from tests.conftest import DATA
from tests.services.ingest.csv.helpers import read_manifest, run_file
from tests.waiting import log_entries, logged


async def test_manifest_after_a_retry_has_each_row_once_with_its_latest_outcome(client: Client) -> None:
    first, job = await run_file(client, DATA / "csv" / "long_cells.csv", SubmitCsv(column="name"))
    assert (first.kind, job.failed) == ("completed", 1)
    retried = await client.retry_job(job.job_id)
    assert retried.attempt == 2
    final = await client.wait(job.job_id, attempt=2, timeout=60)
    assert (final.kind, final.attempt) == ("completed", 2)
    manifest = read_manifest(final)
    assert sorted(manifest) == [2, 3, 4]
    assert [manifest[r]["status"] for r in (2, 3, 4)] == ["ok", "failed", "ok"]
    assert "limit is 5000" in manifest[3]["error"]
    assert manifest[2]["file"] == "2.png" and int(manifest[2]["width"]) > 0


async def test_manifest_is_in_row_order_across_interleaved_batches_and_a_retry(client: Client) -> None:
    # Every seventh row is too wide for the fixed canvas and fails; the retry re-renders those
    # last, after every other result, and the manifest still lists rows in the file's order.
    texts = ["x" * 40 if i % 7 == 0 else f"r{i}" for i in range(240)]
    request = SubmitCsv(
        csv="name\n" + "".join(f"{t}\n" for t in texts),
        column="name",
        batch_size=8,
        style=Style(width=200, height=80),
    )
    accepted = await client.submit(request)
    first = await client.wait(accepted.job_id, timeout=90)
    failing = {i + 2 for i in range(240) if i % 7 == 0}
    assert (first.kind, first.failed) == ("completed", len(failing))
    retried = await client.retry_job(accepted.job_id)
    final = await client.wait(accepted.job_id, attempt=retried.attempt, timeout=90)
    manifest = read_manifest(final)  # asserts the order
    assert sorted(manifest) == list(range(2, 242))
    assert {row for row, line in manifest.items() if line["status"] == "failed"} == failing


async def test_a_duplicated_result_does_not_duplicate_manifest_rows(
    client: Client, stack: LocalStack
) -> None:
    accepted = await client.submit(SubmitCsv(csv="name\none\ntwo\n", column="name"))
    final = await client.wait(accepted.job_id, timeout=60)
    assert sorted(read_manifest(final)) == [2, 3]
    async with contextlib.aclosing(client.results(accepted.job_id)) as results:
        result = await anext(results)
    assert isinstance(result, BatchResult)
    # The same batch again without a message id: the notifier sees a second delivery of a
    # completed job, completes it again (idempotently) and rewrites the manifest. Published as
    # a renderer: a client may not publish results.
    written = log_entries(stack, "result-notifier", "manifest.written")
    before = len([e for e in written if e["job_id"] == accepted.job_id])  # ingest may have written it
    async with await stack.client(RENDERER) as renderer:
        await renderer.nc.publish(f"imagegen.results.{accepted.job_id}", msgspec.json.encode(result))
    # The step under test is the rewrite: wait until it happened, then read what it wrote.
    rewrite = await logged(stack, "result-notifier", "manifest.written", accepted.job_id, count=before + 1)
    assert rewrite["rows"] == 2, rewrite
    assert sorted(read_manifest(final)) == [2, 3]


async def test_a_first_attempt_manifest_comes_from_the_counted_results_as_the_stream_has_it(
    client: Client, stack: LocalStack, tmp_path: Path
) -> None:
    # Plain rows (joined directly), cells the csv module quotes or a spreadsheet would run, a
    # carriage return, and rows too long to render (failed), over many small batches.
    texts = [
        "x" * 6000
        if i % 50 == 0
        else ("=1+1", 'a "b", c', "cr\rhere", f"东华门街道 {i}")[i % 4]
        if i % 9 == 0
        else f"row {i}"
        for i in range(240)
    ]
    body = "name\n" + "".join('"' + t.replace('"', '""') + '"\n' for t in texts)
    accepted = await client.submit(SubmitCsv(csv=body, column="name", batch_size=8))
    final = await client.wait(accepted.job_id, timeout=90)
    assert final.kind == "completed" and final.failed == 5, final
    written = await logged(stack, "result-notifier", "manifest.written", accepted.job_id)
    assert written["built"] == "recorded", written  # the results stream was not read back
    manifest = read_manifest(final)
    assert [manifest[i + 2]["text"] for i in range(240)] == [safe_cell(t) for t in texts]

    # The same job's manifest read back from the results stream, as before: the same bytes.
    job = await client.get_job(accepted.job_id)
    async with await stack.client(ADMIN) as admin:
        summary = await write_manifest(admin.js, job, DirectoryStore(tmp_path))
    assert summary.built == "spooled"
    assert Path(summary.location).read_bytes() == Path(final.manifest or "").read_bytes()
