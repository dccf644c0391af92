"""Ingest's row path, CSV file to encoded render tasks, against the csv module reading the same file.

```
.venv/bin/python bench/bench_ingest.py [--rows 41352] [--rounds 7]
```

Ingest handles every row of every job in one Python process, so its cost per row is a floor
under the whole service set's. This times, in CPU time of this process and on the same file
(`data/streets.csv`, 41,352 Chinese street names):

- `csv.reader` over the file alone: the least any CSV source in Python does (the baseline);
- the CSV source's rows (`CsvSource.chunks`: decoding, bounded lines, records, `Columns.row`);
- ingest's whole row path: those rows, checked, named and made items a chunk at a time
  (`shared.workflow.ingest.items_of`), batched and sized by `TaskPublisher.put_many`, and every
  batch encoded as its task message;
- the same, the items put one at a time (`TaskPublisher.put`, as ingest did before
  `put_many`): each sized by its own encodings.

Modes take turns within each round; the best round of each is kept. Ratios are against
`csv.reader` in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.contract.codec import encode_msgpack  # noqa: E402
from shared.contract.messages import RenderItem, RenderTask  # noqa: E402
from shared.contract.style import Style  # noqa: E402
from shared.runtime.bus.limits import TaskBudget  # noqa: E402
from shared.runtime.settings import Settings  # noqa: E402
from shared.sources.base import Row, SourceContext  # noqa: E402
from shared.sources.csv.request import SubmitCsv  # noqa: E402
from shared.sources.csv.source import CsvSource  # noqa: E402
from shared.storage import NameTemplate  # noqa: E402
from shared.workflow.ingest import items_of  # noqa: E402
from shared.workflow.publisher import TaskPublisher  # noqa: E402

DATA = ROOT / "bench" / "data" / "streets.csv"
# A default server's max_payload less the header allowance: what ingest sizes against.
BUDGET = TaskBudget(1024 * 1024 - 4096, 1024 * 1024 - 4096 - 1024)


def source_rows(folder: Path) -> Callable[[], list[list[Row]]]:
    """The CSV source's chunks of the file, as ingest receives them."""
    settings = Settings(csv_allowed_dir=folder)
    source = CsvSource(SourceContext(settings, cast(Any, None)))  # a server path: no JetStream
    request = SubmitCsv(path="rows.csv", column="name")

    async def read() -> list[list[Row]]:
        return [chunk async for chunk in source.chunks(request)]

    return lambda: asyncio.run(read())


def row_path(chunks: list[list[Row]], one_at_a_time: bool) -> int:
    """Ingest's path from the source's chunks to encoded tasks; the items it made."""
    publisher = TaskPublisher(
        cast(Any, None), "job", 1, Style(), batch_size=1000, budget=BUDGET, ramp_from=None
    )
    template = NameTemplate("{row}")
    made = 0

    def encode() -> int:
        sent = 0
        for items, _ in publisher._ready:  # what `publish_ready` would publish
            encode_msgpack(RenderTask(job_id="job", attempt=1, batch=0, items=items, style=Style()))
            sent += len(items)
        publisher._ready.clear()
        return sent

    for chunk in chunks:
        items: list[RenderItem] = items_of(chunk, template, False, 65536, None)
        ready = any([publisher.put(item) for item in items]) if one_at_a_time else publisher.put_many(items)
        if ready:
            made += encode()
    publisher._seal()
    return made + encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=0, help="the file's first ROWS rows (default: all)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-ingest-") as folder:
        lines = DATA.read_text(encoding="utf-8").splitlines(keepends=True)
        if args.rows:
            lines = lines[: args.rows + 1]
        path = Path(folder) / "rows.csv"
        path.write_text("".join(lines), encoding="utf-8")
        rows = len(lines) - 1
        read = source_rows(Path(folder))
        chunks = read()
        assert sum(map(len, chunks)) == rows

        def csv_alone() -> None:
            with path.open(encoding="utf-8", newline="") as handle:
                for _ in csv.reader(handle):
                    pass

        def whole(one_at_a_time: bool) -> Callable[[], None]:
            def run() -> None:
                assert row_path(read(), one_at_a_time) == rows

            return run

        modes: dict[str, Callable[[], None]] = {
            "csv.reader alone (baseline)": csv_alone,
            "the CSV source's rows": read,
            "ingest's row path": whole(False),
            "the same, items put one at a time": whole(True),
        }
        best = dict.fromkeys(modes, float("inf"))
        for round_ in range(args.rounds):
            names = list(modes)
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                started = time.process_time()
                modes[name]()
                best[name] = min(best[name], time.process_time() - started)
    base = best["csv.reader alone (baseline)"]
    print(f"{rows:,} rows of {DATA.name}, best of {args.rounds} rounds, CPU time of this process")
    for name, seconds in best.items():
        print(f"  {name:36s} {seconds / rows * 1e6:6.2f} us/row  {seconds / base:5.2f}x csv.reader")
    many, one = best["ingest's row path"], best["the same, items put one at a time"]
    print(f"the row path with put_many against put one at a time: {one / many:.2f}x faster")


if __name__ == "__main__":
    main()
