"""The render worker: a child process that renders a replica's batches and writes their files.

Rendering runs outside the replica's event-loop process for two reasons. A render that hangs or
crashes the interpreter (a pathological input, a native-library bug) can then cost one item
instead of the replica: the parent notices the silence or the dead pipe, kills and restarts the
child, and renders the batch again one item at a time with a per-item timeout, so the poison item
fails with its reason and the rest succeed. And the parent's event loop (fetching, publishing,
heartbeats) never competes with rendering for the GIL.

Parent and child speak MessagePack over a pipe: the task's bytes exactly as they came from
JetStream go in (the parent never decodes the items), a `BatchOutcome` comes out, its items
already encoded as the result message carries them (the parent never decodes those either).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path

import msgspec

from services.renderer.batch import BatchOutcome, BatchRenderer
from shared.contract.codec import decode_msgpack, encode_msgpack
from shared.contract.errors import BadRequest, ImagegenError
from shared.contract.messages import ItemResult, RenderTask, failed_item
from shared.contract.style import Style
from shared.render import FontCatalogue, RenderedImage, RenderEngine
from shared.runtime import heap
from shared.runtime.logging import configure_logging, get_logger
from shared.runtime.settings import Settings
from shared.storage import DirectoryStore

log = get_logger(__name__)

# Fault injection for the fault tests (off unless IMAGEGEN_FAULT_INJECTION is set): an item whose
# text is one of these hangs or kills the worker, the way a real poison input would, or kills the
# whole replica (parent and child), as the OOM killer does to a container over its memory limit.
FAULT_HANG = "imagegen:fault:hang"
FAULT_CRASH = "imagegen:fault:crash"
FAULT_KILL_REPLICA = "imagegen:fault:kill-replica"

_STOP = b"stop"
_READY = b"ready"
# Prefix of a task the child only warms its caches with (its style, its first texts) and answers
# _READY: the parent sends it before a fresh child's first batch, outside the batch's timeout.
_WARM = b"warm:"
# A warm-up takes ~2 s with the common hanzi on a quiet core; this bounds a stuck one.
WARM_TIMEOUT_SECONDS = 60.0


class WorkerLost(ImagegenError):
    """The child hung past its timeout or died; it has been replaced."""


class _FaultyEngine(RenderEngine):
    def render(self, text: str, style: Style) -> RenderedImage:
        if text == FAULT_HANG:
            time.sleep(3600)
        if text == FAULT_KILL_REPLICA:
            os.kill(os.getppid(), signal.SIGKILL)
        if text in (FAULT_CRASH, FAULT_KILL_REPLICA):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().render(text, style)


def _address_space() -> int:
    """This process's virtual size in bytes (VmSize)."""
    return int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def resident_bytes(pid: int) -> int:
    """A process's resident set in bytes (0 if it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _child_main(
    conn: Connection,
    font_dirs: list[str],
    output_dir: str | None,
    faults: bool,
    memory_mb: int | None,
    nice: int,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # A spawned child starts with structlog's defaults: log as the replica does (JSON in a
    # container), from the same environment.
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    if nice:
        os.nice(nice)
    engine_type = _FaultyEngine if faults else RenderEngine
    engine = engine_type(FontCatalogue.load([Path(d) for d in font_dirs]))
    engine.warm_up()
    if memory_mb is not None:
        # The cap is on growth beyond the warmed-up size (fonts and libraries mapped): an
        # allocation past it raises MemoryError in the render, which fails the item.
        limit = _address_space() + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    renderer = BatchRenderer(engine, DirectoryStore(Path(output_dir)) if output_dir else None)
    heap.settle_after_start()
    conn.send_bytes(_READY)
    while True:
        try:
            payload = conn.recv_bytes()
        except EOFError:
            return
        if payload == _STOP:
            return
        warm_only = payload.startswith(_WARM)
        if warm_only:
            payload = payload[len(_WARM) :]
        try:
            task = decode_msgpack(payload, RenderTask)
        except BadRequest as exc:
            conn.send_bytes(encode_msgpack(BatchOutcome(error=f"malformed task: {exc}")))
            continue
        if warm_only:
            # The first task says what this child will render: its style and first texts.
            started = time.perf_counter()
            masks = renderer.warm(task)
            log.info("render.warmed", masks=masks, seconds=round(time.perf_counter() - started, 3))
            heap.settle_after_start()  # the warmed caches are long-lived too
            conn.send_bytes(_READY)
            continue
        conn.send_bytes(encode_msgpack(renderer.render(task)))


class RenderWorker:
    """The parent's handle on its render child. `run` blocks: call it from one thread."""

    def __init__(
        self,
        *,
        font_dirs: list[Path],
        output_dir: Path | None,
        faults: bool = False,
        memory_mb: int | None = None,
        nice: int = 0,
        warm: bool = True,
    ) -> None:
        self.font_dirs = [str(d) for d in font_dirs]
        self.output_dir = str(output_dir) if output_dir else None
        self.faults = faults
        self.memory_mb = memory_mb
        self.nice = nice
        self.warm = warm  # warm the caches with the first task's style (a job's, not a preview's)
        self.baseline = 0  # the child's resident bytes once it was ready
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._cold = False  # a fresh child not yet warmed (set by start when `warm`)

    def start(self, timeout: float = 60.0) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_child_main,
            args=(child, self.font_dirs, self.output_dir, self.faults, self.memory_mb, self.nice),
            name="imagegen-render-worker",
            daemon=True,
        )
        process.start()
        child.close()
        if not parent.poll(timeout) or parent.recv_bytes() != _READY:
            process.kill()
            raise WorkerLost("the render worker did not start")
        self._process, self._conn = process, parent
        self._cold = self.warm
        self.baseline = resident_bytes(process.pid or 0)

    def recycle_above(self, extra_mb: int) -> None:
        """Stop the child if it stays `extra_mb` above its resident size at start (the next
        `run` starts a fresh one): memory a large render left behind goes back to the system."""
        process = self._process
        if process is None or not process.pid:
            return
        grown = resident_bytes(process.pid) - self.baseline
        if grown > extra_mb * 1024 * 1024:
            log.info("render.worker_recycled", grown_mb=grown // (1024 * 1024))
            self.stop()

    def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send_bytes(_STOP)
            self._conn.close()
        if self._process is not None:
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._process = self._conn = None

    def _replace(self, *, timed_out: bool, restart: bool = True) -> str:
        """Kill (if needed) and restart the child (or leave that to the next `run`); returns
        what happened to the old one."""
        process = self._process
        assert process is not None
        if timed_out:
            process.kill()
            process.join()
            what = "hung"
        else:
            # The pipe broke: the child is dead or dying; reap it for its exit code.
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
            what = f"died (exit code {process.exitcode})"
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None
        if restart:
            self.start()
        return what

    @property
    def started(self) -> bool:
        return self._conn is not None

    @property
    def pid(self) -> int | None:
        """The child's process id (None before it starts or after it stops)."""
        return self._process.pid if self._process is not None else None

    def run(self, task: bytes, timeout: float, *, restart: bool = True, warm: bool = True) -> BatchOutcome:
        """Render an encoded task in the child; `WorkerLost` if it hangs past `timeout` or dies
        (the child is replaced at once, or with `restart=False` by the next `run`). A fresh child
        first warms its caches with the task (not counted in `timeout`), unless `warm` is False."""
        if self._conn is None:
            self.start()
        assert self._conn is not None
        timed_out = False
        try:
            if self._cold and warm:
                self._cold = False
                self._conn.send_bytes(_WARM + task)
                if not self._conn.poll(WARM_TIMEOUT_SECONDS):
                    what = self._replace(timed_out=True, restart=restart)
                    raise WorkerLost(f"render worker {what} warming up after {WARM_TIMEOUT_SECONDS:g}s")
                self._conn.recv_bytes()  # _READY
            self._conn.send_bytes(task)
            if self._conn.poll(timeout):
                return msgspec.msgpack.decode(self._conn.recv_bytes(), type=BatchOutcome)
            timed_out = True
        except (EOFError, OSError):
            pass
        what = self._replace(timed_out=timed_out, restart=restart)
        raise WorkerLost(f"render worker {what} after {timeout:g}s" if timed_out else f"render worker {what}")

    def run_isolated(self, task: RenderTask, item_timeout: float) -> BatchOutcome:
        """Render each item alone: a poison item fails with the reason, the others succeed."""
        items: list[ItemResult] = []
        files: list[str] = []
        images: list[bytes] = []
        render_seconds: list[float] = []
        encode_seconds: list[float] = []
        for item in task.items:
            single = encode_msgpack(msgspec.structs.replace(task, items=[item]))
            try:
                # Not warmed: a fresh child's warm-up must not eat an item's timeout.
                outcome = self.run(single, item_timeout, warm=False)
            except WorkerLost as exc:
                log.error("render.poison_item", job_id=task.job_id, index=item.index, error=str(exc))
                items.append(failed_item(item, f"render failed: {exc}"))
                continue
            items.extend(outcome.decoded())
            files.extend(outcome.files)
            images.extend(outcome.images)
            render_seconds.extend(outcome.render_seconds)
            encode_seconds.extend(outcome.encode_seconds)
        return BatchOutcome.of(
            items, files=files, images=images, render_seconds=render_seconds, encode_seconds=encode_seconds
        )
