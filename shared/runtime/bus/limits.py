"""How large a message may be: the server's `max_payload` and the budgets carved out of it.

NATS refuses a message over the server's `max_payload` (1 MiB by default; nats-py raises
`MaxPayloadError` before sending, and headers count against the limit too). Rows are free text,
so a count of items says nothing about a message's size: 300 rows of 4,000 CJK characters make
a 3.6 MB task, and a row of control characters makes a result six times its task (JSON escapes
U+0001 as `\\u0001`). Everything that puts user data on the bus sizes it here, in bytes:

- a render task carries items while both its encoded size and the bound on its *result's* size
  stay within the task budget (`TaskBudget`), so a renderer's result always fits as well;
- a row too large for any message fails as its own item with the reason (`too_large_reason`);
- an event's message and a failure reason are clipped (`shared.contract.messages.clip`); a
  request's reply over the limit is refused with a 413 error (`check_reply`).

The limit is read from the connection (the server announces it in INFO), never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

import msgspec
from nats.aio.client import Client as NATS
from nats.js.api import ObjectMeta, ObjectMetaOptions
from nats.js.client import JetStreamContext

from shared.contract.codec import encode_json
from shared.contract.errors import TooLarge
from shared.contract.messages import BatchResult, RenderItem, clip

# Room for headers (Nats-Msg-Id, service error headers, the JetStream ones) and the message's
# own envelope, which count against max_payload as well.
HEADER_ALLOWANCE = 4096
# A result item's fixed fields (index, ok, row, width, height, bytes, the keys) in JSON.
ITEM_OVERHEAD = 192
# The room a result keeps for each failed item's reason. A reason is clipped to
# MAX_REASON_CHARS, with no control characters: up to 4 bytes a character in JSON, 1,202 in all.
# Reserving that for every item would hold a result on a default server to about 700 items; any
# ASCII reason fits in this room, and a result that would not fit has its reasons clipped to
# RESERVED_REASON_CHARS before it is published (`encode_result`).
RESERVED_REASON_CHARS = 80
_RESERVED_REASON_BYTES = 4 * RESERVED_REASON_CHARS + 2
_FILE_SUFFIX_BYTES = 8  # what a rendered item's `file` adds to its name: the image's extension
OBJECT_CHUNK_BYTES = 128 * 1024  # nats-py's default object-store chunk


def payload_budget(nc: NATS, configured: int | None = None) -> int:
    """The bytes a message body may take on `nc`'s server (and at most `configured`)."""
    budget = max(nc.max_payload - HEADER_ALLOWANCE, 1024)
    return min(budget, configured) if configured else budget


def object_meta(js: JetStreamContext, name: str) -> ObjectMeta:
    """Object-store metadata whose chunks fit the server's max_payload: nats-py's fixed 128 KiB
    chunks do not fit a server configured lower, and its `put` would fail every upload."""
    chunk = min(OBJECT_CHUNK_BYTES, payload_budget(js._nc))  # the context's connection, as nats-py uses it
    return ObjectMeta(name=name, options=ObjectMetaOptions(max_chunk_size=chunk))


def check_reply(reply: bytes, budget: int) -> None:
    """Refuse a reply that the server would not carry, with the numbers (code 413)."""
    if len(reply) > budget:
        raise TooLarge(
            f"the reply is {len(reply)} bytes, more than the {budget} a NATS message may carry "
            "here (the server's max_payload); ask for less"
        )


_json = msgspec.json.Encoder().encode
_msgpack = msgspec.msgpack.Encoder().encode


def item_sizes(item: RenderItem) -> tuple[int, int]:
    """What `item` adds to an encoded `RenderTask` (exact: its MessagePack encoding), and an upper
    bound on what it adds to its `BatchResult` (JSON), whatever the outcome, as `encode_result`
    publishes it. One call for both: ingest sizes every row.

    Either outcome repeats the text and the name (a rendered item's file is its name and an
    extension). A rendered item adds its missing glyphs (each a distinct character of the text,
    quoted: at most the text's escaped size plus 3 bytes a character); a failed one adds its
    style and its reason, clipped to RESERVED_REASON_CHARS when the result needs it.
    """
    text = len(_json(item.text))
    return len(_msgpack(item)), len(_json(item.name)) + _result_room(item, text)


def _result_room(item: RenderItem, text_json: int) -> int:
    """What `item` adds to its result besides its name, given its text's JSON size."""
    rendered = ITEM_OVERHEAD + 2 * text_json + 3 * len(item.text) + _FILE_SUFFIX_BYTES
    style = len(_json(item.style)) if item.style else 0
    failed = ITEM_OVERHEAD + text_json + style + _RESERVED_REASON_BYTES
    return rendered if rendered > failed else failed


def items_sizes(items: list[RenderItem]) -> tuple[int, int]:
    """`item_sizes` summed over `items`, exactly, with the encoding done a few times for the lot
    rather than four times an item (ingest sizes every row; bench/bench_ingest.py).

    A MessagePack array is its header and then its elements' encodings, and a JSON array of
    strings is its brackets, its commas and then the strings' encodings. Where no item has a
    style and even the longest text, at its largest in JSON, leaves a rendered item smaller
    than the room a failed one keeps (most batches: texts up to 34 characters), every item's
    bound is its failed form's, and only the sum of the texts' JSON sizes is needed."""
    count = len(items)
    if not count:
        return 0, 0
    texts = list(map(_TEXT, items))
    lengths = list(map(len, texts))
    if sum(lengths) > CHUNK_TEXT_CHARS:
        # Long texts: one at a time, each encoding small enough to stay in the CPU's caches.
        task_bytes, result_bytes = zip(*map(item_sizes, items), strict=True)
        return sum(task_bytes), sum(result_bytes)
    task = len(_msgpack(items)) - _array_header_bytes(count)
    names = _json_strings_bytes(list(map(_NAME, items)))
    longest = max(lengths)
    rendered_most = _MAX_JSON_PER_CHAR * longest + 2 + 3 * longest + _FILE_SUFFIX_BYTES
    if rendered_most <= _RESERVED_REASON_BYTES and not any(map(_STYLE, items)):
        return task, names + count * (ITEM_OVERHEAD + _RESERVED_REASON_BYTES) + _json_strings_bytes(texts)
    return task, names + sum(map(_result_room, items, map(len, map(_json, texts))))


# Up to this many characters of text, a chunk of rows is sized, and checked, together
# (bench/bench_sizes.py: 256 rows of 4,000 CJK characters took twice as long together as one at a
# time, their encodings no longer in the CPU's caches).
CHUNK_TEXT_CHARS = 64 * 1024


def _json_strings_bytes(strings: list[str]) -> int:
    """The JSON sizes of `strings` (at least one), summed: their array less brackets and commas."""
    return len(_json(strings)) - len(strings) - 1


# The most a character takes in msgspec's JSON: a control character is written \u00XX; any
# other character as itself in UTF-8 (at most 4 bytes), or a short escape such as \n.
_MAX_JSON_PER_CHAR = 6
_NAME, _TEXT, _STYLE = attrgetter("name"), attrgetter("text"), attrgetter("style")


def _array_header_bytes(count: int) -> int:
    """The size of a MessagePack array's header for `count` elements (fixarray, array 16, 32)."""
    return 1 if count < 16 else 3 if count < 65536 else 5


def encode_result(result: BatchResult, budget: int) -> bytes:
    """`result` as JSON within `budget` bytes: as it is when it fits, else with its failed items'
    reasons clipped to RESERVED_REASON_CHARS, the room `item_sizes` keeps for them (a task's
    items were sized by it, so that fits); `TooLarge` if even that does not."""
    payload = encode_json(result)
    if len(payload) <= budget:
        return payload
    items = [
        msgspec.structs.replace(item, error=clip(item.error, RESERVED_REASON_CHARS)) if item.error else item
        for item in result.items
    ]
    payload = encode_json(msgspec.structs.replace(result, items=items))
    check_reply(payload, budget)
    return payload


# A result's own fields (job, attempt, batch, renderer, delivery, at) besides its items.
RESULT_OVERHEAD = 1024


@dataclass(frozen=True, slots=True)
class TaskBudget:
    """How many bytes one render task may take (`bytes`: `IMAGEGEN_BATCH_MAX_BYTES` or the
    server's max_payload, whichever is smaller) and the bound on its result (`result_bytes`: the
    server's max_payload; a result is never held for long)."""

    bytes: int
    result_bytes: int

    @classmethod
    def of(cls, nc: NATS, batch_max_bytes: int) -> TaskBudget:
        return cls(payload_budget(nc, batch_max_bytes), payload_budget(nc) - RESULT_OVERHEAD)

    def fits_alone(self, task_overhead: int, item_bytes: int, item_result: int) -> bool:
        return task_overhead + item_bytes <= self.bytes and item_result <= self.result_bytes

    def too_large_reason(self, item_bytes: int, item_result: int) -> str:
        return (
            f"the row is too large to send for rendering: its task needs {item_bytes} bytes and "
            f"its result up to {item_result}, and a message carries at most {self.bytes} and "
            f"{self.result_bytes} (IMAGEGEN_BATCH_MAX_BYTES and the NATS server's max_payload)"
        )
