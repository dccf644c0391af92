"""The manifest lines of the jobs whose results this process counts, spooled as they are counted.

result-notifier has every result decoded in hand when the ledger counts it, so it formats the
result's manifest lines then (`Spool`), and completing the job writes the manifest from them
instead of reading the whole job back from the results stream: every result is decoded once, and
nats-server delivers it once. Nothing depends on the spool being there: a job whose results were
counted partly elsewhere (another replica, before a restart), retried, resumed or replaced is
written from the stream as before; `Spool.holds` decides, against the ledger's counts.

At most `most` jobs are spooled at once (the one least recently added to goes first); a job's
spool goes when it completes, is cancelled or fails here, and when nothing was added to it for
`idle_seconds` (a job that ingest completed or the stall watchdog failed never comes back here;
a job that merely paused, waiting for Postgres say, starts a new spool that `Spool.holds` will
refuse, and its manifest comes from the stream).
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from shared.contract.messages import BatchResult
from shared.runtime.logging import get_logger
from shared.workflow.manifest import Spool

log = get_logger(__name__)


class RecordedRuns:
    """One `Spool` per job whose first attempt's results this process is counting."""

    def __init__(
        self, *, most: int = 64, idle_seconds: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.most = most
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._touched: dict[str, float] = {}  # when each job's spool was last added to
        self._folder = tempfile.TemporaryDirectory(prefix="imagegen-recorded-")
        # None: a job whose manifest must come from the stream (its spool could not hold a result).
        self._spools: OrderedDict[str, Spool | None] = OrderedDict()
        self._names = itertools.count()  # file names: a job id may be longer than a file name

    def add(self, result: BatchResult) -> None:
        """Spool the lines of `result`, which the ledger has just counted."""
        now = self._clock()
        self._expire(now)
        if result.job_id in self._spools:
            self._spools.move_to_end(result.job_id)
            self._touched[result.job_id] = now
            spool = self._spools[result.job_id]
            if spool is None:
                return
        elif result.attempt != 1:
            return  # a later attempt's manifest merges attempts: only the stream has them all
        else:
            spool = self._spools[result.job_id] = Spool(Path(self._folder.name) / f"{next(self._names)}.csv")
            self._touched[result.job_id] = now
            while len(self._spools) > self.most:
                self.drop(next(iter(self._spools)))
        try:
            held = spool.add(result)
        except OSError as exc:  # a full or failing disk costs the shortcut, never the result
            log.warning("manifest.spool_failed", job_id=result.job_id, error=str(exc))
            held = False
        if not held:
            # A result this spool cannot hold (a batch twice, an index twice) or write: the
            # job's manifest comes from the stream.
            spool.close()
            self._spools[result.job_id] = None

    def _expire(self, now: float) -> None:
        """Drop the spools nothing was added to for `idle_seconds`, oldest first (the order of
        `_spools` is the order they were last added to)."""
        while self._spools:
            oldest = next(iter(self._spools))
            if now - self._touched.get(oldest, now) < self.idle_seconds:
                break
            log.info("manifest.spool_idle", job_id=oldest, idle_seconds=self.idle_seconds)
            self.drop(oldest)

    def take(self, job_id: str) -> Spool | None:
        """The spool of `job_id`, now the caller's to use and close (None: none kept)."""
        self._touched.pop(job_id, None)
        return self._spools.pop(job_id, None)

    def drop(self, job_id: str) -> None:
        spool = self.take(job_id)
        if spool is not None:
            spool.close()

    def __len__(self) -> int:
        return len(self._spools)

    def close(self) -> None:
        for spool in self._spools.values():
            if spool is not None:
                spool.close()
        self._spools.clear()
        self._touched.clear()
        self._folder.cleanup()
