"""The manifest lines spooled as results are counted: used only when they are exactly the rows
the ledger counts, and then the same manifest as the one read back from the stream."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from shared.contract.messages import BatchResult, JobInfo
from shared.workflow.manifest import Spool, build_manifest
from shared.workflow.recorded import RecordedRuns
from tests.shared.workflow.test_manifest import item, one_attempt, result

ROOT = Path(__file__).resolve().parents[3]


def job(total: int | None, *, done: int, failed: int, incomplete: int = 0, attempt: int = 1) -> JobInfo:
    return JobInfo(
        job_id="j", source="csv", status="completed", attempt=attempt, total=total, done=done,
        failed=failed, output=None, error=None, created_at=datetime.now(UTC), incomplete=incomplete,
    )  # fmt: skip


def counted(results: list[BatchResult]) -> JobInfo:
    """The ledger row of a job that counted `results` (one attempt)."""
    items = [one for r in results for one in r.items]
    failed = sum(not one.ok for one in items)
    incomplete = sum(one.ok and bool(one.missing_glyphs) for one in items)
    return job(len(items), done=len(items) - failed, failed=failed, incomplete=incomplete)


def read_back(results: list[BatchResult]) -> bytes:
    async def read() -> AsyncGenerator[BatchResult, None]:
        for one in results:
            yield one

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.csv"
        asyncio.run(build_manifest(read, 1, path, Path(tmp)))
        return path.read_bytes()


def test_a_spool_of_every_counted_result_holds_the_job_and_writes_the_read_back_manifest(
    tmp_path: Path,
) -> None:
    results = one_attempt(500, 37, seed=7)  # failed, incomplete and tricky cells, out of order
    runs = RecordedRuns()
    for one in results:
        runs.add(one)
    spool = runs.take("j")
    assert spool is not None and runs.take("j") is None
    assert spool.holds(counted(results))
    assert spool.write_csv(tmp_path / "m.csv") is not None
    assert (tmp_path / "m.csv").read_bytes() == read_back(results)
    spool.close()
    assert not spool.path.exists()
    runs.close()


def test_a_spool_that_is_not_exactly_the_ledger_s_rows_is_not_used(tmp_path: Path) -> None:
    results = one_attempt(100, 10, seed=1)
    whole = counted(results)

    def spool_of(parts: list[BatchResult]) -> Spool:
        spool = Spool(tmp_path / "s.csv")
        for one in parts:
            assert spool.add(one)
        return spool

    assert spool_of(results).holds(whole)
    # A result counted elsewhere (another replica, before a restart): a row short.
    assert not spool_of(results[1:]).holds(whole)
    # Counts that differ from the ledger's, one way or another.
    assert not spool_of(results).holds(
        msgspec.structs.replace(whole, failed=whole.failed + 1, done=whole.done - 1)
    )
    assert not spool_of(results).holds(msgspec.structs.replace(whole, incomplete=whole.incomplete + 1))
    assert not spool_of(results).holds(msgspec.structs.replace(whole, total=None))
    # A later attempt merges attempts: only the stream has them all.
    assert not spool_of(results).holds(msgspec.structs.replace(whole, attempt=2))
    # Indexes outside the job, though the counts add up.
    shifted = [result(r.batch, [item(i.index + 1) for i in r.items]) for r in one_attempt(10, 5, seed=2)]
    assert not spool_of(shifted).holds(job(10, done=10, failed=0))


def test_runs_spool_only_first_attempts_and_give_up_on_a_result_they_cannot_hold() -> None:
    runs = RecordedRuns()
    runs.add(result(0, [item(0, attempt=2)], attempt=2))
    assert runs.take("j") is None  # a retry is not spooled
    runs.add(result(0, [item(0), item(1)]))
    runs.add(result(0, [item(0), item(1)]))  # the same batch again (a replacement, a duplicate)
    runs.add(result(1, [item(2)]))
    assert runs.take("j") is None  # from then on the job's manifest comes from the stream
    runs.close()


def test_runs_keep_at_most_their_limit_and_drop_on_request() -> None:
    runs = RecordedRuns(most=2)
    for name in ("a", "b", "c"):
        runs.add(msgspec.structs.replace(result(0, [item(0)]), job_id=name))
    assert len(runs) == 2 and runs.take("a") is None  # the least recently added to went first
    runs.drop("b")
    assert runs.take("b") is None
    kept = runs.take("c")
    assert kept is not None and kept.holds(job(1, done=1, failed=0))
    kept.close()
    runs.close()


def test_a_spool_nothing_was_added_to_for_its_idle_time_goes_at_the_next_add() -> None:
    """A job that ingest completed or the watchdog failed never comes back here: its spool (a
    file) must not wait for 64 newer jobs."""
    now = [0.0]
    runs = RecordedRuns(idle_seconds=600, clock=lambda: now[0])
    runs.add(msgspec.structs.replace(result(0, [item(0)]), job_id="finished-elsewhere"))
    runs.add(msgspec.structs.replace(result(0, [item(0)]), job_id="running"))
    files = sorted(Path(runs._folder.name).iterdir())
    assert len(runs) == 2 and len(files) == 2
    now[0] = 400.0
    runs.add(msgspec.structs.replace(result(1, [item(1)]), job_id="running"))  # still going
    now[0] = 700.0
    runs.add(msgspec.structs.replace(result(0, [item(0)]), job_id="next-job"))
    assert runs.take("finished-elsewhere") is None  # idle for 700 s: gone, its file too
    assert not files[0].exists()
    kept = runs.take("running")  # added to 300 s ago: kept, and whole
    assert kept is not None and kept.holds(job(2, done=2, failed=0))
    kept.close()
    runs.close()


def test_a_spool_that_cannot_be_written_is_given_up_without_raising() -> None:
    """A full disk (here a file size limit: writes past 4 KiB fail with EFBIG) costs the job
    its shortcut, not the result: nothing raises, and the manifest comes from the stream."""
    script = textwrap.dedent(
        """
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        from shared.workflow.recorded import RecordedRuns
        from tests.shared.workflow.test_manifest import one_attempt
        runs = RecordedRuns()
        for one in sorted(one_attempt(2000, 100, seed=1), key=lambda r: r.batch):
            runs.add(one)
        print("spooled" if runs.take("j") is not None else "from the stream")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == "from the stream", out
    assert "manifest.spool_failed" in out.stdout + out.stderr
