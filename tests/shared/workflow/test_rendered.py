"""The bit set a resume reads (`shared.workflow.results.Rendered`): items added count once, and an
item taken back by a replacement result is rendered again with its counts right."""

from __future__ import annotations

from shared.workflow.results import Rendered


def test_added_items_count_once_and_grow_the_set() -> None:
    rendered = Rendered(bytearray())
    for index in (0, 9, 9, 1_000_003):
        rendered.add(index, incomplete=index == 9)
    assert (rendered.done, rendered.incomplete) == (3, 1)
    assert 9 in rendered and 1_000_003 in rendered and 8 not in rendered and -1 not in rendered
    assert len(rendered.bits) >= 1_000_003 // 8


def test_a_replaced_item_is_taken_back_with_its_counts() -> None:
    rendered = Rendered(bytearray())
    rendered.add(4, incomplete=True)
    rendered.add(5, incomplete=False)
    rendered.discard(4)
    rendered.discard(4)  # twice: nothing more to take back
    rendered.discard(77)  # never rendered
    assert 4 not in rendered and 5 in rendered
    assert (rendered.done, rendered.incomplete) == (1, 0)
    rendered.add(4, incomplete=False)  # the resume renders it again
    assert (rendered.done, rendered.incomplete) == (2, 0)
