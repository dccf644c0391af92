"""What sizing messages in bytes costs per item, against what rendering that item costs.

```
.venv/bin/python bench/bench_sizes.py [--count 20000] [--rounds 5]
```

Ingest measures every item before it joins a task (`shared/runtime/bus/limits.py`): its
MessagePack encoding and a bound on its result's JSON, and the carriable check
(`shared/workflow/carriable.py`) scans its cells for NUL and surrogates. It does so a chunk of
256 rows at a time (`items_sizes`, `carriable_rows`); `item_sizes` and `carriable` do the same
for one item. This times both ways per item on the render benchmark's strings (mixed
Chinese/English, 48 px) and on 4,000-character CJK rows, and the engine's render of the same
short strings, in CPU time of this process; the best of `--rounds` is kept for each.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_render import strings  # noqa: E402
from shared.contract.messages import RenderItem  # noqa: E402
from shared.render import RenderEngine, parse_style  # noqa: E402
from shared.render.fonts import default_catalogue  # noqa: E402
from shared.runtime.bus.limits import item_sizes, items_sizes  # noqa: E402
from shared.sources.base import ROWS_PER_CHUNK, Row  # noqa: E402
from shared.workflow.carriable import carriable, carriable_rows  # noqa: E402


def best_ns(work: Callable[[], None], count: int, rounds: int) -> float:
    """CPU nanoseconds per item of `work` (which handles `count` items), best of `rounds`."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time_ns()
        work()
        best = min(best, (time.process_time_ns() - started) / count)
    return best


def sizing(items: list[RenderItem], rows: list[Row]) -> Callable[[], None]:
    def run() -> None:
        for item, row in zip(items, rows, strict=True):
            carriable(row, 65536)
            item_sizes(item)

    return run


def chunk_sizing(items: list[RenderItem], rows: list[Row]) -> Callable[[], None]:
    def run() -> None:
        for at in range(0, len(items), ROWS_PER_CHUNK):
            carriable_rows(rows[at : at + ROWS_PER_CHUNK], 65536)
            items_sizes(items[at : at + ROWS_PER_CHUNK])

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    texts = strings(args.count)
    items = [RenderItem(i, text, str(i + 2), None, None, i + 2) for i, text in enumerate(texts)]
    rows = [Row(i, text, i + 2) for i, text in enumerate(texts)]
    short = best_ns(sizing(items, rows), len(items), args.rounds)
    chunked = best_ns(chunk_sizing(items, rows), len(items), args.rounds)
    wide_text = "汉字测试" * 1000
    wide_items = [RenderItem(i, wide_text, str(i), None, None, i) for i in range(300)]
    wide_rows = [Row(i, wide_text, i) for i in range(300)]
    wide = best_ns(sizing(wide_items, wide_rows), 300, args.rounds)
    wide_chunked = best_ns(chunk_sizing(wide_items, wide_rows), 300, args.rounds)

    catalogue = default_catalogue()
    engine = RenderEngine(catalogue)
    style = parse_style({"size": 48}, catalogue=catalogue)
    engine.warm_up()
    sample = texts[:2000]
    render = best_ns(lambda: [engine.render(text, style) for text in sample] and None, len(sample), 3)
    print("sizing + carriable check         one at a time   a chunk at a time")
    print(f"  short mixed strings            {short / 1000:8.2f} µs/item  {chunked / 1000:8.2f} µs/item")
    print(f"  4,000-char CJK rows            {wide / 1000:8.1f} µs/item  {wide_chunked / 1000:8.1f} µs/item")
    print(f"render (48 px, palette PNG), short strings: {render / 1000:.0f} µs/item")
    print(f"sizing as a share of rendering the short strings: {100 * chunked / render:.2f} %")


if __name__ == "__main__":
    main()
