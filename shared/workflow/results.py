"""Reading a job's results back from its stream: for its manifest, and for a resumed job, which
items earlier attempts already rendered.

Results are pulled in bounded batches through a short-lived consumer (a push consumer would
buffer the whole job if the reader fell behind), up to the sequence of the job's last result
when reading began, so memory stays flat whatever the job's size.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from shared.contract.messages import BatchResult, item_status
from shared.contract.subjects import STREAM_RESULTS, results_subject

FETCH = 256  # result messages per pull: ~8,000 items, a few hundred kB at most in hand

Heartbeat = Callable[[], Awaitable[None]]


async def stored_results(
    js: JetStreamContext, job_id: str, last_seq: int, heartbeat: Heartbeat | None
) -> AsyncIterator[BatchResult]:
    """The job's results from the first up to stream sequence `last_seq`, pulled in bounded
    batches (a push consumer would buffer the whole job if the writer fell behind)."""
    name = f"results-{job_id}-{secrets.token_hex(4)}"
    await js.add_consumer(
        STREAM_RESULTS,
        config=ConsumerConfig(
            name=name,
            filter_subject=results_subject(job_id),
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,  # gone by itself if this process dies mid-way
            mem_storage=True,
        ),
    )
    sub = await js.pull_subscribe_bind(stream=STREAM_RESULTS, name=name)
    try:
        seq = 0
        while seq < last_seq:
            try:
                msgs = await sub.fetch(FETCH, timeout=5)
            except (TimeoutError, nats.errors.TimeoutError):
                # Nothing came (nats.py #933: a fetch can stall): the messages up to last_seq
                # are stored, so simply ask again; the heartbeat keeps the caller's ack alive.
                msgs = []
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq > last_seq:
                    break
                try:
                    yield msgspec.json.decode(msg.data, type=BatchResult)
                except msgspec.MsgspecError:
                    continue  # malformed results are terminated by the notifier; skip them here
            if heartbeat:
                await heartbeat()
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        with contextlib.suppress(Exception):
            await js.delete_consumer(STREAM_RESULTS, name)


async def last_result_seq(js: JetStreamContext, job_id: str) -> int:
    """The stream sequence of the job's last stored result (0: none)."""
    try:
        return int((await js.get_last_msg(STREAM_RESULTS, results_subject(job_id))).seq or 0)
    except NotFoundError:
        return 0


@dataclass
class Rendered:
    """The items earlier attempts of a job rendered (ok or incomplete), as bits per index."""

    bits: bytearray
    done: int = 0
    incomplete: int = 0
    # Which of the rendered items were incomplete, so one taken back is counted right.
    incomplete_bits: bytearray = field(default_factory=bytearray)

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and _test(self.bits, index)

    def add(self, index: int, *, incomplete: bool) -> None:
        if index < 0 or index in self:
            return
        _set(self.bits, index, True)
        self.done += 1
        if incomplete:
            _set(self.incomplete_bits, index, True)
            self.incomplete += 1

    def discard(self, index: int) -> None:
        """Take an item back: a replacement result recorded it as failed after all."""
        if index not in self:
            return
        _set(self.bits, index, False)
        self.done -= 1
        if _test(self.incomplete_bits, index):
            _set(self.incomplete_bits, index, False)
            self.incomplete -= 1


def _test(bits: bytearray, index: int) -> bool:
    return index >= 0 and index >> 3 < len(bits) and bool(bits[index >> 3] & (1 << (index & 7)))


def _set(bits: bytearray, index: int, value: bool) -> None:
    byte = index >> 3
    if byte >= len(bits):  # grow at least twofold: appends stay amortised O(1)
        bits.extend(bytes(max(byte + 1 - len(bits), len(bits))))
    if value:
        bits[byte] |= 1 << (index & 7)
    else:
        bits[byte] &= ~(1 << (index & 7)) & 0xFF


async def rendered_before(
    js: JetStreamContext, job_id: str, attempt: int, heartbeat: Heartbeat | None = None
) -> Rendered:
    """Which items of `job_id` attempts before `attempt` rendered: a resume skips them. A bit
    per item keeps a million-row job at 125 kB. A result that `replaces` an earlier one (the
    ledger could not hold it and recorded its items as failed) takes those items back."""
    rendered = Rendered(bytearray())
    last_seq = await last_result_seq(js, job_id)
    if last_seq:
        async for result in stored_results(js, job_id, last_seq, heartbeat):
            if result.attempt >= attempt:
                continue
            for item in result.items:
                if item.ok and not result.replaces:
                    rendered.add(item.index, incomplete=item_status(item) == "incomplete")
                elif result.replaces:
                    rendered.discard(item.index)
    return rendered
