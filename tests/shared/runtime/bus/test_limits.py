"""The size arithmetic every publisher relies on: the result bound of `item_sizes` is never
below what a result item really encodes to, whatever the text (CJK, control characters, quotes,
surrogates kept out), so a task sized by it always has a result that fits."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contract.codec import encode_json
from shared.contract.errors import TooLarge
from shared.contract.messages import (
    MAX_REASON_CHARS,
    BatchResult,
    ItemResult,
    RenderItem,
    clip,
    failed_item,
)
from shared.runtime.bus.limits import (
    RESERVED_REASON_CHARS,
    RESULT_OVERHEAD,
    TaskBudget,
    check_reply,
    encode_result,
    item_sizes,
    items_sizes,
)
from shared.runtime.settings import Settings
from tests.benches import run_bench

# Any character but the surrogates (ingest refuses those: shared/workflow/carriable.py).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
STYLE = st.none() | st.dictionaries(st.sampled_from(["color", "font", "size"]), TEXT, max_size=3)


def result_bound(item: RenderItem) -> int:
    return item_sizes(item)[1]


def task_bytes(item: RenderItem) -> int:
    return item_sizes(item)[0]


def _item_json(item: ItemResult) -> int:
    # What one item adds inside the result's list: its encoding and a comma.
    return len(encode_json(item)) + 1


@settings(max_examples=300, deadline=None)
@given(text=TEXT, name=TEXT, style=STYLE, reason=TEXT)
def test_the_result_bound_covers_a_rendered_and_a_failed_item(
    text: str, name: str, style: dict[str, str] | None, reason: str
) -> None:
    item = RenderItem(7, text, name, None, style, 9)
    rendered = ItemResult(
        index=2**40,
        ok=True,
        row=2**40,
        text=text,
        file=f"{name}.webp",
        width=16384,
        height=16384,
        bytes=2**40,
        missing_glyphs=sorted(set(text)),
    )
    assert _item_json(rendered) <= result_bound(item)
    # The widest reasons: control characters (escaped in 6 bytes, unless replaced), astral ones,
    # as `encode_result` publishes them when the result needs it.
    for filler in ("\x01", "\U0001d54f", '"'):
        worst_reason = filler * (10 * MAX_REASON_CHARS) + reason
        fails = msgspec.structs.replace(failed_item(item, worst_reason), index=2**40, row=2**40)
        assert len(fails.error or "") == MAX_REASON_CHARS
        clipped = msgspec.structs.replace(fails, error=clip(fails.error or "", RESERVED_REASON_CHARS))
        assert _item_json(clipped) <= result_bound(item)
    # Any ASCII reason fits as it is: only long reasons in other scripts are ever clipped further.
    ascii_fails = msgspec.structs.replace(failed_item(item, "x" * 1000), index=2**40, row=2**40)
    assert len(ascii_fails.error or "") == MAX_REASON_CHARS
    assert _item_json(ascii_fails) <= result_bound(item)


def test_a_result_of_long_reasons_is_published_with_them_clipped_to_the_room_kept() -> None:
    """A full default task whose every item failed with a 300-character reason quoting rare CJK
    (Extension B: 4 bytes a character): its result fits once the reasons are clipped to the room
    `result_bound` keeps, texts and names whole. (Common CJK, 3 bytes, fits unclipped.)"""
    from bench.bench_render import strings

    items = [RenderItem(i, text, str(i + 2), None, None, i + 2) for i, text in enumerate(strings(1000))]
    budget = TaskBudget(512 * 1024, 1024 * 1024 - 4096 - RESULT_OVERHEAD)
    assert sum(map(result_bound, items)) <= budget.result_bytes  # ingest sends them as one task
    reason = "无法渲染：" + "\U00020000" * 400
    failed = [failed_item(item, reason) for item in items]
    result = BatchResult(job_id="j", attempt=1, batch=0, items=failed, renderer="r" * 64, delivery=99)
    assert len(encode_json(result)) > 1024 * 1024 - 4096  # as the renderer made it: too large
    payload = encode_result(result, 1024 * 1024 - 4096)
    assert len(payload) <= 1024 * 1024 - 4096
    sent = msgspec.json.decode(payload, type=BatchResult)
    assert [(i.text, i.name) for i in sent.items] == [(i.text, i.name) for i in items]
    assert all(i.error == clip(reason, RESERVED_REASON_CHARS) for i in sent.items)
    small = msgspec.structs.replace(result, items=failed[:10])
    assert encode_result(small, 1024 * 1024 - 4096) == encode_json(small)  # what fits is untouched


def test_task_bytes_is_the_items_encoding_and_a_budget_refuses_what_cannot_fit() -> None:
    item = RenderItem(0, "汉" * 1000, "name")
    assert task_bytes(item) == len(msgspec.msgpack.encode(item))
    budget = TaskBudget(8192, 8192)
    assert budget.fits_alone(200, task_bytes(item), 2000)
    assert not budget.fits_alone(200, task_bytes(item), result_bound(item))  # 3 KB text: 17 KB bound
    reason = budget.too_large_reason(task_bytes(item), result_bound(item))
    assert str(result_bound(item)) in reason and "8192" in reason and "max_payload" in reason


def test_the_default_batch_of_ordinary_rows_is_one_task() -> None:
    """A default batch (1000 items) of ordinary product names fits one task and one result on a
    default server: the byte budget splits only rows that need it."""
    from bench.bench_render import strings

    size = Settings().batch_size
    assert size == 1000
    items = [RenderItem(i, text, str(i + 2), None, None, i + 2) for i, text in enumerate(strings(size))]
    one_mib = 1024 * 1024
    assert sum(map(task_bytes, items)) < 512 * 1024 - 4096
    assert sum(map(result_bound, items)) < one_mib - 4096 - RESULT_OVERHEAD


def test_clip_and_check_reply() -> None:
    assert clip("short") == "short"
    assert clip("x" * 600) == "x" * (MAX_REASON_CHARS - 1) + "…"
    assert clip("a\nb\x00c\x85d") == "a b\ufffdc\ufffdd"
    check_reply(b"x" * 100, 100)
    try:
        check_reply(b"x" * 101, 100)
    except TooLarge as exc:
        assert exc.code == 413 and "101 bytes" in exc.message and "max_payload" in exc.message
    else:
        raise AssertionError("a reply over the budget was not refused")


def test_bench_sizes_runs() -> None:
    """bench/bench_sizes.py runs as bench/README.md shows it (with fewer items)."""
    out = run_bench("bench_sizes.py", "--count", "300", "--rounds", "1")
    assert "sizing as a share of rendering" in out, out


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.tuples(TEXT, TEXT, STYLE), max_size=40))
def test_items_sizes_is_the_sum_of_item_sizes(texts: list[tuple[str, str, dict[str, str] | None]]) -> None:
    """Exactly: ingest sizes its chunks with `items_sizes` and must cut batches where sizing
    them one by one would."""
    items = [RenderItem(i * 1000, text, name, None, style, i) for i, (text, name, style) in enumerate(texts)]
    expected = (sum(item_sizes(item)[0] for item in items), sum(item_sizes(item)[1] for item in items))
    assert items_sizes(items) == expected


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(TEXT, min_size=1, max_size=40))
def test_items_sizes_of_unstyled_items_is_the_sum_of_item_sizes(texts: list[str]) -> None:
    """Unstyled chunks take the shortcut when their longest text allows it."""
    items = [RenderItem(i, text, str(i + 2), None, None, i + 2) for i, text in enumerate(texts)]
    assert items_sizes(items) == tuple(map(sum, zip(*map(item_sizes, items), strict=True)))


def test_items_sizes_either_side_of_the_texts_where_a_rendered_item_takes_more_room() -> None:
    # Up to 34 characters of anything, a chunk takes the shortcut; beyond, each item is bounded.
    for filler in ("\x01", "a", "汉", "\U0001d54f", '"'):
        for length in range(20, 120):
            items = [RenderItem(0, filler * length, "n"), RenderItem(1, "a", "m")]
            assert items_sizes(items) == tuple(map(sum, zip(*map(item_sizes, items), strict=True)))


def test_items_sizes_past_messagepacks_short_array_headers() -> None:
    # 15 and 65,535 elements: the array header grows from 1 to 3 to 5 bytes.
    # Empty texts keep even 65,536 items under the characters sized together.
    for count in (15, 16, 65_535, 65_536):
        many = [RenderItem(i, "", str(i)) for i in range(count)]
        assert items_sizes(many) == tuple(map(sum, zip(*map(item_sizes, many), strict=True)))


def test_items_sizes_of_long_texts_one_at_a_time_is_the_same_sum() -> None:
    for text in ("汉字测试" * 1000, "\x01" * 3000):
        items = [RenderItem(i, text, str(i), None, {"color": "red"} if i % 2 else None) for i in range(40)]
        assert items_sizes(items) == tuple(map(sum, zip(*map(item_sizes, items), strict=True)))
