"""The stall watchdog: no job stays active without progress.

Every way a job can end is guarded elsewhere (a failing message is given up after its attempts,
a message no process survived comes back as a MAX_DELIVERIES advisory), but a lost message, an
advisory dropped while NATS was away or a bug can still leave a job waiting for something that
will never come. result-notifier runs this loop: a job whose ledger row has not changed for
`IMAGEGEN_JOB_STALL_SECONDS` is failed with the state it stalled in, ingest and renderers are
told to stop, and `failed` is announced; `jobs resume` renders what it had not.

A job cannot progress while result-notifier, NATS or Postgres is away, and results queue up
meanwhile: so the watchdog judges only after it has seen both answer for a whole stall period
(after its start, and after each round that found one of them away). Results that waited
through an outage are counted before any job is judged by them.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.js.client import JetStreamContext

from shared.contract.subjects import CONSUMER_NOTIFIER, STREAM_RESULT_QUEUE
from shared.runtime.ledger import Ledger
from shared.runtime.logging import get_logger
from shared.workflow.active import ActiveJobs
from shared.workflow.cancellation import Cancellations
from shared.workflow.failure import job_failed

log = get_logger(__name__)

MOST_SECONDS_BETWEEN_CHECKS = 60.0


def check_every(stall_seconds: float) -> float:
    """How often to look: a stall is noticed at most a quarter of its bound late."""
    return min(stall_seconds / 4, MOST_SECONDS_BETWEEN_CHECKS)


async def watch_stalls(
    js: JetStreamContext,
    ledger: Ledger,
    active: ActiveJobs,
    cancellations: Cancellations,
    *,
    stall_seconds: float,
    stop: asyncio.Event,
) -> None:
    """Fail stalled jobs every `check_every(stall_seconds)` until `stop` is set."""
    loop = asyncio.get_running_loop()
    every = check_every(stall_seconds)
    healthy_since = loop.time()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
            return
        try:
            await js.consumer_info(STREAM_RESULT_QUEUE, CONSUMER_NOTIFIER)  # NATS answers
            if loop.time() - healthy_since < stall_seconds:
                continue
            stalled = await ledger.fail_stalled(stall_seconds)
        except Exception as exc:
            log.warning("watchdog.unavailable", error=str(exc) or type(exc).__name__)
            healthy_since = loop.time()
            continue
        for job in stalled:
            try:
                await job_failed(js, active, job, cancellations)
            except Exception:  # (a publish waits out NATS away) the ledger has the failure
                log.exception("watchdog.announce_failed", job_id=job.job_id)
