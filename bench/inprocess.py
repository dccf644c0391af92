"""The in-process loop of bench_pipeline: the renderer's own render code without the messaging.

`BatchRenderer` (the same `RenderEngine`, the same style, PNG encode included) over batches,
each image written by the renderer's own `DirectoryStore.write_many`, in one or two long-lived
processes (spawned, so nothing is inherited from the benchmark).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from services.renderer.batch import BatchRenderer
from shared.contract.messages import RenderItem, RenderTask
from shared.render import FontCatalogue, RenderEngine, Style
from shared.runtime import heap
from shared.storage import DirectoryStore

# --- the loop --------------------------------------------------------------------


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
    return sum(len(renderer.render(task).render_seconds) for task in tasks)  # one per image


def baseline_worker(conn: Connection) -> None:
    """A long-lived baseline process: builds its engine once, then renders what it is sent.

    Messages: ("run", tasks, out_dir, start_at) -> (written, started, finished, cpu_seconds),
    times in `time.monotonic()` seconds (one clock for every process on the machine); ("stop",).
    """
    engine = RenderEngine(FontCatalogue.load([]))
    engine.warm_up()
    heap.settle_after_start()  # as a render child does after the same start-up
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
