"""bench/bench_overhead.py runs as bench/README.md shows it (on small jobs), and splits each
component's CPU into a cost per row and a cost per job."""

from __future__ import annotations

import re

import pytest

from bench.bench_overhead import fit
from tests.benches import run_bench


def test_fit_recovers_a_line() -> None:
    slope, intercept = fit(
        [(200.0, 3.0 + 0.01 * 200), (2000.0, 3.0 + 0.01 * 2000), (20000.0, 3.0 + 0.01 * 20000)]
    )
    assert slope == pytest.approx(0.01)
    assert intercept == pytest.approx(3.0)


def test_bench_overhead_runs() -> None:
    out = run_bench("bench_overhead.py", "--sizes", "50,400", "--rows-per-size", "800", "--rounds", "1")
    assert "jobs of 50, 400 rows" in out, out
    child = re.search(r"^renderer-child\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s", out, re.MULTILINE)
    assert child is not None, out
    # The child renders 8x the rows in the larger jobs: its CPU per job grows, its cost per row is real.
    assert float(child.group(2)) > 2 * float(child.group(1)) > 0, out
    assert float(child.group(3)) > 10, out  # us per row: a label takes tens of us to render
    for service in ("ingest", "nats-server", "result-notifier", "renderer"):
        assert re.search(rf"^{service}\s+[0-9.]+\s+[0-9.]+\s+-?[0-9.]+\s+-?[0-9.]+$", out, re.MULTILINE), out
    rest = re.search(r"the rest of the service set: (-?[0-9.]+) us per row and (-?[0-9.]+) ms per job", out)
    assert rest is not None and float(rest.group(2)) > 0, out
