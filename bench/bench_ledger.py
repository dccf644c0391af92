"""The ledger's cost per batch result, in plain round trips measured in the same run.

result-notifier records every batch result with `Ledger.record_batch` (the batch counted exactly
once, completion checked: the first result of a job with its row locked in a transaction, the
later ones in one statement against the row as last seen; `shared/runtime/ledger/batches.py`).
On this VM a round trip to
Postgres costs the client far more CPU than the SQL costs the server, so the figure to steer by
is how many plain round trips (`SELECT 1` on the same connection, held: no pool in between, timed
in the same run) one recorded batch costs the client and the server. Starts a throwaway Postgres.

Run: .venv/bin/python bench/bench_ledger.py [--batches 400] [--rounds 3] [--items 512]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack.postgres import PostgresServer  # noqa: E402
from shared.contract.messages import BatchResult, ItemResult  # noqa: E402
from shared.runtime.ledger import Ledger  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (a Postgres backend), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def results(job_id: str, batches: int, items: int) -> list[BatchResult]:
    return [
        BatchResult(
            job_id=job_id,
            attempt=1,
            batch=batch,
            items=[
                ItemResult(index=batch * items + i, ok=True, row=batch * items + i + 2, file=f"{i}.png")
                for i in range(items)
            ],
            renderer="bench",
        )
        for batch in range(batches)
    ]


async def measure(backend: int, work: Callable[[int], Awaitable[object]], count: int) -> tuple[float, float]:
    """(client, server) CPU seconds per call of `work(0)` .. `work(count - 1)`."""
    server, client = cpu_seconds(backend), time.process_time()
    for n in range(count):
        await work(n)
    return (time.process_time() - client) / count, (cpu_seconds(backend) - server) / count


async def one_round(ledger: Ledger, backend: int, job_id: str, args: argparse.Namespace) -> str:
    await ledger.create_job(job_id, "csv", b'{"column": "x"}', "/out")
    await ledger.start_ingest(job_id, 1)
    await ledger.finish_ingest(job_id, 1, args.batches * args.items, args.batches)
    batch = results(job_id, args.batches, args.items)
    async with ledger.pool.acquire() as conn:  # held: one round trip a call, no pool in between
        # More of them than batches: Postgres's CPU is read in clock ticks (10 ms).
        trips = max(2000, 4 * args.batches)
        trip_client, trip_server = await measure(backend, lambda _: conn.fetchval("SELECT 1"), trips)
    client, server = await measure(backend, lambda n: ledger.record_batch(batch[n]), args.batches)
    job = await ledger.get_job(job_id)
    assert job.status == "completed" and job.done == args.batches * args.items, job
    return (
        f"a round trip {1e6 * trip_client:.0f} us client, {1e6 * trip_server:.0f} us server;"
        f" a batch {1e6 * client:.0f} us client ({client / trip_client:.1f} round trips),"
        f" {1e6 * server:.0f} us server ({server / max(trip_server, 1e-9):.1f} round trips);"
        f" per item {1e6 * (client + server) / args.items:.2f} us"
    )


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-ledger-") as tmp:
        server = PostgresServer.start(Path(tmp) / "data")
        try:
            ledger = await Ledger.open(server.url, max_size=1)  # one connection: one backend to read
            async with ledger.pool.acquire() as conn:
                backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
            print(f"bench_ledger: {args.batches} batches of {args.items} items x {args.rounds} rounds")
            for n in range(1, args.rounds + 1):
                print(f"  round {n}: {await one_round(ledger, backend, f'bench-{n}', args)}")
            await ledger.close()
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=400, help="batch results per round (default 400)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--items", type=int, default=512, help="items per batch (default 512)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
