"""Bytes, not counts, bound every message: rows that make tasks or results larger than NATS
carries, cells no message or Postgres can hold, and a server with a small `max_payload` all end
with the job finished, exact counts, the bad rows failed alone with their reasons, and the next
job completing as usual."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from shared.client import Client
from shared.contract.errors import TooLarge
from shared.contract.style import Style
from shared.sources.csv import SubmitCsv
from tests.faults.conftest import FaultStack
from tests.faults.test_faults import DEADLINE, results_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2 * DEADLINE)]

# Small glyphs wrapped at a width: a 4,000-character row renders as a modest image.
SMALL = Style(size=8, max_width=1600)


async def run_job(client: Client, root: Path, csv_text: str, **options: object) -> tuple[str, int, int]:
    """Run a job on `csv_text`, read by server path (a file of any size)."""
    path = root / f"job-{len(list(root.glob('job-*.csv')))}.csv"
    path.write_text(csv_text, "utf-8")
    submit = SubmitCsv(path=path.name, column="name", style=SMALL, **options)  # type: ignore[arg-type]
    accepted = await client.submit(submit)
    final = await client.wait(accepted.job_id, timeout=DEADLINE)
    assert final.kind in ("completed", "failed"), final
    return accepted.job_id, final.done, final.failed


async def assert_counted_once(client: Client, job_id: str, rows: int) -> list[int]:
    """Every item reported exactly once; returns the number of items of each result message."""
    results = await results_of(client, job_id, rows)
    counts = collections.Counter(item.index for r in results for item in r.items)
    assert sorted(counts) == list(range(rows)) and set(counts.values()) == {1}
    return [len(r.items) for r in results]


async def normal_job_completes(client: Client, root: Path) -> None:
    _, done, failed = await run_job(client, root, "name\n" + "".join(f"之后 {i}\n" for i in range(40)))
    assert (done, failed) == (40, 0)


async def test_wide_cjk_rows_and_control_character_rows_complete(fault_stack: FaultStack) -> None:
    """300 rows of 4,000 CJK characters are a 3.6 MB job (over 1 MiB in one task of 128); rows of
    control characters make a result six times its task. Both complete, split by bytes."""
    cjk = "name\n" + "".join(f"{i:03d}" + "汉字测试" * 1000 + "\n" for i in range(300))
    controls = "name\n" + "".join("\x01\x02\x03\x1f" * 750 + f"控制 {i}\n" for i in range(300))
    root = fault_stack.stack.state_dir.parent
    async with await fault_stack.stack.client() as client:
        for csv_text in (cjk, controls):
            job_id, done, failed = await run_job(client, root, csv_text, batch_size=128)
            assert (done, failed) == (300, 0)
            sizes = await assert_counted_once(client, job_id, 300)
            print(f"300 rows in {len(sizes)} results of at most {max(sizes)} items")
            assert len(sizes) > 3, sizes  # far fewer than 128 items fit a message
        await normal_job_completes(client, root)


@pytest.mark.nats_config("max_payload: 65536")
async def test_a_small_max_payload_splits_tasks_and_fails_only_rows_no_message_carries(
    fault_stack: FaultStack, tmp_path: Path
) -> None:
    """With a 64 KiB `max_payload`, 1,000-character rows travel a few to a message, a row no
    message can carry fails alone with the reason, a NUL cell in an upload read as UTF-8 fails
    alone naming what it is, and every other row renders."""
    rows = ["汉字" * 500 + f" {i}" for i in range(120)]
    rows[17] = "大" * 12_000  # 36 KB of text: its result could not fit a 64 KiB message
    rows[64] = "before\x00after"
    upload = tmp_path / "nul.csv"
    upload.write_bytes(("name\n" + "\n".join(rows) + "\n").encode("utf-8"))
    async with await fault_stack.stack.client() as client:
        accepted = await client.submit_file(upload, SubmitCsv(column="name", encoding="utf-8", style=SMALL))
        final = await client.wait(accepted.job_id, timeout=DEADLINE)
        assert (final.status, final.total, final.done, final.failed) == ("completed_with_errors", 120, 118, 2)
        sizes = await assert_counted_once(client, accepted.job_id, 120)
        assert max(sizes) < 16, sizes  # the byte budget, not batch_size, cut the tasks
        job = await client.get_job(accepted.job_id)
        reasons = {f.index: f.reason for f in job.failures}
        assert set(reasons) == {17, 64}
        assert "too large to send" in reasons[17] and "max_payload" in reasons[17]
        assert "NUL" in reasons[64] and "U+0000" in reasons[64] and "position 7" in reasons[64]
        assert {f.row for f in job.failures} == {19, 66}  # the rows named, header included
        # A request the server would not carry is refused before it is sent, with the sizes.
        with pytest.raises(TooLarge) as refused:
            await client.submit(SubmitCsv(csv="name\n" + "x" * 100_000 + "\n", column="name"))
        assert refused.value.code == 413 and "max_payload" in refused.value.message
        await normal_job_completes(client, fault_stack.stack.state_dir.parent)
    for proc in fault_stack.stack.processes:
        assert proc.process.poll() is None, f"{proc.name} exited"


async def test_huge_database_cells_and_file_lines_keep_ingest_within_its_limit(
    fault_stack: FaultStack,
) -> None:
    """Eight 100 MB database cells and five 20 MB CSV lines: each such row fails alone with the
    reason, the rest render, and ingest stays far below its 512 MiB container limit (it once
    reached 821 MB on the same query)."""
    from shared.sources.db import SubmitDb
    from tests.stacks import peak_rss_mb

    stack = fault_stack.stack
    root = stack.state_dir.parent
    ingest = next(p for p in stack.processes if p.name == "ingest")
    query = """SELECT CASE WHEN i <= 8 THEN repeat('x', 100000000) ELSE '行 ' || i END AS name
                 FROM generate_series(1, 50) AS i ORDER BY i"""
    with (root / "long-lines.csv").open("w", encoding="utf-8") as out:
        out.write("name\n")
        for i in range(50):
            out.write(("y" * (20 * 1024 * 1024) if i % 10 == 3 else f"行 {i}") + "\n")
    async with await stack.client() as client:
        db_job = await client.submit(SubmitDb(data_source="local", query=query, column="name", style=SMALL))
        csv_job = await client.submit(SubmitCsv(path="long-lines.csv", column="name", style=SMALL))
        for accepted, failed_rows, words in (
            (db_job, set(range(1, 9)), "IMAGEGEN_MAX_ROW_BYTES"),
            (csv_job, {5, 15, 25, 35, 45}, "not read"),
        ):
            final = await client.wait(accepted.job_id, timeout=DEADLINE)
            assert (final.status, final.total, final.failed) == (
                "completed_with_errors",
                50,
                len(failed_rows),
            )
            job = await client.get_job(accepted.job_id)
            assert {f.row for f in job.failures} == failed_rows
            assert all(words in f.reason for f in job.failures), job.failures
        await normal_job_completes(client, root)
    assert ingest.process.poll() is None
    peak = peak_rss_mb(ingest.process.pid)
    print(f"ingest peak RSS: {peak:.0f} MiB")
    assert peak < 300, peak
