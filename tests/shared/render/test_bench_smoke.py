"""The render benchmark still runs (tiny sizes; the real run is `bench/bench_render.py`)."""

from __future__ import annotations

import pytest

from tests.benches import run_bench


@pytest.mark.slow
def test_bench_render_runs() -> None:
    out = run_bench("bench_render.py", "--count", "40", "--rounds", "1", "--large-side", "300", timeout=120)
    assert "floor: engine >= " in out
    assert "palette PNGs differing from the RGBA composite: 0 of 120" in out
