"""bench/bench_ingest.py runs as bench/README.md shows it (on fewer rows), and its two ways of
putting items make the same number of items from the file."""

from __future__ import annotations

import re

from tests.benches import run_bench


def test_bench_ingest_runs() -> None:
    out = run_bench("bench_ingest.py", "--rows", "3000", "--rounds", "1")
    assert "3,000 rows of streets.csv" in out, out
    for mode in ("csv.reader alone (baseline)", "the CSV source's rows", "ingest's row path"):
        figure = re.search(rf"{re.escape(mode)}\s+([0-9.]+) us/row\s+([0-9.]+)x csv.reader", out)
        assert figure is not None and float(figure.group(1)) > 0, out
    assert "put_many against put one at a time" in out, out
