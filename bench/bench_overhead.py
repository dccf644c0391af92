"""Where the service set's CPU goes beside the render child: per job and per row, by component.

One local stack with one renderer replica (in a temporary folder, on tmpfs when it has room) runs
jobs of several sizes, `--rows-per-size` rows of each size in all, submitted by server path from
one client connection and each waited for to its `completed` event, the sizes taken in turn for
`--rounds` rounds. Around each size's jobs it reads every stack process's CPU time as the
scheduler counts it (nanoseconds, `/proc/<pid>/task/*/schedstat`: far finer than the 10 ms ticks
of `/proc/<pid>/stat`, which bench_pipeline reads).

A least-squares line through (rows per job, CPU per job) for each component splits its CPU into a
cost per row (the slope: per item, and per full batch of `batch_size` rows) and a cost per job
(the intercept: starting and completing a job, and the small batches its first rows ramp up
through). The render child's own per-row cost is printed beside them, so each part reads as a
share of the rendering it serves. What a job of N rows costs beyond its rendering is then the
per-row sum plus the per-job sum over N.

Run: .venv/bin/python bench/bench_overhead.py [--sizes 200,2000,20000] [--rows-per-size 40000]
     [--rounds 2] [--env IMAGEGEN_X=...]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # its siblings, also when imported as bench.bench_overhead

import procs  # noqa: E402
from jobs import COLUMN, load_names, pick, write_csv  # noqa: E402
from statedir import bench_root, describe  # noqa: E402

from devstack.stack import LocalStack  # noqa: E402
from shared.sources.csv import SubmitCsv  # noqa: E402

CHILD = "renderer-child"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="200,2000,20000", help="rows per job, comma-separated")
    parser.add_argument("--rows-per-size", type=int, default=40_000, help="rows of each size per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra IMAGEGEN_* setting for the services (repeatable), e.g. IMAGEGEN_BATCH_SIZE=500",
    )
    args = parser.parse_args(argv)
    args.sizes = sorted({int(size) for size in args.sizes.split(",")})
    if len(args.sizes) < 2 or args.sizes[0] < 1:
        parser.error("--sizes needs two or more sizes of at least one row")
    return args


def run_ns(pid: int) -> int:
    """The CPU time of every live thread of `pid`, in nanoseconds (0 if it is gone)."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between the listing and the read
    return total


def cpu_by_component() -> dict[int, tuple[str, int]]:
    """Every stack process under this one: its component's name and its CPU nanoseconds."""
    return {pid: (proc.name, run_ns(pid)) for pid, proc in procs.snapshot().items()}


def spent_between(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]]) -> dict[str, int]:
    """Each component's CPU nanoseconds between the readings (a process started since counts
    from zero)."""
    spent: dict[str, int] = {}
    for pid, (name, ns) in after.items():
        spent[name] = spent.get(name, 0) + ns - before.get(pid, (name, 0))[1]
    return spent


async def run_jobs(stack: LocalStack, path: Path, rows: int, count: int, tag: str) -> None:
    """`count` jobs of the CSV at `path`, one after another from one client connection."""
    client = await stack.client()
    try:
        for n in range(count):
            accepted = await client.submit(SubmitCsv(path=str(path), column=COLUMN, job_id=f"{tag}-{n}"))
            final = await client.wait(accepted.job_id, timeout=120 + rows / 100)
            if final.kind != "completed" or final.done != rows:
                raise RuntimeError(
                    f"job {accepted.job_id} ended {final.kind} with {final.done} of {rows} rows"
                )
    finally:
        await client.close()


def fit(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The least-squares line through (x, y) points: (slope, intercept)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / var
    return slope, mean_y - slope * mean_x


def report(sizes: Sequence[int], per_job: dict[int, dict[str, float]]) -> None:
    """Print each component's CPU per job at each size and its split into per row and per job."""
    names = sorted(
        {name for spent in per_job.values() for name, ms in spent.items() if ms >= 0.05},
        key=lambda name: (name != CHILD, name),
    )
    print("\nCPU per job, ms (the render child apart), and each component's least-squares split:")
    print(
        f"{'component':<18}"
        + "".join(f"{f'{size:,} rows':>14}" for size in sizes)
        + "   per row, us   per job, ms"
    )
    lines: dict[str, tuple[float, float]] = {}
    for name in names:
        points = [(float(size), per_job[size].get(name, 0.0)) for size in sizes]
        slope, intercept = fit(points)
        lines[name] = (slope, intercept)
        cells = "".join(f"{ms:>14.1f}" for _, ms in points)
        print(f"{name:<18}{cells}   {1000 * slope:>11.2f}   {intercept:>11.1f}")
    child_us = 1000 * lines.get(CHILD, (0.0, 0.0))[0]
    rest = {name: line for name, line in lines.items() if name != CHILD}
    rest_us = 1000 * sum(slope for slope, _ in rest.values())
    rest_ms = sum(intercept for _, intercept in rest.values())
    print(f"\nthe rest of the service set: {rest_us:.2f} us per row and {rest_ms:.1f} ms per job")
    if child_us > 0:
        print(f"  per row, {rest_us / child_us:.1%} of the render child's {child_us:.1f} us")
        for size in sizes:
            beyond = rest_us + 1000 * rest_ms / size
            print(
                f"  a job of {size:,} rows: {beyond:.2f} us per row beyond rendering, {beyond / child_us:.1%}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = load_names()
    root = bench_root(2 * max(args.sizes))
    state = Path(tempfile.mkdtemp(prefix="imagegen-overhead-", dir=root))
    state.chmod(0o711)  # Postgres runs as its own user and must reach its data folder inside
    input_dir = state / "input"
    input_dir.mkdir()
    for size in args.sizes:
        write_csv(input_dir / f"{size}.csv", pick(names, 0, size))
    print(
        f"bench_overhead: jobs of {', '.join(f'{s:,}' for s in args.sizes)} rows, {args.rows_per_size:,} rows"
        f" of each a round, {args.rounds} round(s), one replica, state {state} ({describe(state)})",
        flush=True,
    )
    extra_env = {"IMAGEGEN_CSV_ALLOWED_DIR": str(input_dir)}
    extra_env.update({key: value for key, _, value in (pair.partition("=") for pair in args.env)})
    stack = LocalStack(state, renderers=1, extra_env=extra_env)
    spent: dict[int, dict[str, int]] = {size: {} for size in args.sizes}
    jobs = {size: 0 for size in args.sizes}
    try:
        stack.start()
        largest = args.sizes[-1]
        asyncio.run(run_jobs(stack, input_dir / f"{largest}.csv", largest, 1, "warmup"))  # warm caches
        for n in range(args.rounds):
            for size in args.sizes:
                count = max(1, args.rows_per_size // size)
                before, started = cpu_by_component(), time.monotonic()
                asyncio.run(run_jobs(stack, input_dir / f"{size}.csv", size, count, f"r{n}-{size}"))
                seconds = time.monotonic() - started
                for name, ns in spent_between(before, cpu_by_component()).items():
                    spent[size][name] = spent[size].get(name, 0) + ns
                jobs[size] += count
                print(f"round {n + 1}: {count} job(s) of {size:,} rows in {seconds:.1f} s", flush=True)
    finally:
        stack.stop()
        shutil.rmtree(state, ignore_errors=True)
    per_job = {size: {name: ns / 1e6 / jobs[size] for name, ns in spent[size].items()} for size in args.sizes}
    report(args.sizes, per_job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
