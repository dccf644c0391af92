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
The CPU seconds every process spent (user + system, from /proc) are the steadier figure: the
service set's CPU per row with one replica (renderer parent and render child, ingest,
result-notifier, nats-server, Postgres) against the one-process loop's. `--check` floors
(issue 15): that ratio <= 1.05 and pipe-2 / pipe-1 >= 1.7.

`--big-job ROWS` then runs one job of ROWS rows end to end (submit -> `completed`, the files
counted on disk, the manifest there) and prints its rate against the one-process loop timed
just before and after, and every process's CPU per row and peak RSS over the job.

Run: .venv/bin/python bench/bench_pipeline.py [--rows 20000] [--rounds 3] [--quick] [--check]
     [--big-job 1000000] [--big-replicas 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inprocess import Baseline, tasks_for  # noqa: E402
from jobs import Pipeline, big_job, load_names, pick, wait_renderers, write_csv  # noqa: E402
from procs import beside_child, parts_per_row  # noqa: E402
from statedir import bench_root, describe  # noqa: E402

from devstack.stack import LocalStack  # noqa: E402
from shared.runtime.settings import Settings  # noqa: E402

# The floors of `--check` (issue 15): the service set's CPU per row with one replica against the
# in-process loop's, and the rate of two replicas against one.
CPU_FLOOR = 1.05
SCALE_FLOOR = 1.7


# --- the run -------------------------------------------------------------------------------------


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000, help="rows per job (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="measurement rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4000 rows, 1 round")
    parser.add_argument("--check", action="store_true", help="exit 1 when a floor is missed")
    parser.add_argument(
        "--big-job",
        type=int,
        default=0,
        metavar="ROWS",
        help="after the rounds, one job of ROWS rows end to end (e.g. 1000000): rate, CPU, peak RSS",
    )
    parser.add_argument("--big-replicas", type=int, default=1, choices=(1, 2), help="renderers for --big-job")
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
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where to make the state folder (default: /dev/shm when it has room, else the temporary"
        " folder; see bench/statedir.py for why)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.rounds = 4000, 1
    if args.rows < 1 or args.rounds < 0 or (args.rounds == 0 and not args.big_job):
        parser.error("--rows must be positive, and --rounds too unless --big-job is given")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = load_names()
    texts = pick(names, 0, args.rows)
    # Every process warms up on the measured strings themselves: long-lived replicas and the
    # baseline processes then hold the same glyph caches, so the ratios compare steady states
    # (a replica spawned for the round would otherwise pay cold caches the others do not).
    warm = texts

    root = args.state_dir or bench_root(max(2 * args.rows, args.big_job))
    state = Path(tempfile.mkdtemp(prefix="imagegen-bench-", dir=root))
    state.chmod(0o711)  # Postgres runs as its own user and must reach its data folder inside
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
        f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}, state {state} ({describe(state)})",
        flush=True,
    )
    if args.env:
        print(f"service settings: {' '.join(args.env)}", flush=True)

    stack = LocalStack(state, renderers=1, extra_env=extra_env)
    baseline: Baseline | None = None
    rows_out: list[tuple[float, float, float, float]] = []
    base_cpu = {1: 0.0, 2: 0.0}
    big_ok = True
    missed: list[str] = []
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
        if args.rounds:
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
        if rows_out:
            missed = report_rounds(args, rows_out, base_cpu, pipeline, header)
        if args.big_job:
            big_ok = big_job(stack, baseline, names, args.big_job, args)
    except BaseException:
        args.keep = True  # the logs of what went wrong
        print(f"state and logs kept in {state}", flush=True)
        raise
    finally:
        if baseline:
            baseline.close()
        stack.stop()
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    if not big_ok:
        missed.append("the big job did not complete with every file on disk")
    if args.check and missed:
        print("\nfloors missed: " + "; ".join(missed))
        return 1
    return 0


def report_rounds(
    args: argparse.Namespace,
    rows_out: list[tuple[float, float, float, float]],
    base_cpu: dict[int, float],
    pipeline: Pipeline,
    header: str,
) -> list[str]:
    """Print the medians, the CPU per row of every component and the verdicts; returns the floors
    missed."""
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
    spread = ", ".join(f"{p2 / p1:.2f}" for _, _, p1, p2 in rows_out)
    print(f"\n1 replica vs in-process loop (p1/b1): median {r_one:.2f}")
    print(f"2 replicas vs 1 replica     (p2/p1): median {r_scale:.2f} (rounds: {spread})")
    print(
        f"2 replicas vs 2-process loop (p2/b2): median {r_two:.2f}  "
        f"(the 2-process loop itself is {r_base:.2f}x the 1-process loop: that is what the machine gave)"
    )
    base_rows = args.rows * len(rows_out)
    print("\nCPU per row (user + system of every process, whatever else the machine runs), ms:")
    per_row = {n: 1000 * base_cpu[n] / base_rows for n in (1, 2)}
    print(f"  in-process loop: 1 process {per_row[1]:.3f}, 2 processes {per_row[2]:.3f}")
    totals: dict[int, float] = {}
    for replicas in (1, 2):
        spent = pipeline.cpu[replicas]
        rows = pipeline.rows[replicas]
        parts = parts_per_row(spent, rows)
        totals[replicas] = 1000 * sum(spent.values()) / rows
        print(
            f"  service set, {replicas} replica(s): {totals[replicas]:.3f}"
            f" ({totals[replicas] / per_row[replicas]:.2f}x the loop) = {parts}"
            f"\n    {beside_child(spent)}"
        )
    print("\nclient messages to and from nats-server per 1,000 rows (counts: no drift with the load):")
    for replicas in (1, 2):
        counts = pipeline.traffic[replicas].per_thousand_rows(pipeline.rows[replicas])
        print(f"  {replicas} replica(s): {counts}")
    for replicas in (1, 2):
        spent, wall = pipeline.cpu[replicas], pipeline.seconds[replicas]
        print(
            f"  cores busy during the {replicas}-replica jobs: {sum(spent.values()) / wall:.2f}"
            f" (renderers {(spent.get('renderer', 0.0) + spent.get('renderer-child', 0.0)) / wall:.2f})"
        )
    # What the CPU figures predict for a machine whose cores are free: one replica is bound by its
    # render child (one process) or by the cores, two replicas by the cores.
    cores = os.cpu_count() or 1
    child = {n: 1000 * pipeline.cpu[n].get("renderer-child", 0.0) / pipeline.rows[n] for n in (1, 2)}
    free1 = 1000 / max(child[1], totals[1] / cores)
    free2 = 1000 / max(child[2] / 2, totals[2] / cores)
    print(
        f"  on {cores} free cores the CPU figures predict: 1 replica {free1:,.0f} rows/s,"
        f" 2 replicas {free2:,.0f} rows/s ({free2 / free1:.2f}x)"
    )
    cpu_ratio = totals[1] / per_row[1]
    missed = []
    verdicts = [
        (f"CPU per row, 1 replica: {cpu_ratio:.2f}x the loop's", cpu_ratio <= CPU_FLOOR, f"<= {CPU_FLOOR}"),
        (f"2 replicas vs 1 replica: {r_scale:.2f}x", r_scale >= SCALE_FLOOR, f">= {SCALE_FLOOR}"),
    ]
    print()
    for what, ok, floor in verdicts:
        print(f"floor {floor}: {what}: {'met' if ok else 'MISSED'}")
        if not ok:
            missed.append(f"{what} (floor {floor})")
    print(
        f"\nThis machine has {os.cpu_count()} core(s): the renderers share them with nats-server, Postgres,"
        " ingest and result-notifier (and the baseline has them to itself)."
    )
    return missed


if __name__ == "__main__":
    sys.exit(main())
