"""Which jobs may be rendered, and at which attempt: a key per active job in a NATS KV bucket.

A job's key holds its current attempt. It is written before the attempt's first task exists
(ingest when it accepts the job, result-notifier when it starts a retry) and purged when the job
ends (completed, failed or cancelled). A renderer renders a task only while its job's key names
the task's attempt, so a task for a job that does not exist, has ended or belongs to an older
attempt is skipped, whoever published it. Only ingest and result-notifier may write the bucket.

A renderer follows the bucket (`follow`: a KV watch, updates pushed as they are stored) and
renders without asking when the watch or a read said the job is active at the task's attempt less
than `TRUST_SECONDS` ago and the watch is up. Anything else is asked of the bucket, one key read:
- only "active at this attempt" is trusted: a task of an attempt the watch has not shown yet (a
  retry's first tasks) or of a job it does not know is read, never skipped on the cache's word;
- a job's end reaches the watch as it is stored, so its remaining tasks are skipped at once;
- nothing is trusted from the moment the connection drops until a new watch has delivered every
  key again (updates sent meanwhile may be lost); a watch that stopped some other way (its
  consumer gone) can let a task of an ended job through for at most `TRUST_SECONDS` after the
  last confirmation. A cancel already lets the batches in a renderer's hands finish.
Each answer carries the key's revision, so a read that was under way when a newer update arrived
never puts the older answer back. Without the watch running every task is read, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from asyncio import FIRST_COMPLETED
from dataclasses import dataclass
from typing import Any, Final

import nats.errors
from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from shared.contract.subjects import BUCKET_ACTIVE, validate_job_id
from shared.runtime.logging import get_logger
from shared.runtime.retry import Backoff

log = get_logger(__name__)

# How long "active at this attempt" is trusted after the watch or a read last said so. A batch
# of 1000 labels takes about 0.2 s, so a long job is read about once a second per replica instead
# of once a batch (each read is a JetStream API request: ~0.45 ms of CPU, client and server).
TRUST_SECONDS: Final = 1.0
KNOWN_JOBS: Final = 1024  # answers kept; the oldest is forgotten first (and read again if needed)

# How soon a watch notices that its connection reconnected, and is started again (answers are
# not trusted from the moment it dropped: see `following`).
_LOOK_EVERY = 0.5
_NATS_TROUBLE = (nats.errors.Error, OSError, TimeoutError)


@dataclass(slots=True)
class _Known:
    attempt: int | None  # None: ended or unknown
    revision: int  # the key's revision the answer comes from (0: no key at all)
    at: float  # when it was last confirmed (time.monotonic)


class ActiveJobs:
    def __init__(
        self, js: JetStreamContext, *, marker_seconds: float = 3600.0, trust_seconds: float = TRUST_SECONDS
    ) -> None:
        self.js = js
        # How long the purge marker of an ended job stays (its key then vanishes entirely).
        self.marker_seconds = marker_seconds
        self._kv: KeyValue | None = None
        # How long "active at this attempt" is trusted without a read (`follow` must run).
        self.trust_seconds = trust_seconds
        self._known: dict[str, _Known] = {}
        self._watching: NATS | None = None  # the connection of a watch that is up
        self._reconnects = 0  # its reconnect count when that watch started
        self.reads = 0  # key reads made by `may_render` (tests, benchmarks)

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.js.key_value(BUCKET_ACTIVE)
        return self._kv

    async def start(self, job_id: str, attempt: int) -> None:
        """`job_id` may be rendered at `attempt` (and no longer at an earlier one)."""
        kv = await self._bucket()
        await kv.put(validate_job_id(job_id), str(attempt).encode())

    async def end(self, job_id: str) -> None:
        """`job_id` has ended: none of its tasks may be rendered any more."""
        kv = await self._bucket()
        await kv.purge(validate_job_id(job_id), msg_ttl=self.marker_seconds)

    async def current_attempt(self, job_id: str) -> int | None:
        """The attempt `job_id` may be rendered at, or None if it is unknown or has ended."""
        return (await self._read(job_id)).attempt

    async def _read(self, job_id: str) -> _Known:
        kv = await self._bucket()
        try:
            entry = await kv.get(job_id)
        except (KeyNotFoundError, KeyDeletedError, NotFoundError):
            return _Known(None, 0, time.monotonic())
        return _Known(_attempt(entry.value), entry.revision or 0, time.monotonic())

    async def may_render(self, job_id: str, attempt: int) -> bool:
        """True while `job_id` is active at `attempt`. When the bucket cannot be read (NATS
        trouble) the task is rendered: skipping would lose work a renderer was right to do."""
        known = self._known.get(job_id)
        if (
            known is not None
            and known.attempt == attempt
            and time.monotonic() - known.at < self.trust_seconds
            and self._watch_current()
        ):
            return True
        self.reads += 1
        try:
            answer = await self._read(job_id)
        except _NATS_TROUBLE as exc:
            log.warning("active.unreadable", job_id=job_id, error=str(exc) or type(exc).__name__)
            return True
        self._learn(job_id, answer)
        return answer.attempt == attempt

    @property
    def following(self) -> bool:
        """The watch is up: it has delivered every key, and its connection has not dropped
        since it started (updates sent meanwhile may be missing until it is started again)."""
        return self._watch_current()

    def _watch_current(self) -> bool:
        nc = self._watching
        return nc is not None and nc.is_connected and nc.stats["reconnects"] == self._reconnects

    def _learn(self, job_id: str, answer: _Known) -> None:
        """Keep `answer` unless an answer from a later revision is already known."""
        known = self._known.get(job_id)
        if known is not None and answer.revision and known.revision > answer.revision:
            return
        self._known.pop(job_id, None)  # re-inserted last: the dict's order is recency
        self._known[job_id] = answer
        while len(self._known) > KNOWN_JOBS:
            del self._known[next(iter(self._known))]

    async def follow(self, nc: NATS, stop: asyncio.Event) -> None:
        """Keep the answers current from the bucket's updates until `stop` is set (a renderer's
        worker; `nc` is the connection of this object's JetStream context). A watch that fails,
        or whose connection reconnected, is started again; meanwhile every task is read."""
        backoff = Backoff()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                try:
                    await self._watch(nc, stopping, backoff)
                except _NATS_TROUBLE as exc:
                    log.warning("active.watch_failed", error=str(exc) or type(exc).__name__)
                finally:
                    self._watching = None
                    self._known.clear()
                await asyncio.wait({stopping}, timeout=backoff.delay())
        finally:
            stopping.cancel()

    async def _watch(self, nc: NATS, stopping: asyncio.Future[Any], backoff: Backoff) -> None:
        """One watch, until `stopping` or until its connection reconnects (`backoff` is reset
        once it has delivered every key)."""
        reconnects = nc.stats["reconnects"]
        kv = await self._bucket()
        watcher = await kv.watchall()
        updates = aiter(watcher)
        update: asyncio.Future[KeyValue.Entry | None] | None = None
        try:
            while True:
                if update is None:
                    update = asyncio.ensure_future(anext(updates))
                await asyncio.wait((update, stopping), timeout=_LOOK_EVERY, return_when=FIRST_COMPLETED)
                if stopping.done() or nc.stats["reconnects"] != reconnects:
                    return
                if not update.done():
                    continue
                entry, update = update.result(), None
                if entry is None:  # every key's current value has been delivered
                    self._reconnects, self._watching = reconnects, nc
                    backoff.reset()
                    continue
                gone = entry.operation in (KV_DEL, KV_PURGE)
                attempt = None if gone else _attempt(entry.value)
                self._learn(entry.key, _Known(attempt, entry.revision or 0, time.monotonic()))
        except StopAsyncIteration:
            return
        finally:
            if update is not None:
                update.cancel()
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]


def _attempt(value: bytes | None) -> int | None:
    try:
        return int(value or b"")
    except ValueError:
        return None
