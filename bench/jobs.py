"""The service set's side of bench_pipeline: the street-name data, one job submitted and waited
for, CPU accounting over jobs, and `--big-job`: one job of many rows end to end."""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import procs
import traffic
from inprocess import Baseline, tasks_for

from devstack.stack import LocalStack
from shared.contract.subjects import CONSUMER_RENDERER, STREAM_RESULT_QUEUE, STREAM_TASKS, tasks_subject
from shared.runtime.bus.permissions import ADMIN, CLIENT
from shared.sources.csv import SubmitCsv

DATA = Path(__file__).resolve().parent / "data" / "streets.csv"
COLUMN = "name"


# --- data -------------------------------------------------------------------------------------


def load_names() -> list[str]:
    with DATA.open(encoding="utf-8", newline="") as handle:
        return [row[COLUMN] for row in csv.DictReader(handle) if row[COLUMN].strip()]


def pick(names: Sequence[str], start: int, count: int) -> list[str]:
    """`count` names from `start` on, wrapping around the file when it is shorter."""
    return [names[(start + i) % len(names)] for i in range(count)]


def write_csv(path: Path, texts: Sequence[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([COLUMN])
        writer.writerows([t] for t in texts)


# --- the pipeline -------------------------------------------------------------------------------


async def run_job(stack: LocalStack, path: str, rows: int, job_id: str) -> tuple[float, int, int]:
    """Submit one CSV by server path and wait for its completed event: (seconds, done, failed)."""
    client = await stack.client()
    try:
        started = time.monotonic()
        accepted = await client.submit(SubmitCsv(path=path, column=COLUMN, job_id=job_id))
        try:
            final = await client.wait(accepted.job_id, timeout=120 + rows / 100)
        except TimeoutError:
            raise RuntimeError(f"job {job_id} did not complete: {await stalled(stack, job_id)}") from None
        elapsed = time.monotonic() - started
    finally:
        await client.close()
    if final.kind != "completed":
        raise RuntimeError(f"job {job_id} ended {final.kind}: {final.message}")
    return elapsed, final.done, final.failed


async def stalled(stack: LocalStack, job_id: str) -> str:
    """What a job that never completed left behind: its ledger row, the task queue and the
    renderers' consumer, the results waiting for the notifier (the stack's logs are kept)."""
    nc = await stack.connect_as(ADMIN, name="bench-pipeline")
    try:
        js = nc.jetstream()
        client = await stack.client()
        try:
            job = await client.get_job(job_id)
        finally:
            await client.close()
        tasks = await js.stream_info(STREAM_TASKS, subjects_filter=tasks_subject(job_id))
        renderers = await js.consumer_info(STREAM_TASKS, CONSUMER_RENDERER)
        queue = await js.stream_info(STREAM_RESULT_QUEUE)
        return (
            f"ledger {job.status} done {job.done} failed {job.failed} of {job.total};"
            f" its queued tasks {tasks.state.subjects}; renderers' consumer pending"
            f" {renderers.num_pending}, unacked {renderers.num_ack_pending}, waiting pulls"
            f" {renderers.num_waiting}; results for the notifier {queue.state.messages}"
        )
    finally:
        await nc.close()


async def wait_renderers(stack: LocalStack, count: int) -> None:
    from shared.runtime.bus.discovery import wait_for_services

    nc = await stack.connect_as(CLIENT, name="bench-pipeline")
    try:
        await wait_for_services(nc, {"renderer": count}, timeout=60)
        # wait_for_services wants "at least"; after a stop, also wait until the count is exact.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        from shared.runtime.bus.discovery import ping_all

        while loop.time() < deadline:
            if sum(r.get("name") == "renderer" for r in await ping_all(nc, name="renderer")) == count:
                return
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


class Pipeline:
    def __init__(self, stack: LocalStack, input_dir: Path) -> None:
        self.stack = stack
        self.input_dir = input_dir
        self.cpu: dict[int, dict[str, float]] = {1: {}, 2: {}}
        self.seconds: dict[int, float] = {1: 0.0, 2: 0.0}
        self.rows: dict[int, int] = {1: 0, 2: 0}
        self.traffic: dict[int, traffic.Traffic] = {1: traffic.Traffic(), 2: traffic.Traffic()}

    def job(self, csv_name: str, rows: int, job_id: str, replicas: int, *, measured: bool = True) -> float:
        before = procs.snapshot()
        said = self.said()
        elapsed, done, failed = asyncio.run(run_job(self.stack, csv_name, rows, job_id))
        if measured:
            procs.cpu_delta(before, procs.snapshot(), self.cpu[replicas])
            self.traffic[replicas].add(said, self.said())
            self.seconds[replicas] += elapsed
            self.rows[replicas] += rows
        if done != rows or failed:
            raise RuntimeError(f"job {job_id}: {done} done, {failed} failed, expected {rows} done")
        shutil.rmtree(self.stack.output_dir / job_id, ignore_errors=True)
        return elapsed

    def said(self) -> traffic.Traffic:
        """The message counts so far (none when the stack's NATS is not its own to monitor)."""
        port = self.stack.nats.monitor_port if self.stack.nats else 0
        return traffic.snapshot(port) if port else traffic.Traffic()


# --- one big job ---------------------------------------------------------------------------------


def count_images(folder: Path) -> int:
    with os.scandir(folder) as entries:
        return sum(1 for e in entries if e.name.endswith(".png") and not e.name.startswith("."))


def big_job(
    stack: LocalStack, baseline: Baseline, names: Sequence[str], rows: int, args: argparse.Namespace
) -> bool:
    """One job of `rows` rows end to end (submit -> `completed`, every file on disk), its rate
    against the in-process loop timed on `--rows` of the same strings just before and after, and
    every stack process's CPU per row and peak RSS over the job. True if every file is there."""
    input_dir = stack.state_dir / "input"
    write_csv(input_dir / "big.csv", pick(names, 0, rows))
    sample = tasks_for(pick(names, 0, args.rows), args.batch_size, "loop")
    out = stack.state_dir / "baseline"

    def loop() -> tuple[float, float]:
        """The one-process loop over the sample: (rows/s, CPU ms per row)."""
        written, seconds, cpu = baseline.run(sample, out, 1)
        shutil.rmtree(out, ignore_errors=True)
        return written / seconds, 1000 * cpu / written

    before_loop = loop()
    print(f"\nbig job: {rows:,} rows, {args.big_replicas} renderer(s)", flush=True)
    extra = [stack.spawn("renderer") for _ in range(args.big_replicas - 1)]
    try:
        asyncio.run(wait_renderers(stack, args.big_replicas))
        pipeline = Pipeline(stack, input_dir)
        before, said = procs.snapshot(), pipeline.said()
        procs.reset_peaks(before)
        elapsed, done, failed = asyncio.run(run_job(stack, "big.csv", rows, "big-job"))
        after = procs.snapshot()
        messages = traffic.Traffic()
        messages.add(said, pipeline.said())
    finally:
        for proc in extra:
            proc.stop()
            stack.processes.remove(proc)
    folder = stack.output_dir / "big-job"
    on_disk = count_images(folder)
    manifest = (folder / "manifest.csv").is_file()
    rate = rows / elapsed
    print(
        f"  submit -> completed: {elapsed:,.1f} s, {rate:,.0f} rows/s; {done:,} done, {failed:,} failed;"
        f" {on_disk:,} images on disk, manifest {'written' if manifest else 'MISSING'}"
    )
    spent: dict[str, float] = {}
    procs.cpu_delta(before, after, spent)
    per_row = 1000 * sum(spent.values()) / rows
    print(
        f"  CPU per row {per_row:.3f} ms = {procs.parts_per_row(spent, rows)}"
        + f"\n  {procs.beside_child(spent)}"
        + f"\n  client messages per 1,000 rows: {messages.per_thousand_rows(rows)}"
    )
    print(
        "  peak RSS during the job (VmHWM, MiB): "
        + "  ".join(
            f"{proc.name}[{proc.pid}] {proc.peak_kib / 1024:,.0f}"
            for proc in sorted(after.values(), key=lambda p: (p.name, p.pid))
            if proc.peak_kib
        ),
        flush=True,
    )
    after_loop = loop()
    low, high = sorted((before_loop[0], after_loop[0]))
    cpu_low, cpu_high = sorted((before_loop[1], after_loop[1]))
    print(
        f"  in-process loop (1 process, {args.rows:,} of the same rows, before/after the job): "
        f"{before_loop[0]:,.0f} / {after_loop[0]:,.0f} rows/s, {before_loop[1]:.3f} / {after_loop[1]:.3f}"
        f" CPU ms per row -> the job ran at {rate / high:.2f}-{rate / low:.2f} of the loop's rate with"
        f" {args.big_replicas} renderer(s), {per_row / cpu_high:.2f}-{per_row / cpu_low:.2f}x its CPU/row",
        flush=True,
    )
    shutil.rmtree(folder, ignore_errors=True)  # a million files take minutes to delete
    return done == rows and not failed and on_disk == rows and manifest
