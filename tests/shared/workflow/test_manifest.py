"""Building a manifest: the spool (one attempt) writes exactly what the item-by-item sort writes,
and every other mix of results (retries, replacements, duplicates) goes to that sort."""

from __future__ import annotations

import asyncio
import csv
import random
import tempfile
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contract.messages import BatchResult, ItemResult
from shared.workflow.manifest import _SortedRows, build_manifest

TEXTS = ["东华门街道", 'say "hi", then go', "=SUM(A1:A9)", "line\nbreak", "-3", "ok"]


def item(index: int, *, attempt: int = 1, ok: bool = True, missing: Sequence[str] = ()) -> ItemResult:
    text = f"{TEXTS[index % len(TEXTS)]} {index}/{attempt}"
    if not ok:
        return ItemResult(index, False, row=index + 2, error=f"too wide ({attempt})", text=text)
    return ItemResult(
        index, True, row=index + 2, file=f"{index + 2}.png", width=40 + index, height=48,
        bytes=300, missing_glyphs=list(missing), text=text,
    )  # fmt: skip


def result(batch: int, items: list[ItemResult], *, attempt: int = 1, replaces: bool = False) -> BatchResult:
    return BatchResult(job_id="j", attempt=attempt, batch=batch, items=items, replaces=replaces)


def build(results: list[BatchResult], attempt: int) -> tuple[bytes, dict[str, int], bool]:
    async def read() -> AsyncGenerator[BatchResult, None]:
        for one in results:
            yield one

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.csv"
        counts, spooled = asyncio.run(build_manifest(read, attempt, path, Path(tmp)))
        return path.read_bytes(), counts, spooled


def reference(results: list[BatchResult], attempt: int) -> tuple[bytes, dict[str, int]]:
    """Item by item: the latest attempt of each index wins (the way every manifest was built
    before the spool)."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = _SortedRows(Path(tmp) / "rows.sqlite")
        for one in results:
            if one.attempt <= attempt:
                rows.add(one)
        counts = rows.write_csv(Path(tmp) / "manifest.csv")
        rows.close()
        return (Path(tmp) / "manifest.csv").read_bytes(), counts


def one_attempt(total: int, batch_size: int, seed: int) -> list[BatchResult]:
    rng = random.Random(seed)
    items = [
        item(i, ok=rng.random() > 0.2, missing=["𝄞"] if rng.random() < 0.1 else ()) for i in range(total)
    ]
    results = [result(n, items[at : at + batch_size]) for n, at in enumerate(range(0, total, batch_size))]
    rng.shuffle(results)  # results arrive in any order
    return results


@settings(max_examples=60, deadline=None)
@given(total=st.integers(0, 300), batch_size=st.integers(1, 64), seed=st.integers(0, 2**16))
def test_one_attempt_is_spooled_and_written_as_the_sort_writes_it(
    total: int, batch_size: int, seed: int
) -> None:
    results = one_attempt(total, batch_size, seed)
    data, counts, spooled = build(results, 1)
    assert spooled
    assert (data, counts) == reference(results, 1)
    assert sum(counts.values()) == total


def test_rows_are_in_index_order_with_cells_intact() -> None:
    results = one_attempt(50, 7, seed=3)
    data, counts, spooled = build(results, 1)
    assert spooled and data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(data.decode("utf-8-sig").splitlines(keepends=True)))
    assert [int(row["row"]) for row in rows] == list(range(2, 52))
    assert rows[1]["text"] == 'say "hi", then go 1/1'
    assert rows[2]["text"] == "'=SUM(A1:A9) 2/1"  # never a formula
    assert rows[3]["text"] == "line\nbreak 3/1"
    assert counts == {
        status: sum(row["status"] == status for row in rows) for status in ("ok", "incomplete", "failed")
    }


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), attempt=st.integers(1, 3))
def test_retries_replacements_and_duplicates_match_the_sort(seed: int, attempt: int) -> None:
    rng = random.Random(seed)
    results = one_attempt(60, 8, seed)
    for later in (2, 3):  # retries re-render some items, in batches of their own
        again = sorted(rng.sample(range(60), 12))
        for n in range(3):
            redone = [item(i, attempt=later, ok=rng.random() > 0.3) for i in again[n::3]]
            results.append(result(100 + n, redone, attempt=later))
    if rng.random() < 0.5:  # a result the ledger could not hold, replaced by its failed copy
        victim = rng.choice([one for one in results if one.items])
        failed = [item(i.index, attempt=victim.attempt, ok=False) for i in victim.items]
        results.append(result(victim.batch, failed, attempt=victim.attempt, replaces=True))
    if rng.random() < 0.5:  # a result published twice
        results.append(rng.choice(results))
    rng.shuffle(results)
    data, counts, spooled = build(results, attempt)
    assert (data, counts) == reference(results, attempt)
    assert sum(counts.values()) == 60
    assert not (spooled and attempt > 1)  # two attempts overlap: only the sort can merge them


def test_what_only_the_sort_can_hold() -> None:
    first = [result(0, [item(0), item(1)]), result(1, [item(2), item(3)])]
    assert build(first, 1)[2]
    cases = {
        "a retry": [*first, result(0, [item(1, attempt=2)], attempt=2)],
        "a replacement": [*first, result(1, [item(2, ok=False), item(3, ok=False)], replaces=True)],
        "a batch twice": [*first, first[0]],
        "overlapping batches": [*first, result(2, [item(1), item(4)])],
        "an index twice in a batch": [result(0, [item(1), item(0), item(1, ok=False)])],
    }
    for name, results in cases.items():
        data, counts, spooled = build(results, 2)
        assert not spooled, name
        assert (data, counts) == reference(results, 2), name
    # A later attempt than the job's is left out, as the sort leaves it out.
    data, counts, spooled = build(cases["a retry"], 1)
    assert (data, counts, spooled) == (*reference(first, 1), True)
