"""Helpers for the CSV end-to-end tests: submit a file, wait, read its manifest."""

from __future__ import annotations

import csv
from pathlib import Path

from shared.client import Client
from shared.contract.messages import JobEvent, JobInfo
from shared.sources.csv import SubmitCsv


async def run_file(client: Client, path: Path, request: SubmitCsv) -> tuple[JobEvent, JobInfo]:
    """Upload `path`, submit it as the user would, wait for the end; (final event, job)."""
    accepted = await client.submit_file(path, request)
    final = await client.wait(accepted.job_id, timeout=90)
    job = await client.get_job(accepted.job_id, failures_limit=1000)
    return final, job


def read_manifest(final: JobEvent) -> dict[int, dict[str, str]]:
    """The manifest the completed event names, by the file's row number; each row appears once,
    in the source's order."""
    assert final.manifest, f"the completed event names no manifest: {final}"
    path = Path(final.manifest)
    assert final.output and path.parent == Path(final.output), (path, final.output)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_row = {int(row["row"]): row for row in rows}
    assert len(by_row) == len(rows), "a row appears twice in the manifest"
    assert list(by_row) == sorted(by_row), "the manifest is not in the source's row order"
    return by_row
