"""The render child alone against the in-process loop: what the child's pipe and codec cost.

A renderer replica hands each task to its render child as the bytes that arrived and reads back
the outcome (`services/renderer/worker.py`). This feeds a `RenderWorker` the same encoded tasks,
nothing else running, and times the child's CPU (from /proc) beside the loop of bench_pipeline
(`inprocess.py`) on the same strings, round after round. Equal figures mean the child adds
nothing of its own: what the service set costs beyond the loop is the rest of it.

Run: .venv/bin/python bench/bench_child.py [--rows 20000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inprocess import Baseline, tasks_for  # noqa: E402
from jobs import load_names, pick  # noqa: E402
from statedir import bench_root, describe  # noqa: E402

from services.renderer.worker import RenderWorker  # noqa: E402
from shared.contract.codec import encode_msgpack  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()
    names = pick(load_names(), 0, args.rows)
    out = Path(tempfile.mkdtemp(prefix="imagegen-bench-child-", dir=bench_root(2 * args.rows)))
    print(f"files in {out} ({describe(out)})")
    baseline = Baseline()
    worker = RenderWorker(font_dirs=[], output_dir=out / "child")
    worker.start()
    try:
        warm = tasks_for(names, args.batch_size, "warm")  # both render every string once first
        baseline.run(warm, out / "loop-warm", 1)
        for task in warm:
            worker.run(encode_msgpack(task), 600)
        pid = worker.pid
        assert pid is not None
        print(f"render child alone vs in-process loop, {args.rows:,} rows, CPU ms per row")
        for n in range(args.rounds):
            tasks = tasks_for(names, args.batch_size, f"r{n}")
            _, _, loop_cpu = baseline.run(tasks, out / f"loop-{n}", 1)
            encoded = [encode_msgpack(task) for task in tasks]
            before = cpu_seconds(pid)
            for data in encoded:
                worker.run(data, 600)
            child_cpu = cpu_seconds(pid) - before
            loop_ms, child_ms = 1000 * loop_cpu / args.rows, 1000 * child_cpu / args.rows
            print(f"  round {n + 1}: loop {loop_ms:.3f}  child {child_ms:.3f}  ({child_ms / loop_ms:.2f}x)")
    finally:
        worker.stop()
        baseline.close()


if __name__ == "__main__":
    main()
