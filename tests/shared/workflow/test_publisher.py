"""How `TaskPublisher` cuts a job's items into batches: `put_many`, which ingest uses, makes the
very batches that `put` makes one item at a time, whatever the texts, styles, budgets and
chunks (it only sizes the items together)."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contract.messages import RenderItem
from shared.contract.style import Style
from shared.runtime.bus.limits import TaskBudget, item_sizes, items_sizes
from shared.workflow.publisher import TaskPublisher

# Any character but the surrogates (ingest refuses those), short texts most of the time.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=8) | st.text(
    st.characters(exclude_categories=["Cs"]), max_size=400
)
STYLE = st.none() | st.dictionaries(st.sampled_from(["color", "size"]), TEXT, max_size=2)
ITEMS = st.lists(st.tuples(TEXT, st.text(max_size=12), STYLE), max_size=300)


def publisher(budget: TaskBudget, ramp: int | None, batch_size: int) -> TaskPublisher:
    # Nothing is published here: only the batches `put` and `put_many` make ready are compared.
    return TaskPublisher(
        cast(Any, None), "job", 1, Style(), batch_size=batch_size, budget=budget, ramp_from=ramp
    )


def batches(pub: TaskPublisher) -> list[tuple[list[RenderItem], int]]:
    pub._seal()  # what is pending, as `close` would publish it
    return [(items, size) for items, size in pub._ready if items]


@settings(max_examples=200, deadline=None)
@given(
    rows=ITEMS,
    cuts=st.lists(st.integers(1, 300), max_size=20),
    task_bytes=st.integers(300, 60_000),
    result_bytes=st.integers(1_000, 200_000),
    ramp=st.none() | st.integers(1, 16),
    batch_size=st.integers(1, 1000),
)
def test_put_many_makes_the_batches_put_makes(
    rows: list[tuple[str, str, dict[str, str] | None]],
    cuts: list[int],
    task_bytes: int,
    result_bytes: int,
    ramp: int | None,
    batch_size: int,
) -> None:
    items = [
        RenderItem(i, text, name or str(i), None, style, i + 2) for i, (text, name, style) in enumerate(rows)
    ]
    budget = TaskBudget(task_bytes, result_bytes)
    one_by_one, together = publisher(budget, ramp, batch_size), publisher(budget, ramp, batch_size)
    for item in items:
        one_by_one.put(item)
    at = 0
    for cut in [*cuts, len(items)]:  # chunks of any size, as sources hand them over
        together.put_many(items[at : at + cut])
        at += cut
    assert batches(together) == batches(one_by_one)
    assert together.items_added == one_by_one.items_added == len(items)


def test_a_chunk_of_short_texts_is_sized_whole_and_a_row_too_large_still_fails_alone() -> None:
    """The path ingest takes for most chunks (short texts, no style: sized in a few calls), and
    the row no message can carry, which fails as its own item without its text either way."""
    short = [RenderItem(i, "东华门街道", str(i + 2), None, None, i + 2) for i in range(600)]
    assert items_sizes(short) == tuple(map(sum, zip(*map(item_sizes, short), strict=True)))
    huge = RenderItem(600, "汉" * 5000, "602", None, None, 602)
    pub = publisher(TaskBudget(8192, 200_000), None, 1000)
    pub.put_many([*short[:3], huge, *short[3:6]])
    ((made, _),) = batches(pub)
    assert [item.index for item in made] == [0, 1, 2, 600, 3, 4, 5]
    assert made[3].text == "" and "too large" in (made[3].error or "")
