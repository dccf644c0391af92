"""End-to-end pipeline benchmark: the service set's rows per second beside an in-process loop.

One local stack (nats-server, Postgres, ingest, result-notifier, renderers) in a
temporary state folder. Every round measures, back to back on the same machine:

  base-1   the renderer's own render code in one process, one thread: `BatchRenderer` (the same
           `RenderEngine`, the default `Style`, the same strings, PNG encode included) over
           batches of `--batch-size` items, each image written to disk by the renderer's own
           `DirectoryStore.write_many` (temporary file, then rename into the job folder)
  base-2   the same loop in two processes, each taking every other batch (the fair ceiling on a
           two-core machine)
  pipe-1   the service set with one renderer replica: a CSV of `--rows` rows submitted by server
           path (`SubmitCsv(path=...)`), timed from the submit request to the `completed` event
  pipe-2   the same with two renderer replicas (a second replica is spawned for it and stopped
           after)

Ratios are taken within a round (the machine is noisy); the median over rounds is the headline.
Targets (issue 2): pipe-1 / base-1 >= 0.8, pipe-2 / pipe-1 >= 1.6; pipe-2 / base-2 is reported
too. Services, nats-server and Postgres share the same cores as the renderers, so the CPU
seconds each component spent during the pipeline runs are shown as well.

Run: .venv/bin/python bench/bench_pipeline.py [--rows 20000] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack.stack import LocalStack  # noqa: E402
from services.renderer.batch import BatchRenderer  # noqa: E402
from shared.contract.messages import RenderItem, RenderTask  # noqa: E402
from shared.render import FontCatalogue, RenderEngine, Style  # noqa: E402
from shared.runtime.bus.permissions import CLIENT  # noqa: E402
from shared.runtime.settings import Settings  # noqa: E402
from shared.sources.csv import SubmitCsv  # noqa: E402
from shared.storage import DirectoryStore  # noqa: E402

DATA = ROOT / "bench" / "data" / "streets.csv"
COLUMN = "name"
TARGET_ONE = 0.8
TARGET_SCALE = 1.6


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


# --- the in-process baseline --------------------------------------------------------------------


def tasks_for(texts: Sequence[str], batch_size: int, job_id: str) -> list[RenderTask]:
    style = Style()
    items = [RenderItem(i, text, str(i + 2), row=i + 2) for i, text in enumerate(texts)]
    return [
        RenderTask(job_id=job_id, attempt=1, batch=n, items=items[at : at + batch_size], style=style)
        for n, at in enumerate(range(0, len(items), batch_size))
    ]


def render_and_write(engine: RenderEngine, tasks: Sequence[RenderTask], out: Path) -> int:
    """What a replica's render child does with its tasks, minus the messaging: the renderer's own
    `BatchRenderer`, which writes with `DirectoryStore.write_many` (temporary file, then rename)."""
    renderer = BatchRenderer(engine, DirectoryStore(out))
    return sum(sum(item.ok for item in renderer.render(task).items) for task in tasks)


def baseline_worker(conn: Connection) -> None:
    """A long-lived baseline process: builds its engine once, then renders what it is sent.

    Messages: ("run", tasks, out_dir, start_at) -> (written, started, finished, cpu_seconds),
    times in `time.monotonic()` seconds (one clock for every process on the machine); ("stop",).
    """
    engine = RenderEngine(FontCatalogue.load([]))
    conn.send("ready")
    while True:
        message = conn.recv()
        if message[0] == "stop":
            return
        _, tasks, out_dir, start_at = message
        while (left := start_at - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
        started, cpu = time.monotonic(), time.process_time()
        written = render_and_write(engine, tasks, Path(out_dir))
        conn.send((written, started, time.monotonic(), time.process_time() - cpu))


class Baseline:
    """Two warm baseline processes (spawned, so nothing is inherited from this one)."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for _ in range(2):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=baseline_worker, args=(child,), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        for conn in self.conns:
            if conn.recv() != "ready":
                raise RuntimeError("baseline worker failed to start")

    def run(self, tasks: Sequence[RenderTask], out: Path, processes: int) -> tuple[int, float, float]:
        """Render `tasks` with 1 or 2 processes (every other batch each):
        (written, wall seconds, CPU seconds)."""
        start_at = time.monotonic() + 0.2
        for n in range(processes):
            self.conns[n].send(("run", list(tasks[n::processes]), str(out), start_at))
        replies = [self.conns[n].recv() for n in range(processes)]
        written = sum(r[0] for r in replies)
        wall = max(r[2] for r in replies) - min(r[1] for r in replies)
        return written, wall, sum(r[3] for r in replies)

    def close(self) -> None:
        for conn, proc in zip(self.conns, self.procs, strict=True):
            with contextlib.suppress(OSError):
                conn.send(("stop",))
            proc.join(10)
            if proc.is_alive():
                proc.kill()


# --- CPU accounting from /proc ------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _component(pid: int) -> str | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    line = b" ".join(argv).decode(errors="replace")
    if "nats-server" in line:
        return "nats-server"
    if line.startswith("postgres") or "/postgres " in line or "bin/postgres" in line:
        return "postgres"
    if "services." in line:
        module = next(a for a in argv if a.startswith(b"services.")).decode()
        return module.removeprefix("services.").replace("_", "-")
    return None


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of every descendant that belongs to the stack, by pid."""
    children = _children_map()
    todo: list[tuple[int, str | None]] = [(pid, None) for pid in children.get(os.getpid(), [])]
    out: dict[int, tuple[str, float]] = {}
    while todo:
        pid, inherited = todo.pop()
        # A renderer's render child (a multiprocessing spawn) counts as the renderer.
        name = _component(pid) or inherited
        todo.extend((child, name) for child in children.get(pid, []))
        if name is None:
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (name, (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def cpu_delta(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], into: dict[str, float]
) -> None:
    for pid, (name, seconds) in after.items():
        into[name] = into.get(name, 0.0) + seconds - before.get(pid, (name, 0.0))[1]


# --- the pipeline -------------------------------------------------------------------------------


async def run_job(stack: LocalStack, path: str, rows: int, job_id: str) -> tuple[float, int, int]:
    """Submit one CSV by server path and wait for its completed event: (seconds, done, failed)."""
    client = await stack.client()
    try:
        started = time.monotonic()
        accepted = await client.submit(SubmitCsv(path=path, column=COLUMN, job_id=job_id))
        final = await client.wait(accepted.job_id, timeout=120 + rows / 100)
        elapsed = time.monotonic() - started
    finally:
        await client.close()
    if final.kind != "completed":
        raise RuntimeError(f"job {job_id} ended {final.kind}: {final.message}")
    return elapsed, final.done, final.failed


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

    def job(self, csv_name: str, rows: int, job_id: str, replicas: int, *, measured: bool = True) -> float:
        before = cpu_snapshot()
        elapsed, done, failed = asyncio.run(run_job(self.stack, csv_name, rows, job_id))
        if measured:
            cpu_delta(before, cpu_snapshot(), self.cpu[replicas])
            self.seconds[replicas] += elapsed
            self.rows[replicas] += rows
        if done != rows or failed:
            raise RuntimeError(f"job {job_id}: {done} done, {failed} failed, expected {rows} done")
        shutil.rmtree(self.stack.output_dir / job_id, ignore_errors=True)
        return elapsed


# --- the run -------------------------------------------------------------------------------------


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000, help="rows per job (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="measurement rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4000 rows, 1 round")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=Settings().batch_size,
        help=f"items per task and per baseline batch (default: the service default, {Settings().batch_size})",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra IMAGEGEN_* setting for the services (repeatable), e.g. IMAGEGEN_RENDERER_PREFETCH=8",
    )
    parser.add_argument("--keep", action="store_true", help="keep the state folder (logs) afterwards")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.rounds = 4000, 1
    if args.rows < 1 or args.rounds < 1:
        parser.error("--rows and --rounds must be positive")

    names = load_names()
    texts = pick(names, 0, args.rows)
    # Every process warms up on the measured strings themselves: long-lived replicas and the
    # baseline processes then hold the same glyph caches, so the ratios compare steady states
    # (a replica spawned for the round would otherwise pay cold caches the others do not).
    warm = texts

    state = Path(tempfile.mkdtemp(prefix="imagegen-bench-"))
    input_dir = state / "input"
    input_dir.mkdir()
    write_csv(input_dir / "bench.csv", texts)
    write_csv(input_dir / "warmup.csv", warm)
    extra_env = {"IMAGEGEN_CSV_ALLOWED_DIR": str(input_dir), "IMAGEGEN_BATCH_SIZE": str(args.batch_size)}
    for pair in args.env:
        key, _, value = pair.partition("=")
        extra_env[key] = value

    print(
        f"bench_pipeline: {args.rows:,} rows x {args.rounds} round(s), batch {args.batch_size}, "
        f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}, state {state}",
        flush=True,
    )
    if args.env:
        print(f"service settings: {' '.join(args.env)}", flush=True)

    stack = LocalStack(state, renderers=1, extra_env=extra_env)
    baseline: Baseline | None = None
    rows_out: list[tuple[float, float, float, float]] = []
    base_cpu = {1: 0.0, 2: 0.0}
    try:
        stack.start()
        baseline = Baseline()
        base_out = state / "baseline"
        warm_tasks = tasks_for(warm, args.batch_size, "warmup")  # the measured strings
        baseline.run(warm_tasks, base_out / "warm", 2)
        baseline.run(warm_tasks, base_out / "warm", 2)
        shutil.rmtree(base_out, ignore_errors=True)
        tasks = tasks_for(texts, args.batch_size, "baseline")

        pipeline = Pipeline(stack, input_dir)
        pipeline.job("warmup.csv", args.rows, "warmup-1", 1, measured=False)

        header = (
            f"{'round':>5} {'base-1':>8} {'base-2':>8} {'pipe-1':>8} {'pipe-2':>8}"
            f"   {'p1/b1':>6} {'p2/p1':>6} {'p2/b2':>6}"
        )
        print("\nrows per second (ratios within the round)")
        print(header)
        for n in range(1, args.rounds + 1):
            written, seconds, cpu = baseline.run(tasks, base_out / f"r{n}-1", 1)
            assert written == args.rows, written
            base1 = args.rows / seconds
            base_cpu[1] += cpu
            written, seconds, cpu = baseline.run(tasks, base_out / f"r{n}-2", 2)
            assert written == args.rows, written
            base2 = args.rows / seconds
            base_cpu[2] += cpu
            shutil.rmtree(base_out, ignore_errors=True)

            pipe1 = args.rows / pipeline.job("bench.csv", args.rows, f"bench-r{n}-1", 1)

            second = stack.spawn("renderer")
            try:
                asyncio.run(wait_renderers(stack, 2))
                pipeline.job("warmup.csv", args.rows, f"warmup-r{n}-2", 2, measured=False)
                pipe2 = args.rows / pipeline.job("bench.csv", args.rows, f"bench-r{n}-2", 2)
            finally:
                second.stop()
                stack.processes.remove(second)
            asyncio.run(wait_renderers(stack, 1))

            rows_out.append((base1, base2, pipe1, pipe2))
            print(
                f"{n:>5} {fmt_rate(base1):>8} {fmt_rate(base2):>8} {fmt_rate(pipe1):>8} {fmt_rate(pipe2):>8}"
                f"   {pipe1 / base1:>6.2f} {pipe2 / pipe1:>6.2f} {pipe2 / base2:>6.2f}",
                flush=True,
            )
    finally:
        if baseline:
            baseline.close()
        stack.stop()
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)

    med = [statistics.median(col) for col in zip(*rows_out, strict=True)]
    r_one = statistics.median(p1 / b1 for b1, _, p1, _ in rows_out)
    r_scale = statistics.median(p2 / p1 for _, _, p1, p2 in rows_out)
    r_two = statistics.median(p2 / b2 for _, b2, _, p2 in rows_out)
    r_base = statistics.median(b2 / b1 for b1, b2, _, _ in rows_out)
    print("-" * len(header))
    print(
        f"{'med':>5} {fmt_rate(med[0]):>8} {fmt_rate(med[1]):>8} {fmt_rate(med[2]):>8} {fmt_rate(med[3]):>8}"
        f"   {r_one:>6.2f} {r_scale:>6.2f} {r_two:>6.2f}"
    )

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print(
        f"\n1 replica vs in-process loop (p1/b1): median {r_one:.2f}  target >= {TARGET_ONE}: "
        f"{verdict(r_one >= TARGET_ONE)}"
    )
    print(
        f"2 replicas vs 1 replica     (p2/p1): median {r_scale:.2f}  target >= {TARGET_SCALE}: "
        f"{verdict(r_scale >= TARGET_SCALE)}"
    )
    print(
        f"2 replicas vs 2-process loop (p2/b2): median {r_two:.2f}  "
        f"(the 2-process loop itself is {r_base:.2f}x the 1-process loop: that is the machine's ceiling)"
    )
    base_rows = args.rows * len(rows_out)
    print("\nCPU cost per row (does not depend on how busy the machine is), milliseconds:")
    per_row = {n: 1000 * base_cpu[n] / base_rows for n in (1, 2)}
    print(f"  in-process loop: 1 process {per_row[1]:.3f}, 2 processes {per_row[2]:.3f}")
    for replicas in (1, 2):
        spent = pipeline.cpu[replicas]
        rows = pipeline.rows[replicas]
        ranked = sorted(spent.items(), key=lambda kv: -kv[1])
        parts = "  ".join(f"{name} {1000 * secs / rows:.3f}" for name, secs in ranked if secs > 0)
        total = 1000 * sum(spent.values()) / rows
        print(f"  pipeline, {replicas} replica(s): total {total:.3f} = {parts}")
    for replicas in (1, 2):
        spent, wall = pipeline.cpu[replicas], pipeline.seconds[replicas]
        print(
            f"  cores busy during the {replicas}-replica jobs: {sum(spent.values()) / wall:.2f}"
            f" (renderers {spent.get('renderer', 0.0) / wall:.2f})"
        )
    print(
        f"\nThis machine has {os.cpu_count()} core(s): the renderers share them with nats-server, Postgres,"
        " ingest and result-notifier (and the baseline has them to itself)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
