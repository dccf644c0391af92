"""The render benchmark still runs (tiny sizes; the real run is `bench/bench_render.py`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_bench_render_runs() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_render.py"),
            *("--count", "40", "--rounds", "1", "--large-side", "300"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "floor: engine >= " in result.stdout
    assert "palette PNGs differing from the RGBA composite: 0 of 120" in result.stdout
