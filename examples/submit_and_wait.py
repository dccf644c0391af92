"""Submit a CSV file with the Python client, follow the job, print where the images are.

Run it against a running stack (`imagegen status --env` prints its NATS URL and the client
identity's user and password as shell exports):

    eval "$(.venv/bin/imagegen status --env)"
    .venv/bin/python examples/submit_and_wait.py examples/products.csv --column name

What it does, in the order a program of yours would:

1. `Client.from_settings` - one NATS connection as the environment's identity; every call
   below goes over it.
2. `submit_file` - uploads the file into the `imagegen-inputs` object store and submits it;
   a bad request (no such column, an empty file, a bad colour) raises `BadRequest` whose
   `field` names what to fix, before any job exists.
3. `watch` - the job's lifecycle events, replayed from the first, until a terminal one
   (`completed`, `failed`, `cancelled`). Progress events carry done/failed/total.
4. `get_job` - the job's ledger row: counts, the output folder and the first failures.

The `completed` event names the manifest (`manifest.csv` beside the images: row, text, file,
width, height, status, error). Exit code: 0 when every row rendered, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from shared.client import Client
from shared.contract.errors import BadRequest
from shared.contract.messages import JobEvent
from shared.contract.style import Style
from shared.runtime.settings import Settings
from shared.sources.csv import SubmitCsv


async def main(csv_file: Path, column: str, nats_url: str, color: str) -> int:
    async with await Client.from_settings(Settings(nats_url=nats_url)) as client:
        try:
            accepted = await client.submit_file(
                csv_file, SubmitCsv(column=column, style=Style(size=40, color=color))
            )
        except BadRequest as exc:
            print(f"refused: {exc.message} (field {exc.field})", file=sys.stderr)
            return 2
        print(f"job {accepted.job_id} accepted")

        final: JobEvent | None = None
        async for event in client.watch(accepted.job_id):
            total = "?" if event.total is None else event.total
            print(f"  {event.kind:<10} {event.status:<22} {event.done}/{total} done, {event.failed} failed")
            final = event
        assert final is not None  # watch ends with the terminal event

        job = await client.get_job(accepted.job_id)
        print(f"job {job.job_id}: {job.status}, {job.done} rendered, {job.failed} failed")
        print(f"images:   {job.output}")
        print(f"manifest: {final.manifest}")
        for failure in job.failures:
            print(f"  item {failure.index}: {failure.reason}")
        return 0 if final.kind == "completed" and job.failed == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, nargs="?", default=Path(__file__).with_name("products.csv"))
    parser.add_argument("--column", default="name")
    parser.add_argument("--color", default="#1a1a2e")
    env = os.environ
    default_url = env.get("IMAGEGEN_NATS_URL") or env.get("NATS_URL") or "nats://127.0.0.1:4222"
    parser.add_argument("--nats-url", default=default_url)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.csv, args.column, args.nats_url, args.color)))
