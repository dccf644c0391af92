"""Throttling progress events: at most one per job per interval, however fast results come."""

from __future__ import annotations

import time


class ProgressThrottle:
    def __init__(self, interval: float, *, max_jobs: int = 10_000) -> None:
        self.interval = interval
        self.max_jobs = max_jobs
        self._last: dict[str, float] = {}

    def due(self, job_id: str, now: float | None = None) -> bool:
        """True (and remember it) if a progress event for `job_id` may go out now."""
        now = time.monotonic() if now is None else now
        last = self._last.get(job_id)
        if last is not None and now - last < self.interval:
            return False
        if len(self._last) >= self.max_jobs:  # forget the oldest: a bounded memory
            self._last.pop(next(iter(self._last)))
        self._last[job_id] = now
        return True

    def forget(self, job_id: str) -> None:
        self._last.pop(job_id, None)
